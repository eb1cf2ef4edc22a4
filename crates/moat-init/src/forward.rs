//! The proxy forwarder: TCP connections to `127.0.0.1:PORT` inside the container, each
//! relayed to the run's proxy on its unix socket.
//!
//! What a forwarder in front of a proxy must not add, and socat did: Nagle's algorithm on
//! the client's connection (with delayed ACKs, a keep-alive response stalled 40 ms), a
//! listen backlog of 5 (a burst of new connections retried after a second), and a process
//! forked per connection. Here each connection gets `TCP_NODELAY` and two small threads,
//! one per direction, and its bytes go through a pipe with `splice`, so the kernel moves
//! them between the sockets without copying them through this process.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::sys;

/// The listen backlog: more than any client opens at once.
pub const BACKLOG: i32 = 4096;
/// A relay thread needs little stack: it only loops over system calls.
const THREAD_STACK: usize = 64 * 1024;
/// Bytes moved per splice (the default pipe holds 64 KiB).
const CHUNK: usize = 64 * 1024;

/// Bind the forwarder's listening socket, so connections queue from now on, before the
/// command runs, even before anything accepts them.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    sys::set_backlog(listener.as_fd(), BACKLOG)?;
    Ok(listener)
}

/// The byte a listening socket is handed over with, and the proxy's answer that it took it.
pub const HAND_OVER: u8 = b'L';
pub const TAKEN: u8 = b'K';

/// Hand `listener` to the run's proxy on the unix socket at `path`: sent with
/// `SCM_RIGHTS`, then the proxy's one-byte answer. After `Ok` the proxy accepts on it
/// (this process may close its own descriptor).
pub fn hand_over(listener: &TcpListener, path: &Path) -> io::Result<()> {
    let stream = UnixStream::connect(path)?;
    // Longer than the proxy gives a sender (5 s): an answer that does not come means the
    // proxy did not take it, and the relay serves instead.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    sys::send_fd(stream.as_fd(), listener.as_fd(), HAND_OVER)?;
    let mut answer = [0u8; 1];
    (&stream).read_exact(&mut answer)?;
    if answer[0] == TAKEN {
        Ok(())
    } else {
        Err(io::Error::other("the proxy refused it"))
    }
}

