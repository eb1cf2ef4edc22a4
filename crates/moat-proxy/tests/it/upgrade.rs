//! Protocol upgrades (WebSocket and the like) pass through as a byte relay.

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Accepts `Upgrade: echo` and then echoes every byte back.
fn echo_upgrade() -> Handler {
    handler(|mut req: Request<hyper::body::Incoming>| async move {
        if req.headers().get("upgrade").is_none() {
            return Response::builder().status(400).body(empty()).unwrap();
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = TokioIo::new(on_upgrade.await.unwrap());
            let mut buf = [0u8; 1024];
            loop {
                let n = io.read(&mut buf).await.unwrap_or(0);
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(empty())
            .unwrap()
    })
}

async fn round_trip(response: Response<hyper::body::Incoming>) {
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["upgrade"], "echo");
    let mut io = TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    for message in ["ping", "a longer message"] {
        io.write_all(message.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; message.len()];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, message.as_bytes());
    }
    io.shutdown().await.unwrap();
}

#[tokio::test]
async fn upgrades_pass_through_an_intercepted_tunnel() {
    let ca = TestCa::new();
    // The upstream offers HTTP/2 too; the proxy must pick HTTP/1.1 for an upgrade.
    let upstream = https_upstream(&ca, &["ws.test"], &[b"h2", b"http/1.1"], echo_upgrade()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("ws.test", upstream.port())];
    })
    .await;
    let mut sender = h.client.h1("ws.test:443").await;
    let response = sender
        .send_request(
            Request::get("/socket")
                .header("host", "ws.test")
                .header("connection", "Upgrade")
                .header("upgrade", "echo")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    round_trip(response).await;

    let seen = upstream.last();
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.headers["upgrade"], "echo");

    let event = h.next_event().await;
    assert_eq!(event.status, 101);
    assert_eq!(event.url, "https://ws.test/socket");
    assert_eq!(event.request_bytes, 20);
    assert_eq!(event.response_bytes, 20);
}

#[tokio::test]
async fn upgrades_pass_through_plain_http() {
    let ca = TestCa::new();
    let upstream = http_upstream(echo_upgrade()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            moat_proxy::ConnectTo::parse(&format!("ws.test:80:127.0.0.1:{}", upstream.port()))
                .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get("http://ws.test/socket")
                .header(
                    "proxy-authorization",
                    h.client.proxy_authorization().unwrap(),
                )
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    round_trip(response).await;
}
