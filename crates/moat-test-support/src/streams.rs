//! Answers beyond a whole body: a body sent in timed chunks (Server-Sent Events and other
//! streams) and a WebSocket route that echoes every message back.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Reply, SeenRequest};

/// What a handler of the fake upstream answers. A handler may return a [`Reply`] (a whole
/// body) or any of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The whole body at once.
    Whole(Reply),
    /// A body sent piece by piece.
    Streamed(Streamed),
    /// Accept a WebSocket upgrade (`400` if the request is not one) and echo every text or
    /// binary message back, answer pings, and close when the client closes.
    WebSocketEcho,
}

/// A reply whose body is sent in chunks, each after its delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `(wait before sending, bytes)`, in order.
    pub chunks: Vec<(Duration, Vec<u8>)>,
}

impl Answer {
    /// A `text/event-stream` of one `data:` event per item: the first at once, each next
    /// one `gap` later.
    pub fn sse<S: Into<String>>(events: impl IntoIterator<Item = S>, gap: Duration) -> Self {
        let chunks = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                let wait = if i == 0 { Duration::ZERO } else { gap };
                (wait, format!("data: {}\n\n", event.into()).into_bytes())
            })
            .collect();
        Answer::Streamed(Streamed {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            chunks,
        })
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Whole(reply)
    }
}

pub(crate) type ResponseBody = BoxBody<Bytes, Infallible>;

/// Turn an answer into a response; `upgrade` is the request's pending upgrade, used only
/// by [`Answer::WebSocketEcho`].
pub(crate) fn respond(
    answer: Answer,
    request: &SeenRequest,
    upgrade: hyper::upgrade::OnUpgrade,
) -> hyper::Response<ResponseBody> {
    match answer {
        Answer::Whole(reply) => build(reply.status, &reply.headers, full(reply.body)),
        Answer::Streamed(streamed) => {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                for (wait, chunk) in streamed.chunks {
                    tokio::time::sleep(wait).await;
                    if tx.send(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            build(
                streamed.status,
                &streamed.headers,
                BoxBody::new(ChannelBody(rx)),
            )
        }
        Answer::WebSocketEcho => {
            let key = request.header("sec-websocket-key");
            let is_websocket = request
                .header("upgrade")
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            let Some(key) = key.filter(|_| is_websocket) else {
                return build(400, &[], full(b"expected a WebSocket upgrade".to_vec()));
            };
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let _ = echo(TokioIo::new(upgraded)).await;
                }
            });
            let headers = [
                ("upgrade".to_owned(), "websocket".to_owned()),
                ("connection".to_owned(), "Upgrade".to_owned()),
                ("sec-websocket-accept".to_owned(), accept_key(key)),
            ];
            build(101, &headers, full(Vec::new()))
        }
    }
}

fn full(body: Vec<u8>) -> ResponseBody {
    Full::new(Bytes::from(body)).boxed()
}

fn build(
    status: u16,
    headers: &[(String, String)],
    body: ResponseBody,
) -> hyper::Response<ResponseBody> {
    let mut response = hyper::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response.body(body).expect("a valid response")
}

/// A body fed from a channel: each message is one frame, sent as soon as it comes.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455, section 4.2.2).
pub fn accept_key(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}{GUID}", key.trim()).as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const MAX_PAYLOAD: u64 = 16 << 20;

/// Echo WebSocket frames until the client closes: data frames go back as they came
/// (unmasked, as a server sends them), a ping gets a pong, a close gets a close.
async fn echo(mut io: impl AsyncRead + AsyncWrite + Unpin) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 2];
        io.read_exact(&mut head).await?;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let len = match head[1] & 0x7f {
            126 => u64::from(io.read_u16().await?),
            127 => io.read_u64().await?,
            n => u64::from(n),
        };
        if len > MAX_PAYLOAD {
            return Err(std::io::Error::other("WebSocket frame too large"));
        }
        let mut mask = [0u8; 4];
        if masked {
            io.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        io.read_exact(&mut payload).await?;
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        match opcode {
            OP_CLOSE => {
                io.write_all(&frame(0x80 | OP_CLOSE, &payload)).await?;
                io.shutdown().await?;
                return Ok(());
            }
            OP_PING => io.write_all(&frame(0x80 | OP_PONG, &payload)).await?,
            OP_PONG => {}
            _ => io.write_all(&frame(head[0], &payload)).await?,
        }
    }
}

/// An unmasked frame: `first` is the FIN bit and opcode byte.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn echoes_masked_frames_and_closes() {
        let (mut client, server) = tokio::io::duplex(1024);
        let task = tokio::spawn(echo(server));
        let mask = [1u8, 2, 3, 4];
        let masked = |first: u8, text: &[u8]| {
            let mut out = vec![first, 0x80 | text.len() as u8];
            out.extend_from_slice(&mask);
            out.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            out
        };
        client.write_all(&masked(0x81, b"hello")).await.unwrap();
        let mut back = [0u8; 7];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"\x81\x05hello");
        client.write_all(&masked(0x89, b"p")).await.unwrap();
        let mut pong = [0u8; 3];
        client.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"\x8a\x01p");
        client.write_all(&masked(0x88, b"")).await.unwrap();
        let mut close = Vec::new();
        client.read_to_end(&mut close).await.unwrap();
        assert_eq!(close, b"\x88\x00");
        task.await.unwrap().unwrap();
    }
}
