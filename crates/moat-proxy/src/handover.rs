//! Listening sockets handed to the proxy: a container's `moat-init` binds the proxy's port
//! on the container's loopback and sends the listening socket over a unix socket
//! (`SCM_RIGHTS`), and the proxy accepts the container's connections on it directly, with
//! no relay in between.
//!
//! What is taken: the first socket that is a listening TCP socket, sent as one byte
//! ([`HAND_OVER`]) with exactly one descriptor; the answer is [`TAKEN`], after which the
//! unix socket is closed and removed, so nothing else is taken for the run. Anything else
//! sent is closed and answered [`REFUSED`]. A socket handed over is only accepted on:
//! what comes through it is served as on any other listener (the token is still needed).

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
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

/// Take the first listening socket sent to `listener` (at `path`, removed once one is
/// taken), and serve it with `shared` on the proxy's tasks.
pub(crate) async fn take_first(listener: UnixListener, path: PathBuf, shared: Arc<Shared>) {
    let stop = shared.lifecycle.stop.clone();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let received = tokio::time::timeout(SEND_WITHIN, receive(&stream)).await;
        match received {
            Ok(Ok(socket)) => match tcp_listener(socket) {
                Ok(tcp) => {
                    let _ = stream.write_all(&[TAKEN]).await;
                    drop(listener);
                    let _ = fs_err::remove_file(&path);
                    crate::proxy::serve_listener(tcp, shared);
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a socket handed to the proxy was refused");
                    let _ = stream.write_all(&[REFUSED]).await;
                }
            },
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a socket hand-over failed");
                let _ = stream.write_all(&[REFUSED]).await;
            }
            Err(_) => {}
        }
    }
    let _ = fs_err::remove_file(&path);
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

/// `socket` as a tokio listener, if it is a listening TCP socket.
fn tcp_listener(socket: OwnedFd) -> io::Result<tokio::net::TcpListener> {
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
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
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

    #[tokio::test]
    async fn the_first_listening_socket_is_taken_and_served_and_nothing_else() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca = Arc::new(CertificateAuthority::ephemeral().unwrap());
        let config = ProxyConfig::new(Secret::new("run-token"), ca);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let proxy = Proxy::start_unix(config, &dir.path().join("proxy.sock"), tx)
            .await
            .unwrap();
        let path = dir.path().join("listener.sock");
        proxy.take_listener_at(&path).unwrap();

        let answers = tokio::task::spawn_blocking(move || {
            // Not a listening socket: refused, and the hand-over stays open.
            let stream_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let refused = hand(&path, stream_socket.as_fd(), HAND_OVER).unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let wrong_byte = hand(&path, listener.as_fd(), b'x').unwrap();
            let taken = hand(&path, listener.as_fd(), HAND_OVER).unwrap();
            let port = listener.local_addr().unwrap().port();
            drop(listener);
            // Once one is taken the hand-over is gone.
            std::thread::sleep(Duration::from_millis(100));
            let again = std::os::unix::net::UnixStream::connect(&path).is_err();
            // The proxy accepts on it, and still demands the token.
            let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            client
                .write_all(b"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n")
                .unwrap();
            let mut reply = vec![0u8; 64];
            let n = client.read(&mut reply).unwrap();
            let reply = String::from_utf8_lossy(&reply[..n]).into_owned();
            (refused, wrong_byte, taken, again, reply, path)
        })
        .await
        .unwrap();
        let (refused, wrong_byte, taken, again, reply, path) = answers;
        assert_eq!(refused, REFUSED);
        assert_eq!(wrong_byte, REFUSED);
        assert_eq!(taken, TAKEN);
        assert!(again, "no second hand-over");
        assert!(!path.exists(), "the hand-over socket is removed");
        assert!(reply.starts_with("HTTP/1.1 407"), "{reply}");
        proxy.shutdown().await;
    }
}
