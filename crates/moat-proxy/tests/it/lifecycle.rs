//! Starting, stopping, and configurations that cannot start.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use moat_proxy::{CertificateAuthority, ConfigError, Proxy, ProxyConfig, ProxyError, Secret};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::*;

#[tokio::test]
async fn shutdown_stops_the_listener() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.test"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.test", upstream.port())]
    })
    .await;
    let addr = h.handle.local_addr();
    assert_ne!(addr.port(), 0, "port 0 picks a free port");
    let mut sender = h.client.h1("api.test:443").await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "api.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body_text(response).await, "hello from upstream");
    drop(sender);
    let _ = h.next_event().await;

    tokio::time::timeout(Duration::from_secs(10), h.handle.shutdown())
        .await
        .expect("shutdown finishes");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn shutdown_ends_endless_streams_after_the_grace_period() {
    let ca = TestCa::new();
    let upstream = https_upstream(
        &ca,
        &["stream.test"],
        &[b"http/1.1"],
        handler(|_req| async {
            let (tx, rx) = mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"data: tick\n\n"))
                    .await
                    .unwrap();
                // Never ends on its own.
                std::future::pending::<()>().await;
                drop(tx);
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(BodyExt::boxed(ChannelBody(rx)))
                .unwrap()
        }),
    )
    .await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("stream.test", upstream.port())];
    })
    .await;
    let mut sender = h.client.h1("stream.test:443").await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "stream.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    assert!(body.frame().await.is_some());

    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(10),
        h.handle.shutdown_within(Duration::from_millis(200)),
    )
    .await
    .expect("shutdown gives up on the stream after the grace period");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The stream ends (with an error, as it was cut), and its event is still recorded.
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
    assert!(matches!(rest, Ok(Err(_))), "{rest:?}");
    let event = tokio::time::timeout(Duration::from_secs(5), h.events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.url, "https://stream.test/");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_proxy() {
    let ca = TestCa::new();
    let h = Harness::start(&ca, |_| {}).await;
    let addr = h.handle.local_addr();
    drop(h);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn invalid_extra_roots_refuse_to_start() {
    install_provider();
    let ca = std::sync::Arc::new(CertificateAuthority::ephemeral().unwrap());
    let mut config = ProxyConfig::new(Secret::new("t"), ca);
    config.extra_roots_pem = b"not a certificate".to_vec();
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = Proxy::start(config, "127.0.0.1:0".parse().unwrap(), tx)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProxyError::Config(ConfigError::ExtraRoots { .. })),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("MOAT_EXTRA_CA_CERTS"));
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error_with_a_hint() {
    install_provider();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ca = std::sync::Arc::new(CertificateAuthority::ephemeral().unwrap());
    let config = ProxyConfig::new(Secret::new("t"), ca);
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = Proxy::start(config, taken.local_addr().unwrap(), tx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::Bind { .. }), "{err}");
    assert!(
        err.to_string().starts_with("cannot listen on `127.0.0.1:"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("port 0"));
}

#[test]
fn config_debug_shows_no_secrets() {
    let ca = std::sync::Arc::new(CertificateAuthority::ephemeral().unwrap());
    let config = ProxyConfig::new(Secret::new("run-token-123"), ca);
    let text = format!("{config:?}");
    assert!(!text.contains("run-token-123"), "{text}");
}

/// An agent that opens connections and leaves them idle takes permits, not the
/// supervisor's descriptors: past the cap the next connection waits in the listen queue,
/// and is served as soon as one of the others ends.
#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_end() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.test"], &[b"http/1.1"], hello()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.test", upstream.port())];
        c.max_client_connections = 2;
    })
    .await;
    let addr = h.handle.local_addr();
    let idle_a = TcpStream::connect(addr).await.unwrap();
    let idle_b = TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::spawn({
        let client = h.client.clone();
        async move {
            let mut sender = client.h1("api.test:443").await;
            let response = sender
                .send_request(
                    Request::get("/")
                        .header("host", "api.test")
                        .body(empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            body_text(response).await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection is not served");
    drop(idle_a);
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once a connection ended")
        .unwrap();
    assert_eq!(answer, "hello from upstream");
    drop(idle_b);
}

/// While the run's records cannot be written, nothing is forwarded: a request gets a 503
/// that says why, and goes through again once they can.
#[tokio::test]
async fn nothing_is_forwarded_while_the_records_cannot_be_written() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.test"], &[b"http/1.1"], hello()).await;
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.test", upstream.port())];
        c.records_unwritable = Some(flag.clone());
    })
    .await;
    let (response, _) = h.client.connect("api.test:443").await;
    assert_eq!(response.status, 503);
    assert!(
        response.body.contains("cannot be written"),
        "{}",
        response.body
    );
    flag.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut sender = h.client.h1("api.test:443").await;
    // Inside a tunnel made while the records were fine, the same holds.
    flag.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused = sender
        .send_request(
            Request::get("/")
                .header("host", "api.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(upstream.seen().is_empty(), "nothing reached the upstream");
    flag.store(false, std::sync::atomic::Ordering::Relaxed);
    let answered = sender
        .send_request(
            Request::get("/")
                .header("host", "api.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body_text(answered).await, "hello from upstream");
}

/// A tunnel keeps its place past the CONNECT (hyper ends the client connection once it is
/// upgraded): past the cap the next CONNECT is refused, and served once a tunnel closes.
#[tokio::test]
async fn open_tunnels_count_against_the_cap() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.test"], &[b"http/1.1"], hello()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.test", upstream.port())];
        c.max_client_connections = 2;
    })
    .await;
    let (first, one) = h.client.connect("api.test:443").await;
    let (second, two) = h.client.connect("api.test:443").await;
    assert_eq!((first.status, second.status), (200, 200));
    let (third, _) = h.client.connect("api.test:443").await;
    assert_eq!(third.status, 503, "{third:?}");
    assert!(third.body.contains("too many tunnels"), "{}", third.body);
    drop(one);
    let again = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (response, stream) = h.client.connect("api.test:443").await;
            if response.status == 200 {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed tunnel frees its place");
    drop((two, again));
}
