//! Private destinations: refused under a permissive policy too, with the reason and the
//! `network.allow` entry to add, on every path a request can take (plain HTTP, an
//! intercepted tunnel, a passthrough tunnel), and recorded as blocked.

use http::Request;
use moat_proxy::{BLOCKED_HEADER, HostPattern, NetworkPolicy};

use crate::support::*;

fn patterns(list: &[&str]) -> Vec<HostPattern> {
    list.iter()
        .map(|p| HostPattern::parse(p).unwrap())
        .collect()
}

#[tokio::test]
async fn a_plain_http_request_to_a_private_address_is_refused_with_the_entry_to_add() {
    let ca = TestCa::new();
    let mut h = Harness::start(&ca, |_| {}).await;
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get("http://10.1.2.3:8000/f")
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
    assert_eq!(response.headers()[BLOCKED_HEADER], "private-address");
    let body = body_text(response).await;
    assert_eq!(
        body,
        "moat: request blocked\n\n\
         `10.1.2.3` is a private address (RFC 1918); moat does not connect to private networks \
         unless allowed.\n\
         To allow it, add the host or the address to `network.allow` in moat.yaml:\n\n\
         network:\n  allow:\n    - \"10.1.2.3:8000\"\n"
    );
    let event = h.next_event().await;
    assert_eq!(event.url, "http://10.1.2.3:8000/f");
    assert_eq!(event.status, 403);
    assert!(event.blocked);
    let error = event.error.unwrap_or_default();
    assert!(error.contains("a private address (RFC 1918)"), "{error}");
}

#[tokio::test]
async fn an_intercepted_tunnel_to_a_private_address_is_refused_per_request() {
    let ca = TestCa::new();
    let mut h = Harness::start(&ca, |_| {}).await;
    let mut sender = h.client.h1("192.168.7.7:443").await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "192.168.7.7")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()[BLOCKED_HEADER], "private-address");
    let body = body_text(response).await;
    assert!(body.contains("- \"192.168.7.7\"\n"), "{body}");
    let event = h.next_event().await;
    assert_eq!(event.url, "https://192.168.7.7/");
    assert!(event.blocked);
}

#[tokio::test]
async fn a_passthrough_tunnel_to_a_private_address_is_refused_before_it_opens() {
    let ca = TestCa::new();
    // A range in `passthrough` matches clients that name an address inside it.
    let mut h = Harness::start(&ca, |c| c.passthrough = patterns(&["[fd00::/8]"])).await;
    let (response, _) = h.client.connect("[fd00::9]:443").await;
    assert_eq!(response.status, 403);
    assert_eq!(response.header(BLOCKED_HEADER), Some("private-address"));
    assert!(
        response.body.contains("(unique local, fc00::/7)"),
        "{}",
        response.body
    );
    assert!(
        response.body.contains("- \"[fd00::9]\""),
        "{}",
        response.body
    );
    let event = h.next_event().await;
    assert_eq!(event.method, "CONNECT");
    assert_eq!(event.url, "[fd00::9]:443");
    assert!(event.blocked);
}

#[tokio::test]
async fn an_allowed_range_passes_a_strict_policy_but_never_opens_the_host() {
    let ca = TestCa::new();
    let plain = http_upstream(hello()).await;
    let port = plain.port();
    let mut h = Harness::start(&ca, |c| {
        let allow = patterns(&[&format!("127.0.0.0/8:{port}"), "10.0.0.0/8:8000"]);
        c.policy = NetworkPolicy::Strict;
        c.allow = allow;
    })
    .await;
    let auth = h.client.proxy_authorization().unwrap();
    let mut sender = h.client.plain().await;
    let mut get = async |url: String| {
        sender
            .send_request(
                Request::get(url)
                    .header("proxy-authorization", &auth)
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap()
    };
    // The range lets the address through the policy; it is loopback, so the proxy still
    // does not connect.
    let response = get(format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()[BLOCKED_HEADER], "host-local");
    assert!(h.next_event().await.blocked);
    // Outside the range's port, the policy blocks first.
    let response = get("http://10.1.2.3:8001/".into()).await;
    assert_eq!(response.headers()[BLOCKED_HEADER], "network-policy");
    assert!(h.next_event().await.blocked);
    assert!(plain.seen().is_empty());
}
