//! Listening sockets handed to the proxy: a container's `moat-init` binds the proxy's port
//! on the container's loopback and sends the listening socket over a unix socket
//! (`SCM_RIGHTS`), and the proxy accepts the container's connections on it directly, with
//! no relay in between.
//!
//! What is taken: one connection only, whatever it sends (the unix socket is then closed
//! and removed, so nothing else is taken for the run); and on it, a listening TCP socket
//! bound to the address the run's clients are told, sent as one byte ([`HAND_OVER`]) with
//! exactly one descriptor. The answer is [`TAKEN`] or [`REFUSED`]. moat-init sends before
//! the run's command starts, and holds the port from then on, so a socket of the agent's
//! cannot be the one taken. Even so, the sender may keep a descriptor of the socket it
//! sent and change its flags (make it blocking): the proxy accepts on it on a thread of
//! its own, never on the runtime's worker, so nothing done to it can stall the proxy.
//! Accepted connections (new sockets, nobody else's) are served as on any other listener
//! (the token is still needed).

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketType,
};
use tokio::io::{AsyncWriteExt as _, Interest};
use tokio::net::{UnixListener, UnixStream};

use crate::serve::Shared;

/// The byte a listening socket comes with.
pub const HAND_OVER: u8 = b'L';
/// The answer: the socket was taken, the proxy accepts on it from now on.
pub const TAKEN: u8 = b'K';
/// The answer: what was sent is not a listening TCP socket (or one was taken already).
pub const REFUSED: u8 = b'N';

/// How long a sender has to send, once connected.
const SEND_WITHIN: Duration = Duration::from_secs(5);

/// Take the listening socket sent on the first connection to `listener` (at `path`,
/// removed then), if it is bound to `expected`, and serve it with `shared`.
pub(crate) async fn take_first(
    listener: UnixListener,
    path: PathBuf,
    expected: SocketAddr,
    shared: Arc<Shared>,
) {
    let stop = shared.lifecycle.stop.clone();
    let accepted = tokio::select! {
        () = stop.cancelled() => None,
        accepted = listener.accept() => accepted.ok(),
    };
    drop(listener);
    let _ = fs_err::remove_file(&path);
    let Some((mut stream, _)) = accepted else {
        return;
    };
    let taken = match tokio::time::timeout(SEND_WITHIN, receive(&stream)).await {
        Ok(Ok(socket)) => check(socket, expected),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    };
    match taken {
        Ok(socket) => match serve_on_a_thread(socket, shared) {
            Ok(()) => {
                let _ = stream.write_all(&[TAKEN]).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "the proxy could not accept on a handed socket");
                let _ = stream.write_all(&[REFUSED]).await;
            }
        },
        Err(e) => {
            tracing::debug!(error = %e, "a socket handed to the proxy was refused");
            let _ = stream.write_all(&[REFUSED]).await;
        }
    }
}

