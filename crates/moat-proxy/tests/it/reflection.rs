//! A granted host that says the request back (an error page quoting its headers, a debug
//! endpoint, `TRACE`) does not hand the agent the credential the proxy injected: the
//! answer reaches the client, and the trace, with the credential blanked.

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use moat_proxy::{GrantRule, HostPattern, Secret, basic, bearer};
use tokio::sync::mpsc;

use crate::support::*;

const REAL: &str = "ghp_REALTOKEN0123456789abcdef";

fn github(real: &str) -> GrantRule {
    GrantRule::new(
        "github",
        vec![
            HostPattern::parse("api.github.com").unwrap(),
            HostPattern::parse("github.com").unwrap(),
        ],
    )
    .set_header("authorization", &bearer(&Secret::new(real)))
    .unwrap()
}

/// Says back the `authorization` header it got: in a header, in a body of known length,
/// and in a streamed body that cuts the value between two frames.
fn mirror() -> Handler {
    handler(|req: Request<hyper::body::Incoming>| async move {
        let got = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let token = got
            .split_once(' ')
            .map(|(_, t)| t.to_owned())
            .unwrap_or_default();
        if req.uri().path() == "/stream" {
            let (tx, rx) = mpsc::channel(4);
            let (head, tail) = token.split_at(token.len() / 2);
            let (head, tail) = (
                format!("data: {{\"token\":\"{head}"),
                format!("{tail}\"}}\n\n"),
            );
            tokio::spawn(async move {
                tx.send(Bytes::from(head)).await.unwrap();
                // Two frames, with no pause a clock could see (see `scrub::RELEASE_AFTER`).
                tokio::task::yield_now().await;
                tx.send(Bytes::from(tail)).await.unwrap();
            });
            return Response::builder()
                .header("content-type", "text/event-stream")
                .body(BodyExt::boxed(ChannelBody(rx)))
                .unwrap();
        }
        let mut body = format!("you sent: authorization: {got}\n");
        if let Some(encoded) = got.strip_prefix("Basic ") {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            body.push_str(&format!(
                "decoded: {}\n",
                String::from_utf8(decoded).unwrap()
            ));
        }
        Response::builder()
            .header("content-type", "text/plain")
            .header("content-length", body.len().to_string())
            .header("x-echo-authorization", got.as_str())
            .body(full(body))
            .unwrap()
    })
}

/// GET `path` on api.github.com through `h`, over a connection of its own.
async fn get(h: &Harness, h2: bool, path: &str) -> (http::HeaderMap, String) {
    let mut builder =
        Request::get(format!("https://api.github.com{path}")).header("accept-encoding", "gzip, br");
    let response = if h2 {
        builder = builder.version(Version::HTTP_2);
        let mut sender = h.client.h2("api.github.com:443").await;
        sender.send_request(builder.body(empty()).unwrap()).await
    } else {
        builder = builder.header("host", "api.github.com");
        let mut sender = h.client.h1("api.github.com:443").await;
        sender.send_request(builder.body(empty()).unwrap()).await
    }
    .unwrap();
    let headers = response.headers().clone();
    (headers, body_text(response).await)
}

#[tokio::test]
async fn a_reflected_credential_is_blanked_in_the_answer_and_the_trace() {
    for h2 in [false, true] {
        let ca = TestCa::new();
        let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
        let upstream = https_upstream(&ca, &["api.github.com"], alpn, mirror()).await;
        let mut h = Harness::start(&ca, |c| {
            c.connect_to = vec![route("api.github.com", upstream.port())];
            c.rules = vec![github(REAL)];
        })
        .await;
        let blank = "*".repeat(REAL.len());

        let (headers, text) = get(&h, h2, "/echo").await;
        assert_answer(&text, &headers, &blank);
        let (_, text) = get(&h, h2, "/stream").await;
        assert_eq!(
            text,
            format!("data: {{\"token\":\"{blank}\"}}\n\n"),
            "h2: {h2}"
        );
        check_trace(&mut h, &blank).await;
        // The upstream got the credential, and was asked for an answer it can be
        // searched in.
        let seen = upstream.last();
        assert_eq!(
            seen.headers["authorization"],
            format!("Bearer {REAL}").as_str()
        );
        assert_eq!(seen.headers["accept-encoding"], "identity");
    }
}