/// Accept connections for ever, relaying each to the unix socket at `socket`.
pub fn serve(listener: TcpListener, socket: &Path) -> ! {
    let socket: Arc<PathBuf> = Arc::new(socket.to_owned());
    loop {
        match listener.accept() {
            Ok((client, _)) => {
                let socket = socket.clone();
                // A connection that finds no thread for it is closed: the client sees it.
                let _ = std::thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn(move || connection(client, &socket));
            }
            // Out of descriptors or threads: wait instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// One client connection, relayed both ways until both sides are done.
fn connection(client: TcpStream, socket: &Path) {
    let _ = client.set_nodelay(true);
    let Ok(proxy) = UnixStream::connect(socket) else {
        return;
    };
    let (Ok(client_back), Ok(proxy_back)) = (client.try_clone(), proxy.try_clone()) else {
        return;
    };
    let back = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(move || pump(&proxy_back, &client_back));
    if back.is_err() {
        return;
    }
    pump(&client, &proxy);
    if let Ok(back) = back {
        let _ = back.join();
    }
}

/// What the relay needs of a connection, through a shared reference (both directions'
/// threads hold one): TCP and unix streams.
pub trait Stream: AsFd {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_every(&self, buf: &[u8]) -> io::Result<()>;
    fn shut(&self, how: Shutdown);
}

macro_rules! stream {
    ($type:ty) => {
        impl Stream for $type {
            fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
            fn write_every(&self, buf: &[u8]) -> io::Result<()> {
                (&*self).write_all(buf)
            }
            fn shut(&self, how: Shutdown) {
                let _ = self.shutdown(how);
            }
        }
    };
}
stream!(TcpStream);
stream!(UnixStream);

/// Move bytes from `from` to `to` until `from` ends, then pass the end on (a half-close,
/// as HTTP clients and servers may use). On an error both connections are shut down, so
/// the other direction's thread stops too.
pub fn pump(from: &impl Stream, to: &impl Stream) {
    let result = match spliced(from.as_fd(), to.as_fd()) {
        Err(Fallback::Unsupported) => copied(from, to),
        Err(Fallback::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    };
    match result {
        Ok(()) => to.shut(Shutdown::Write),
        Err(_) => {
            from.shut(Shutdown::Both);
            to.shut(Shutdown::Both);
        }
    }
}

enum Fallback {
    /// The kernel cannot splice these descriptors; nothing was moved yet.
    Unsupported,
    Failed(io::Error),
}

/// `from` → pipe → `to`, in the kernel.
fn spliced(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Fallback> {
    let (pipe_r, pipe_w) = io::pipe().map_err(|_| Fallback::Unsupported)?;
    let mut first = true;
    loop {
        let n = match sys::splice_fds(from, pipe_w.as_fd(), CHUNK) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if first && e.raw_os_error() == Some(EINVAL) => {
                return Err(Fallback::Unsupported);
            }
            Err(e) => return Err(Fallback::Failed(e)),
        };
        first = false;
        let mut left = n;
        while left > 0 {
            match sys::splice_fds(pipe_r.as_fd(), to, left) {
                Ok(0) => return Err(Fallback::Failed(io::ErrorKind::WriteZero.into())),
                Ok(m) => left -= m,
                Err(e) => return Err(Fallback::Failed(e)),
            }
        }
    }
}

const EINVAL: i32 = 22;

/// `from` → buffer → `to`, where splice is not available.
fn copied(from: &impl Stream, to: &impl Stream) -> io::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = match from.read_some(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_every(&buffer[..n])?;
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // test scaffolding in a temporary directory
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A unix-socket server that answers each connection with what it read, reversed,
    /// once the client has half-closed: the forwarder must pass the half-close on.
    fn reversing_server(dir: &Path) -> PathBuf {
        let path = dir.join("proxy.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                std::thread::spawn(move || {
                    let mut all = Vec::new();
                    stream.read_to_end(&mut all).unwrap();
                    all.reverse();
                    stream.write_all(&all).unwrap();
                });
            }
        });
        path
    }

    #[test]
    fn bytes_go_both_ways_and_a_half_close_is_passed_on() {
        let dir = std::env::temp_dir().join(format!("moat-init-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = reversing_server(&dir);
        let listener = bind(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || serve(listener, &socket));

        // Large enough to need many splices, and several connections at once.
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let body = body.clone();
                std::thread::spawn(move || {
                    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let writer = {
                        let mut client = client.try_clone().unwrap();
                        let body = body.clone();
                        std::thread::spawn(move || {
                            client.write_all(&body).unwrap();
                            client.shutdown(Shutdown::Write).unwrap();
                        })
                    };
                    let mut back = Vec::new();
                    client.read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    back.reverse();
                    assert!(back == body, "the bytes came back changed");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The listening socket is sent with its byte, and after the proxy's answer connections
    /// to the port are the receiver's to accept.
    #[test]
    fn a_listening_socket_is_handed_over() {
        let dir = std::env::temp_dir().join(format!("moat-init-hand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("listener.sock");
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let receiver = std::thread::spawn(move || {
            let (mut stream, _) = unix.accept().unwrap();
            let (byte, fd) = sys::recv_fd(stream.as_fd()).unwrap();
            assert_eq!(byte, HAND_OVER);
            stream.write_all(&[TAKEN]).unwrap();
            TcpListener::from(fd.expect("a descriptor came"))
        });
        let listener = bind(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        hand_over(&listener, &path).unwrap();
        drop(listener);
        let taken = receiver.join().unwrap();
        assert_eq!(taken.local_addr().unwrap().port(), port);
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut served, _) = taken.accept().unwrap();
        served.write_all(b"hi").unwrap();
        let mut back = [0u8; 2];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hi");

        // A refusal is an error: moat-init relays instead.
        let unix = std::os::unix::net::UnixListener::bind(dir.join("refusing.sock")).unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = unix.accept().unwrap();
            let _ = sys::recv_fd(stream.as_fd()).unwrap();
            stream.write_all(b"N").unwrap();
        });
        let listener = bind(0).unwrap();
        assert!(hand_over(&listener, &dir.join("refusing.sock")).is_err());
        assert!(hand_over(&listener, &dir.join("nobody.sock")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_connection_the_proxy_refuses_is_closed() {
        let listener = bind(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || serve(listener, Path::new("/nonexistent/proxy.sock")));
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).unwrap_or(0), 0);
    }
}
