//! The network policy, and the proxy's refusal to reach its own host.

use http::Request;
use moat_proxy::{BLOCKED_HEADER, ConnectTo, GrantRule, HostPattern, NetworkPolicy};

use crate::support::*;

/// A strict policy allowing `allow`.
fn strict(c: &mut moat_proxy::ProxyConfig, allow: &[&str]) {
    c.policy = NetworkPolicy::Strict;
    c.allow = allow
        .iter()
        .map(|h| HostPattern::parse(h).unwrap())
        .collect();
}

#[tokio::test]
async fn strict_policy_blocks_connect_with_an_explained_403() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        strict(c, &["*.allowed.test"]);
        c.rules = vec![GrantRule::new(
            "github",
            vec![HostPattern::parse("api.github.com").unwrap()],
        )];
        c.connect_to = vec![route("api.github.com", upstream.port())];
    })
    .await;

    let (response, _) = h.client.connect("blocked.test:443").await;
    assert_eq!(response.status, 403);
    assert_eq!(response.header(BLOCKED_HEADER), Some("network-policy"));
    assert!(
        response.body.contains("blocked by network policy"),
        "{}",
        response.body
    );
    assert!(response.body.contains("\"blocked.test\""));
    assert!(response.body.contains("`network.allow` in agent.yaml"));
    assert!(response.body.contains("- \"blocked.test\""));
    let event = h.next_event().await;
    assert_eq!(event.method, "CONNECT");
    assert_eq!(event.url, "blocked.test:443");
    assert_eq!(event.status, 403);
    assert!(event.blocked);

    // The apex of a wildcard and other ports stay blocked.
    for authority in ["allowed.test:443", "x.allowed.test:8443"] {
        let (response, _) = h.client.connect(authority).await;
        assert_eq!(response.status, 403, "{authority}");
        assert!(h.next_event().await.blocked);
    }
    // Allowed by the list (the tunnel opens; no request is made through it).
    let (response, _) = h.client.connect("a.b.allowed.test:443").await;
    assert_eq!(response.status, 200);

    // Granted hosts are always allowed.
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "api.github.com")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!h.next_event().await.blocked);
}

#[tokio::test]
async fn strict_policy_blocks_plain_http_requests() {
    let ca = TestCa::new();
    let mut h = Harness::start(&ca, |c| strict(c, &[])).await;
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get("http://blocked.test:8080/x")
                .header(
                    "proxy-authorization",
                    h.client.proxy_authorization().unwrap(),
                )
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()[BLOCKED_HEADER], "network-policy");
    let body = body_text(response).await;
    assert!(body.contains("- \"blocked.test:8080\""), "{body}");
    let event = h.next_event().await;
    assert_eq!(event.url, "http://blocked.test:8080/x");
    assert!(event.blocked);
}

#[tokio::test]
async fn the_proxys_own_host_is_not_reachable_unless_rerouted() {
    let ca = TestCa::new();
    let plain = http_upstream(hello()).await;
    let tls = https_upstream(&ca, &["127.0.0.1"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |_| {}).await;

    // Plain HTTP to a loopback address.
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get(format!("http://127.0.0.1:{}/", plain.port()))
                .header(
                    "proxy-authorization",
                    h.client.proxy_authorization().unwrap(),
                )
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()[BLOCKED_HEADER], "host-local");
    assert!(body_text(response).await.contains("does not connect there"));
    assert!(h.next_event().await.blocked);

    // HTTPS through a tunnel to a loopback address.
    let mut sender = h.client.h1(&format!("127.0.0.1:{}", tls.port())).await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "127.0.0.1")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(plain.seen().is_empty() && tls.seen().is_empty());

    // The same server named through connect_to is reachable.
    let h = Harness::start(&ca, |c| {
        c.connect_to =
            vec![ConnectTo::parse(&format!("local.test:80:127.0.0.1:{}", plain.port())).unwrap()];
    })
    .await;
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get("http://local.test/")
                .header(
                    "proxy-authorization",
                    h.client.proxy_authorization().unwrap(),
                )
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn origin_form_requests_to_the_proxy_are_explained() {
    let ca = TestCa::new();
    let h = Harness::start(&ca, |_| {}).await;
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "proxy")
                .header(
                    "proxy-authorization",
                    h.client.proxy_authorization().unwrap(),
                )
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(body_text(response).await.contains("this is a proxy"));
}