/// Accept on `listener` on a thread of its own (blocking, whatever its flags are made),
/// handing each connection to the runtime, until the proxy stops.
fn serve_on_a_thread(listener: std::net::TcpListener, shared: Arc<Shared>) -> io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::net::TcpStream>(16);
    std::thread::Builder::new()
        .name("moat-proxy-accept".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _ = listener.set_nonblocking(false);
            loop {
                match listener.accept() {
                    // Gone when the proxy stops: the thread ends with the next connection
                    // (or the process).
                    Ok((stream, _)) => {
                        if tx.blocking_send(stream).is_err() {
                            return;
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })?;
    let stop = shared.lifecycle.stop.clone();
    shared.lifecycle.spawn({
        let shared = shared.clone();
        async move {
            loop {
                // A permit first: past the cap, connections wait in the listen queue.
                let Some(permit) = crate::proxy::connection_permit(&shared).await else {
                    break;
                };
                let stream = tokio::select! {
                    () = stop.cancelled() => break,
                    stream = rx.recv() => stream,
                };
                let Some(stream) = stream else { break };
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    continue;
                };
                crate::proxy::serve_accepted(stream, &shared, permit);
            }
        }
    });
    Ok(())
}

/// The one descriptor sent with [`HAND_OVER`] on `stream`.
async fn receive(stream: &UnixStream) -> io::Result<OwnedFd> {
    loop {
        stream.readable().await?;
        let got = stream.try_io(Interest::READABLE, || {
            let mut byte = [0u8; 1];
            // Room for a few: more than one is refused, and every one received is closed.
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let got = rustix::net::recvmsg(
                stream,
                &mut [IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            let mut fds: Vec<OwnedFd> = Vec::new();
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = message {
                    fds.extend(received);
                }
            }
            Ok((got.bytes, byte[0], fds))
        });
        let (bytes, byte, mut fds) = match got {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        return match (bytes, byte, fds.len()) {
            (1, HAND_OVER, 1) => Ok(fds.remove(0)),
            (0, _, _) => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Err(io::Error::other("not one socket sent as a hand-over")),
        };
    }
}

/// `socket`, if it is a listening TCP socket bound to `expected`.
fn check(socket: OwnedFd, expected: SocketAddr) -> io::Result<std::net::TcpListener> {
    let family = rustix::net::sockopt::socket_domain(&socket)?;
    let kind = rustix::net::sockopt::socket_type(&socket)?;
    let listening = rustix::net::sockopt::socket_acceptconn(&socket)?;
    if !(family == AddressFamily::INET || family == AddressFamily::INET6)
        || kind != SocketType::STREAM
        || !listening
    {
        return Err(io::Error::other("not a listening TCP socket"));
    }
    let listener = std::net::TcpListener::from(socket);
    if listener.local_addr()? != expected {
        return Err(io::Error::other("not bound to the proxy's address"));
    }
    Ok(listener)
}

/// Bind the unix socket listening sockets are handed over on, at `path`, with mode 0666
/// (the container's user connects to it; the run's token guards what is served).
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let listener = UnixListener::bind(path)?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use std::io::{IoSlice, Read as _, Write as _};
    use std::os::fd::AsFd as _;

    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

    use super::*;
    use crate::{CertificateAuthority, Proxy, ProxyConfig, Secret};

    /// Send `fd` with `byte` over a new connection to `path`; the proxy's answer.
    fn hand(path: &Path, fd: std::os::fd::BorrowedFd<'_>, byte: u8) -> io::Result<u8> {
        let mut stream = std::os::unix::net::UnixStream::connect(path)?;
        let fds = [fd];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(
            &stream,
            &[IoSlice::new(&[byte])],
            &mut control,
            SendFlags::empty(),
        )?;
        let mut answer = [0u8];
        stream.read_exact(&mut answer)?;
        Ok(answer[0])
    }

    async fn proxy_taking_at(dir: &Path, expected: SocketAddr) -> (crate::ProxyHandle, PathBuf) {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = Arc::new(CertificateAuthority::ephemeral().unwrap());
        let config = ProxyConfig::new(Secret::new("run-token"), ca);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let proxy = Proxy::start_unix(config, &dir.join("proxy.sock"), tx)
            .await
            .unwrap();
        let path = dir.join("listener.sock");
        proxy.take_listener_at(&path, expected).unwrap();
        (proxy, path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_socket_sent_first_is_taken_served_and_made_blocking_in_vain() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let expected = listener.local_addr().unwrap();
        let (proxy, path) = proxy_taking_at(dir.path(), expected).await;
        let reply = tokio::task::spawn_blocking(move || {
            assert_eq!(hand(&path, listener.as_fd(), HAND_OVER).unwrap(), TAKEN);
            // The sender kept its descriptor and makes the socket blocking: the proxy's
            // worker must not be the one blocked in accept.
            listener.set_nonblocking(false).unwrap();
            assert!(!path.exists(), "the hand-over socket is removed");
            let mut replies = Vec::new();
            for _ in 0..2 {
                let mut client = std::net::TcpStream::connect(expected).unwrap();
                client
                    .write_all(b"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n")
                    .unwrap();
                let mut reply = vec![0u8; 64];
                let n = client.read(&mut reply).unwrap();
                replies.push(String::from_utf8_lossy(&reply[..n]).into_owned());
            }
            replies
        })
        .await
        .unwrap();
        // The proxy accepts on it, and still demands the token.
        assert!(
            reply.iter().all(|r| r.starts_with("HTTP/1.1 407")),
            "{reply:?}"
        );
        // The runtime's worker is free.
        tokio::time::timeout(Duration::from_secs(5), tokio::task::yield_now())
            .await
            .unwrap();
        proxy.shutdown().await;
    }

    #[tokio::test]
    async fn one_connection_only_and_only_a_listener_on_the_proxys_address() {
        for case in ["not a listener", "another address", "another byte"] {
            let dir = tempfile::tempdir().unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let (proxy, path) = proxy_taking_at(dir.path(), listener.local_addr().unwrap()).await;
            let (answer, again) = tokio::task::spawn_blocking(move || {
                let answer = match case {
                    "not a listener" => hand(&path, udp.as_fd(), HAND_OVER),
                    "another address" => hand(&path, elsewhere.as_fd(), HAND_OVER),
                    _ => hand(&path, listener.as_fd(), b'x'),
                }
                .unwrap();
                // No second try, not even with the right socket.
                std::thread::sleep(Duration::from_millis(50));
                let again = hand(&path, listener.as_fd(), HAND_OVER).is_err();
                (answer, again)
            })
            .await
            .unwrap();
            assert_eq!(answer, REFUSED, "{case}");
            assert!(again, "{case}: the hand-over is one connection");
            proxy.shutdown().await;
        }
    }
}