fn assert_answer(text: &str, headers: &http::HeaderMap, blank: &str) {
    // The whole header value is a form of the credential: `Bearer ` goes too.
    let whole = "*".repeat("Bearer ".len() + blank.len());
    assert_eq!(text, format!("you sent: authorization: {whole}\n"));
    assert_eq!(headers["x-echo-authorization"], whole.as_str());
    assert_eq!(headers["content-length"], text.len().to_string().as_str());
}

async fn check_trace(h: &mut Harness, blank: &str) {
    for _ in 0..2 {
        let event = h.next_event().await;
        let line = serde_json::to_string(&event).unwrap();
        assert!(!line.contains("REALTOKEN"), "{line}");
        assert!(
            line.contains(blank),
            "the trace shows what the client got: {line}"
        );
    }
}

#[tokio::test]
async fn trace_with_a_credential_is_refused_and_without_one_goes_out() {
    let ca = TestCa::new();
    let upstream = https_upstream(
        &ca,
        &["api.github.com", "example.com"],
        &[b"http/1.1"],
        mirror(),
    )
    .await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            route("api.github.com", upstream.port()),
            route("example.com", upstream.port()),
        ];
        c.rules = vec![github(REAL)];
    })
    .await;
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(
            Request::builder()
                .method("TRACE")
                .uri("/")
                .header("host", "api.github.com")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["x-moat-blocked"], "echo-method");
    let text = body_text(response).await;
    assert!(text.contains("`github` grant's credential"), "{text}");
    assert!(text.contains("hint: "), "{text}");
    assert!(upstream.seen().is_empty(), "nothing went out");
    let event = h.next_event().await;
    assert!(event.blocked);
    assert_eq!(event.status, 405);
    assert_eq!(event.grant, None, "refused before the credential was used");
    assert!(event.error.unwrap().contains("echo the credential"));

    // A host no grant covers gets its TRACE, with nothing to blank.
    let mut sender = h.client.h1("example.com:443").await;
    let response = sender
        .send_request(
            Request::builder()
                .method("TRACE")
                .uri("/")
                .header("host", "example.com")
                .header("authorization", "Bearer mine-to-send")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        body_text(response).await,
        "you sent: authorization: Bearer mine-to-send\n"
    );
}

#[tokio::test]
async fn git_basic_auth_said_back_is_blanked_with_its_password() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["github.com"], &[b"http/1.1"], mirror()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("github.com", upstream.port())];
        c.rules = vec![
            GrantRule::new("github", vec![HostPattern::parse("github.com").unwrap()])
                .set_header(
                    "authorization",
                    &basic("x-access-token", &Secret::new(REAL)),
                )
                .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.h1("github.com:443").await;
    let response = sender
        .send_request(
            Request::get("/org/repo.git/info/refs")
                .header("host", "github.com")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = body_text(response).await;
    assert!(text.starts_with("you sent: authorization: ****"), "{text}");
    // What the server decoded of it too.
    assert!(
        text.ends_with(&format!(
            "decoded: x-access-token:{}\n",
            "*".repeat(REAL.len())
        )),
        "{text}"
    );
    assert!(!text.contains("REALTOKEN"), "{text}");
    assert!(!text.contains(&basic("x-access-token", &Secret::new(REAL)).expose()[6..]));
}

/// A request on api.github.com to switch to `upgrades` (one `Upgrade` line each).
fn switch(upgrades: &[&str], extensions: Option<&str>) -> Request<TestBody> {
    let mut request = Request::get("/socket")
        .header("host", "api.github.com")
        .header("connection", "Upgrade");
    for upgrade in upgrades {
        request = request.header("upgrade", *upgrade);
    }
    if let Some(extensions) = extensions {
        request = request.header("sec-websocket-extensions", extensions);
    }
    request.body(empty()).unwrap()
}

/// Accepts a WebSocket switch, then says the `authorization` header it got down the
/// switched connection in two writes, cut inside the credential, and closes.
fn upgrade_mirror() -> Handler {
    handler(|mut req: Request<hyper::body::Incoming>| async move {
        let got = req.headers()["authorization"].to_str().unwrap().to_owned();
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut io = hyper_util::rt::TokioIo::new(on_upgrade.await.unwrap());
            let said = format!("you sent: {got}\n");
            let (head, tail) = said.split_at(said.len() - 9);
            io.write_all(head.as_bytes()).await.unwrap();
            io.flush().await.unwrap();
            tokio::task::yield_now().await;
            io.write_all(tail.as_bytes()).await.unwrap();
            io.shutdown().await.unwrap();
        });
        Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(empty())
            .unwrap()
    })
}

