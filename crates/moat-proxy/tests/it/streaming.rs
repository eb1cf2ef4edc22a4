//! Bodies stream: a chunk reaches the other side before the sender has finished, in
//! both directions, and the trace samples without holding anything back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

/// An SSE upstream that sends one event, then waits for the test's go-ahead before the
/// second event and the end of the stream.
fn sse_upstream_handler() -> (Handler, oneshot::Sender<()>) {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let handler = handler(move |_req| {
        let release = release.lock().unwrap().take();
        async move {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"data: first\n\n"))
                    .await
                    .unwrap();
                if let Some(release) = release {
                    let _ = release.await;
                }
                tx.send(Bytes::from_static(b"data: second\n\n"))
                    .await
                    .unwrap();
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(BodyExt::boxed(ChannelBody(rx)))
                .unwrap()
        }
    });
    (handler, release_tx)
}

async fn first_chunk_arrives_early(h2: bool) {
    let ca = TestCa::new();
    let (handler, release) = sse_upstream_handler();
    let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
    let upstream = https_upstream(&ca, &["api.anthropic.com"], alpn, handler).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.anthropic.com", upstream.port())];
    })
    .await;

    let response = if h2 {
        let mut sender = h.client.h2("api.anthropic.com:443").await;
        sender
            .send_request(
                Request::post("https://api.anthropic.com/v1/messages")
                    .body(full("{}"))
                    .unwrap(),
            )
            .await
            .unwrap()
    } else {
        let mut sender = h.client.h1("api.anthropic.com:443").await;
        sender
            .send_request(
                Request::post("/v1/messages")
                    .header("host", "api.anthropic.com")
                    .body(full("{}"))
                    .unwrap(),
            )
            .await
            .unwrap()
    };
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();

    // The upstream has not finished (it waits for `release`), yet the first event is here.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first SSE chunk did not arrive while the upstream was still open")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(first, "data: first\n\n");

    release.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "data: second\n\n");

    let event = h.next_event().await;
    assert_eq!(event.status, 200);
    assert_eq!(event.response_bytes, 27);
    assert_eq!(
        event.response_body.unwrap().text,
        "data: first\n\ndata: second\n\n"
    );
}

#[tokio::test]
async fn server_sent_events_stream_chunk_by_chunk_over_http1() {
    first_chunk_arrives_early(false).await;
}

#[tokio::test]
async fn server_sent_events_stream_chunk_by_chunk_over_http2() {
    first_chunk_arrives_early(true).await;
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream() {
    let ca = TestCa::new();
    let (got_first_tx, mut got_first_rx) = mpsc::channel::<Bytes>(1);
    let upstream = https_upstream(
        &ca,
        &["upload.test"],
        &[b"http/1.1"],
        handler(move |req| {
            let got_first = got_first_tx.clone();
            async move {
                let mut body = req.into_body();
                let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
                let mut total = first.len();
                got_first.send(first).await.unwrap();
                while let Some(frame) = body.frame().await {
                    total += frame.unwrap().into_data().map_or(0, |d| d.len());
                }
                Response::new(full(format!("total={total}")))
            }
        }),
    )
    .await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("upload.test", upstream.port())];
    })
    .await;

    let mut sender = h.client.h1("upload.test:443").await;
    let (chunks, rx) = mpsc::channel::<Bytes>(4);
    let request = Request::post("/upload")
        .header("host", "upload.test")
        .header("content-type", "text/plain")
        .body(BodyExt::boxed(ChannelBody(rx)))
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(request).await.unwrap() });
    chunks.send(Bytes::from_static(b"part one;")).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), got_first_rx.recv())
        .await
        .expect("the upstream did not get the first chunk while the client was still sending")
        .unwrap();
    assert_eq!(first, "part one;");
    chunks.send(Bytes::from_static(b"part two")).await.unwrap();
    drop(chunks);
    let response = response.await.unwrap();
    assert_eq!(body_text(response).await, "total=17");

    let event = h.next_event().await;
    assert_eq!(event.request_bytes, 17);
    assert_eq!(event.request_body.unwrap().text, "part one;part two");
}

#[tokio::test]
async fn the_trace_keeps_8_kib_of_a_text_body_and_says_it_cut() {
    let ca = TestCa::new();
    let upstream = https_upstream(
        &ca,
        &["big.test"],
        &[b"http/1.1"],
        handler(|_req| async {
            Response::builder()
                .header("content-type", "application/json")
                .body(full(format!("[{}]", "1,".repeat(5000) + "1")))
                .unwrap()
        }),
    )
    .await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("big.test", upstream.port())];
    })
    .await;
    let mut sender = h.client.h1("big.test:443").await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "big.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = body_text(response).await;
    assert_eq!(body.len(), 10_003, "the client gets the whole body");

    let event = h.next_event().await;
    assert_eq!(event.response_bytes, 10_003);
    let sample = event.response_body.unwrap();
    assert_eq!(sample.text.len(), moat_proxy::BODY_SAMPLE_LIMIT);
    assert!(sample.truncated);
    assert_eq!(sample.text, body[..moat_proxy::BODY_SAMPLE_LIMIT]);
}
