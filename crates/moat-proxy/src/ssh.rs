//! SSH through the proxy: a CONNECT to port 22 (or to an `ssh:HOST:PORT` grant's port)
//! is a raw tunnel, never TLS-intercepted, and only for a host the run has an `ssh:`
//! grant for (or that `network.allow` names with that port). The server's first bytes go
//! past an [`SshTap`] before the client gets them, so the run's SSH agent learns which
//! host each key exchange really came from.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::body::ProxyBody;
use crate::events::{Exchange, redacted_headers};
use crate::forward::relay;
use crate::local::{BLOCKED_HEADER, connect_failure, finish_local, text_response};
use crate::serve::{Shared, Target};

/// The port SSH servers listen on.
pub const SSH_PORT: u16 = 22;

/// Fed each chunk an SSH server sends through a tunnel until it returns `false`.
pub type TunnelWatcher = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// Watches the start of what an SSH server sends through a tunnel (moat's SSH agent
/// implements it). Called on the tunnel's path, so it must not block.
pub trait SshTap: Send + Sync + 'static {
    /// A watcher for one new tunnel to `host:port` (the host as the client named it). It
    /// is fed every chunk from the server until it returns `false`.
    fn watch(&self, host: &str, port: u16) -> TunnelWatcher;
}

/// Serve a CONNECT that is SSH's: `None` when `target` is not (the caller goes on with
/// TLS interception or passthrough).
pub(crate) async fn connect(
    shared: &Arc<Shared>,
    req: &mut Request<Incoming>,
    target: &Target,
    tunnel: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Option<Response<ProxyBody>> {
    let granted = shared
        .ssh
        .iter()
        .any(|p| p.matches_normalized(&target.host, target.port));
    if !granted && target.port != SSH_PORT {
        return None;
    }
    let label = target.label();
    let exchange = Exchange::new(
        shared.sink.clone(),
        "CONNECT",
        label.clone(),
        redacted_headers(req.headers(), &[]),
    );
    // An `allow` entry with the port is the user's own choice of a plain tunnel; the
    // agent still signs only for granted hosts.
    let allowed = granted
        || shared
            .policy
            .allow
            .iter()
            .any(|p| p.matches_normalized(&target.host, target.port));
    if !allowed {
        let shown = if target.port == SSH_PORT {
            target.host_for_url()
        } else {
            label.clone()
        };
        let mut response = text_response(
            StatusCode::FORBIDDEN,
            format!(
                "moat: SSH to {shown} is not granted to this run\n\n\
                 Grant it with `moat grant ssh --host {shown}` and run with `--grant ssh:{shown}`.\n"
            ),
        );
        response
            .headers_mut()
            .insert(BLOCKED_HEADER, HeaderValue::from_static("ssh-not-granted"));
        // socat and other CONNECT clients show only the status line: say it there too.
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(
                b"SSH to this host is not granted to the run (moat grant ssh)",
            ));
        return Some(finish_local(
            &exchange,
            response,
            true,
            Some(format!("SSH to {shown} is not granted")),
        ));
    }
    if granted {
        exchange.set_grant(
            Some(if target.port == SSH_PORT {
                format!("ssh:{}", target.host_for_url())
            } else {
                format!("ssh:{label}")
            }),
            &[],
        );
    }
    let upstream = match shared
        .upstream
        .connector
        .tcp(&target.host, target.port)
        .await
    {
        Ok(stream) => stream,
        Err(e) => return Some(connect_failure(&exchange, &label, &e)),
    };
    exchange.respond(200, BTreeMap::new());
    let on_upgrade = hyper::upgrade::on(req);
    let stop = shared.lifecycle.stop.clone();
    let watcher = shared
        .ssh_tap
        .as_ref()
        .map(|tap| tap.watch(&target.host, target.port));
    let tunnel = tunnel.take();
    shared.lifecycle.spawn(async move {
        // Held while the tunnel is open (see `Shared::tunnels`).
        let _tunnel = tunnel;
        match on_upgrade.await {
            Ok(upgraded) => {
                let upstream = Tapped {
                    inner: upstream,
                    watcher,
                };
                relay(TokioIo::new(upgraded), upstream, &exchange, &stop).await;
            }
            Err(e) => {
                exchange.note_error(format!("the client connection was not upgraded: {e}"));
                exchange.stream_closed(0, 0);
            }
        }
    });
    Some(Response::new(ProxyBody::Empty))
}

/// The upstream side of a tunnel, showing what it reads to a watcher first.
struct Tapped<T> {
    inner: T,
    watcher: Option<TunnelWatcher>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tapped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Some(watcher) = self.watcher.as_mut()
        {
            let read = &buf.filled()[before..];
            if !read.is_empty() && !watcher(read) {
                self.watcher = None;
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tapped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
