//! Bodies that stream through the proxy while the trace samples them: untouched, but
//! for the credential a credentialed request's answer would say back (`scrub`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::events::{Capture, Exchange, Side};
use crate::scrub::Scrubber;

/// A body passed through frame by frame (never buffered), counted and sampled for the
/// exchange's event. The exchange learns the body is finished at its end, on an error,
/// or when it is dropped.
pub(crate) struct CaptureBody<B> {
    inner: B,
    capture: Capture,
    exchange: Option<Arc<Exchange>>,
    side: Side,
    /// Blanks credentials on the way; boxed, as few bodies have one.
    scrubber: Option<Box<Scrubber>>,
    /// A frame that waits while the scrubber's held bytes go first (trailers after the
    /// last data), and whether the body's end has come.
    waiting: Option<Frame<Bytes>>,
    ended: bool,
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
            scrubber: None,
            waiting: None,
            ended: false,
        }
    }

    /// What the scrubber still holds, at the body's end.
    fn held_rest(&mut self) -> Option<Bytes> {
        self.scrubber.as_mut().and_then(|s| s.release())
    }

    /// Pass every data frame through `scrubber` (the client and the trace both see
    /// the scrubbed bytes).
    pub fn scrub_with(&mut self, scrubber: Scrubber) {
        self.scrubber = Some(Box::new(scrubber));
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
        if let Some(frame) = this.waiting.take() {
            if this.ended {
                this.finish();
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if this.ended {
            this.finish();
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => match this.scrubber.as_mut() {
                        Some(scrubber) => Frame::data(scrubber.pass(data)),
                        None => Frame::data(data),
                    },
                    // Trailers come last: what the scrubber holds goes first.
                    Err(trailers) => {
                        let trailers = match this.scrubber.as_ref() {
                            Some(scrubber) => match trailers.into_trailers() {
                                Ok(mut map) => {
                                    // `grpc-message: invalid token …`
                                    scrubber.blank_headers(&mut map);
                                    Frame::trailers(map)
                                }
                                Err(other) => other,
                            },
                            None => trailers,
                        };
                        match this.held_rest() {
                            Some(rest) => {
                                this.waiting = Some(trailers);
                                Frame::data(rest)
                            }
                            None => trailers,
                        }
                    }
                };
                if let Some(data) = frame.data_ref() {
                    this.capture.observe(data);
                }
                if this.inner.is_end_stream() {
                    if let Some(rest) = this.held_rest() {
                        this.capture.observe(&rest);
                        this.waiting = Some(Frame::data(rest));
                    }
                    if this.waiting.is_some() {
                        this.ended = true;
                    } else {
                        this.finish();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
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
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => match this.held_rest() {
                Some(rest) => {
                    this.capture.observe(&rest);
                    this.ended = true;
                    Poll::Ready(Some(Ok(Frame::data(rest))))
                }
                None => {
                    this.finish();
                    Poll::Ready(None)
                }
            },
            Poll::Pending => {
                let Some(scrubber) = this.scrubber.as_mut() else {
                    return Poll::Pending;
                };
                let held = std::task::ready!(scrubber.poll_release(cx));
                this.capture.observe(&held);
                Poll::Ready(Some(Ok(Frame::data(held))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none()
            && (self.ended
                || (self.inner.is_end_stream()
                    && self.scrubber.as_ref().is_none_or(|s| s.held_len() == 0)))
    }

    fn size_hint(&self) -> SizeHint {
        // The scrubber keeps every length; what it holds is still to come.
        let held = self.scrubber.as_ref().map_or(0, |s| s.held_len()) as u64
            + self
                .waiting
                .as_ref()
                .and_then(Frame::data_ref)
                .map_or(0, |d| d.len() as u64);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
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
