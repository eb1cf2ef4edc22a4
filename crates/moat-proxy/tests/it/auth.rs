//! Proxy authentication: no token, or another run's token, gets 407.

use http::Request;
use moat_proxy::{GrantRule, HostPattern, Secret, bearer};

use crate::support::*;

fn github(real: &str) -> GrantRule {
    GrantRule::new(
        "github",
        vec![HostPattern::parse("api.github.com").unwrap()],
    )
    .set_header("authorization", &bearer(&Secret::new(real)))
    .unwrap()
}

#[tokio::test]
async fn connect_without_credentials_gets_407_with_an_explanation() {
    let ca = TestCa::new();
    let mut h = Harness::start(&ca, |_| {}).await;
    let mut anonymous = h.client.clone();
    anonymous.token = None;
    let (response, _) = anonymous.connect("api.github.com:443").await;
    assert_eq!(response.status, 407);
    assert_eq!(
        response.header("proxy-authenticate"),
        Some("Basic realm=\"moat\"")
    );
    assert!(
        response.body.contains("proxy authentication required"),
        "{}",
        response.body
    );
    assert!(
        response
            .body
            .contains("HTTPS_PROXY=http://moat:TOKEN@HOST:PORT")
    );

    let event = h.next_event().await;
    assert_eq!(event.method, "CONNECT");
    assert_eq!(event.status, 407);
    assert_eq!(
        event.error.as_deref(),
        Some("proxy authentication required")
    );
    assert!(!event.blocked);
}

#[tokio::test]
async fn absolute_form_requests_need_credentials_too() {
    let ca = TestCa::new();
    let upstream = http_upstream(hello()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            moat_proxy::ConnectTo::parse(&format!("plain.test:80:127.0.0.1:{}", upstream.port()))
                .unwrap(),
        ];
    })
    .await;
    let mut anonymous = h.client.clone();
    anonymous.token = None;
    let mut sender = anonymous.plain().await;
    let response = sender
        .send_request(Request::get("http://plain.test/").body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 407);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn two_runs_cannot_use_each_others_proxy() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"http/1.1"], hello()).await;
    let run_a = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github("token-of-run-a")];
    })
    .await;
    let run_b = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github("token-of-run-b")];
    })
    .await;

    // Run A's container, pointed at run B's proxy (same user name, A's token).
    let mut cross = run_a.client.clone();
    cross.proxy = run_b.handle.local_addr();
    let (response, _) = cross.connect("api.github.com:443").await;
    assert_eq!(response.status, 407);
    let mut cross_plain = cross.plain().await;
    let response = cross_plain
        .send_request(
            Request::get("https://api.github.com/user")
                .header("proxy-authorization", cross.proxy_authorization().unwrap())
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 407);
    assert!(upstream.seen().is_empty(), "nothing reached the upstream");

    // Each run's own proxy works, with its own grant.
    for (harness, token) in [(&run_a, "token-of-run-a"), (&run_b, "token-of-run-b")] {
        let mut sender = harness.client.h1("api.github.com:443").await;
        let response = sender
            .send_request(
                Request::get("/user")
                    .header("host", "api.github.com")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            upstream.last().headers["authorization"],
            format!("Bearer {token}").as_str()
        );
    }
}
