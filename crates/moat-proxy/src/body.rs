//! Bodies that stream through the proxy untouched while the trace samples them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::events::{Capture, Exchange, Side};

/// A body passed through frame by frame (never buffered), counted and sampled for the
/// exchange's event. The exchange learns the body is finished at its end, on an error,
/// or when it is dropped.
pub(crate) struct CaptureBody<B> {
    inner: B,
    capture: Capture,
    exchange: Option<Arc<Exchange>>,
    side: Side,
}

impl<B> CaptureBody<B> {
    pub fn new(inner: B, capture: Capture, exchange: Arc<Exchange>, side: Side) -> Self {
        if side == Side::Request {
            exchange.request_streaming();
        }
        CaptureBody {
            inner,
            capture,
            exchange: Some(exchange),
            side,
        }
    }

    fn finish(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            exchange.finish(self.side, Some(&self.capture));
        }
    }
}

impl<B> Body for CaptureBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.capture.observe(data);
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(exchange) = &this.exchange {
                    let side = match this.side {
                        Side::Request => "request",
                        Side::Response => "response",
                    };
                    exchange.note_error(format!("{side} body: {e}"));
                }
                this.finish();
            }
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for CaptureBody<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The request body the proxy sends upstream.
pub(crate) type RequestBody = CaptureBody<Incoming>;

/// The body of every response the proxy gives a client.
pub(crate) enum ProxyBody {
    Empty,
    /// A message of the proxy's own (blocked, refused, upstream unreachable).
    Text(Option<Bytes>),
    Upstream(CaptureBody<Incoming>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            ProxyBody::Upstream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Text(text) => text.is_none(),
            ProxyBody::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Text(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
            ProxyBody::Upstream(body) => body.size_hint(),
        }
    }
}