#[tokio::test]
async fn a_credential_said_down_a_switched_protocol_is_blanked() {
    use tokio::io::AsyncReadExt;
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"http/1.1"], upgrade_mirror()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github(REAL)];
    })
    .await;
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(switch(&["websocket"], Some("permessage-deflate")))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    // Compression would hide the credential from the search: not asked for.
    assert!(
        upstream
            .last()
            .headers
            .get("sec-websocket-extensions")
            .is_none()
    );
    let mut io = hyper_util::rt::TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    let mut said = String::new();
    io.read_to_string(&mut said).await.unwrap();
    let whole = "*".repeat("Bearer ".len() + REAL.len());
    assert_eq!(said, format!("you sent: {whole}\n"));

    // Another protocol than a WebSocket could not be searched: refused, not sent.
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender.send_request(switch(&["h2c"], None)).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-moat-blocked"], "protocol-switch");
    // Nor with a WebSocket named first and another protocol after it.
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(switch(&["websocket", "h2c"], None))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(upstream.seen().len(), 1);
}

/// Keeps the `authorization` of each request and shows the one before on `/kept`, as a
/// request inspector or a log viewer would; honours `Range` on it.
fn keeper() -> Handler {
    let kept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    handler(move |req: Request<hyper::body::Incoming>| {
        let kept = kept.clone();
        async move {
            let range = req.headers().get("range").is_some();
            let body = if req.uri().path() == "/kept" {
                kept.lock().unwrap().clone()
            } else {
                let got = req
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                *kept.lock().unwrap() = format!("last: {got}\n");
                "kept\n".to_owned()
            };
            let (status, body) = if range {
                (206, body[..12.min(body.len())].to_owned())
            } else {
                (200, body)
            };
            Response::builder()
                .status(status)
                .header("content-type", "text/plain")
                .body(full(body))
                .unwrap()
        }
    })
}

#[tokio::test]
async fn a_credential_kept_by_the_server_is_blanked_when_a_later_request_reads_it() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"http/1.1"], keeper()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        // A placeholder rule: a request without the placeholder carries no credential.
        c.rules = vec![
            GrantRule::new(
                "github",
                vec![HostPattern::parse("api.github.com").unwrap()],
            )
            .replace_placeholder("authorization", "ghp_PLACEHOLDER", &Secret::new(REAL))
            .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.h1("api.github.com:443").await;
    let send = |path: &str, placeholder: bool, range: bool| {
        let mut b = Request::get(path).header("host", "api.github.com");
        if placeholder {
            b = b.header("authorization", "token ghp_PLACEHOLDER");
        }
        if range {
            b = b.header("range", "bytes=0-9");
        }
        b.body(empty()).unwrap()
    };
    let response = sender
        .send_request(send("/store", true, false))
        .await
        .unwrap();
    assert_eq!(body_text(response).await, "kept\n");
    let response = sender
        .send_request(send("/kept", false, false))
        .await
        .unwrap();
    let text = body_text(response).await;
    assert_eq!(text, format!("last: token {}\n", "*".repeat(REAL.len())));
    // A range could cut it into pieces that are each not the credential: not asked for.
    let response = sender
        .send_request(send("/kept", false, true))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!body_text(response).await.contains("ghp_"));
    assert!(upstream.last().headers.get("range").is_none());
}

/// A WebSocket that says back each message: what is held waits for the clock, not for
/// the server's next bytes, so a conversation over it does not stall.
#[tokio::test]
async fn a_conversation_over_a_websocket_on_a_granted_host_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = TestCa::new();
    let echo = handler(|mut req: Request<hyper::body::Incoming>| async move {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = hyper_util::rt::TokioIo::new(on_upgrade.await.unwrap());
            let mut buf = [0u8; 64];
            loop {
                let n = io.read(&mut buf).await.unwrap_or(0);
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(empty())
            .unwrap()
    });
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"http/1.1"], echo).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github(REAL)];
    })
    .await;
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(switch(&["websocket"], None))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    let mut io = hyper_util::rt::TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    for message in ["ping", "Bearer ghp_REAL"] {
        io.write_all(message.as_bytes()).await.unwrap();
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(std::time::Duration::from_secs(10), io.read_exact(&mut back))
            .await
            .expect("the answer came")
            .unwrap();
        assert_eq!(back, message.as_bytes());
    }
}
