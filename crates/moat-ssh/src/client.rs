//! The client side of the agent protocol, towards the user's own agent
//! (`SSH_AUTH_SOCK`): one connection per request, so an agent that restarted since the
//! last one (1Password, gpg-agent, a new `ssh-agent` at the same path) is simply found
//! again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::protocol::{Identity, MAX_MESSAGE_LEN, Request, Response, frame};

/// How long the user's agent may take to answer: signing can wait for the user to confirm
/// (`ssh-add -c`) or touch a security key.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// What went wrong talking to the user's agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentClientError {
    #[error("cannot reach your SSH agent at `{}`: {source}", path.display())]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("your SSH agent at `{}` did not answer within {} s", path.display(), ANSWER_TIMEOUT.as_secs())]
    Timeout { path: PathBuf },
    #[error("your SSH agent at `{}` answered something unexpected: {why}", path.display())]
    Protocol { path: PathBuf, why: String },
}

/// Send `request` to the agent at `socket` and read its answer.
pub async fn call(socket: &Path, request: &Request) -> Result<Response, AgentClientError> {
    let unreachable = |source| AgentClientError::Unreachable {
        path: socket.to_owned(),
        source,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await.map_err(unreachable)?;
        stream
            .write_all(&frame(&request.encode()))
            .await
            .map_err(unreachable)?;
        let message = read_message(&mut stream).await.map_err(|e| match e {
            ReadError::Io(e) => unreachable(e),
            ReadError::TooLong(n) => AgentClientError::Protocol {
                path: socket.to_owned(),
                why: format!("a message of {n} bytes"),
            },
        })?;
        let Some(message) = message else {
            return Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        };
        Response::decode(&message).map_err(|e| AgentClientError::Protocol {
            path: socket.to_owned(),
            why: e.to_string(),
        })
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| AgentClientError::Timeout {
            path: socket.to_owned(),
        })?
}

/// The keys the agent at `socket` holds.
pub async fn list_identities(socket: &Path) -> Result<Vec<Identity>, AgentClientError> {
    match call(socket, &Request::Identities).await? {
        Response::Identities(keys) => Ok(keys),
        // An agent that refuses to list (locked) holds nothing usable.
        Response::Failure => Ok(Vec::new()),
        other => Err(AgentClientError::Protocol {
            path: socket.to_owned(),
            why: format!("{other:?} instead of a key list"),
        }),
    }
}

/// [`list_identities`] without an async runtime, for callers that plan a run before one
/// is needed.
pub fn list_identities_blocking(socket: &Path) -> Result<Vec<Identity>, AgentClientError> {
    use std::io::{Read as _, Write as _};
    let unreachable = |source| AgentClientError::Unreachable {
        path: socket.to_owned(),
        source,
    };
    let protocol = |why: String| AgentClientError::Protocol {
        path: socket.to_owned(),
        why,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(unreachable)?;
    stream
        .write_all(&frame(&Request::Identities.encode()))
        .map_err(unreachable)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(unreachable)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE_LEN {
        return Err(protocol(format!("a message of {len} bytes")));
    }
    let mut message = vec![0; len];
    stream.read_exact(&mut message).map_err(unreachable)?;
    match Response::decode(&message).map_err(|e| protocol(e.to_string()))? {
        Response::Identities(keys) => Ok(keys),
        Response::Failure => Ok(Vec::new()),
        other => Err(protocol(format!("{other:?} instead of a key list"))),
    }
}

pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLong(usize),
}

/// One framed message, or `None` at a clean end of stream.
pub(crate) async fn read_message(
    stream: &mut (impl AsyncReadExt + Unpin),
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE_LEN {
        return Err(ReadError::TooLong(len));
    }
    let mut message = vec![0; len];
    stream
        .read_exact(&mut message)
        .await
        .map_err(ReadError::Io)?;
    Ok(Some(message))
}
