//! Interception and credential injection: HTTP/1.1 and HTTP/2 both ways, placeholders,
//! merged headers, and what the trace shows.

use http::{Request, Version};
use moat_proxy::{ConnectTo, GrantRule, HostPattern, REDACTED, Secret, basic, bearer};

use crate::support::*;

fn hosts(list: &[&str]) -> Vec<HostPattern> {
    list.iter()
        .map(|h| HostPattern::parse(h).unwrap())
        .collect()
}

fn github_api(real: &str) -> GrantRule {
    GrantRule::new("github", hosts(&["api.github.com"]))
        .set_header("authorization", &bearer(&Secret::new(real)))
        .unwrap()
}

#[tokio::test]
async fn http1_request_gets_the_grant_and_the_trace_hides_it() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github_api("ghp_REALTOKEN")];
    })
    .await;

    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(
            Request::get("/user?per_page=1")
                .header("host", "api.github.com")
                .header("authorization", "token ghp_PLACEHOLDER")
                .header("user-agent", "curl/8")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body_text(response).await, "hello from upstream");

    let seen = upstream.last();
    assert_eq!(seen.headers["authorization"], "Bearer ghp_REALTOKEN");
    assert_eq!(seen.headers["host"], "api.github.com");
    assert_eq!(seen.headers["user-agent"], "curl/8");
    assert!(seen.headers.get("proxy-authorization").is_none());
    assert_eq!(seen.uri, "/user?per_page=1");

    let event = h.next_event().await;
    assert_eq!(event.method, "GET");
    assert_eq!(event.url, "https://api.github.com/user?per_page=1");
    assert_eq!(event.status, 200);
    assert_eq!(event.grant.as_deref(), Some("github"));
    assert!(!event.blocked);
    assert_eq!(event.error, None);
    assert_eq!(event.request_headers["authorization"], REDACTED);
    assert_eq!(event.request_headers["user-agent"], "curl/8");
    assert_eq!(event.response_headers["set-cookie"], REDACTED);
    assert_eq!(event.response_bytes, 19);
    let sample = event.response_body.clone().unwrap();
    assert_eq!(sample.text, "hello from upstream");
    assert!(!sample.truncated);
    let line = serde_json::to_string(&event).unwrap();
    assert!(!line.contains("ghp_REALTOKEN"), "{line}");
    assert!(!line.contains("upstream-secret"), "{line}");
}

#[tokio::test]
async fn http2_to_the_client_and_to_the_upstream() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"h2", b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github_api("ghp_REALTOKEN")];
    })
    .await;

    let mut sender = h.client.h2("api.github.com:443").await;
    for _ in 0..3 {
        let response = sender
            .send_request(
                Request::get("https://api.github.com/user")
                    .version(Version::HTTP_2)
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(body_text(response).await, "hello from upstream");
    }
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.version, Version::HTTP_2);
        assert_eq!(request.headers["authorization"], "Bearer ghp_REALTOKEN");
        assert!(
            request.uri.starts_with("https://api.github.com/user"),
            "{}",
            request.uri
        );
    }
    for _ in 0..3 {
        let event = h.next_event().await;
        assert_eq!(event.url, "https://api.github.com/user");
        assert_eq!(event.grant.as_deref(), Some("github"));
    }
}

#[tokio::test]
async fn protocols_are_translated_between_client_and_upstream() {
    let ca = TestCa::new();
    let h1_only = https_upstream(&ca, &["old.test"], &[b"http/1.1"], hello()).await;
    let h2_only = https_upstream(&ca, &["new.test"], &[b"h2"], hello()).await;
    let h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            route("old.test", h1_only.port()),
            route("new.test", h2_only.port()),
        ];
    })
    .await;

    let mut h2_client = h.client.h2("old.test:443").await;
    let response = h2_client
        .send_request(Request::get("https://old.test/a").body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(body_text(response).await, "hello from upstream");
    assert_eq!(h1_only.last().version, Version::HTTP_11);
    assert_eq!(h1_only.last().headers["host"], "old.test");

    let mut h1_client = h.client.h1("new.test:443").await;
    let response = h1_client
        .send_request(
            Request::get("/b")
                .header("host", "new.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body_text(response).await, "hello from upstream");
    assert_eq!(h2_only.last().version, Version::HTTP_2);
}

#[tokio::test]
async fn a_placeholder_is_replaced_only_on_the_grants_hosts() {
    let ca = TestCa::new();
    let upstream = https_upstream(
        &ca,
        &["api.github.com", "elsewhere.test"],
        &[b"http/1.1"],
        hello(),
    )
    .await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            route("api.github.com", upstream.port()),
            route("elsewhere.test", upstream.port()),
        ];
        c.rules = vec![
            GrantRule::new("github", hosts(&["api.github.com"]))
                .replace_placeholder(
                    "authorization",
                    "ghp_moatPLACEHOLDER0000000000000000000000",
                    &Secret::new("ghp_REALTOKEN"),
                )
                .unwrap(),
        ];
    })
    .await;

    for (host, expected, grant) in [
        ("api.github.com", "token ghp_REALTOKEN", Some("github")),
        (
            "elsewhere.test",
            "token ghp_moatPLACEHOLDER0000000000000000000000",
            None,
        ),
    ] {
        let mut sender = h.client.h1(&format!("{host}:443")).await;
        let response = sender
            .send_request(
                Request::get("/")
                    .header("host", host)
                    .header(
                        "authorization",
                        "token ghp_moatPLACEHOLDER0000000000000000000000",
                    )
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(upstream.last().headers["authorization"], expected, "{host}");
        let event = h.next_event().await;
        assert_eq!(event.grant.as_deref(), grant, "{host}");
        assert_eq!(event.request_headers["authorization"], REDACTED);
    }
}

#[tokio::test]
async fn claude_oauth_merges_the_beta_header_and_drops_the_api_key() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.anthropic.com"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.anthropic.com", upstream.port())];
        c.rules = vec![
            GrantRule::new("claude", hosts(&["api.anthropic.com"]))
                .set_header("authorization", &bearer(&Secret::new("sk-ant-oat01-REAL")))
                .unwrap()
                .merge_header("anthropic-beta", "oauth-2025-04-20")
                .unwrap()
                .remove_header("x-api-key")
                .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.h1("api.anthropic.com:443").await;
    let response = sender
        .send_request(
            Request::post("/v1/messages")
                .header("host", "api.anthropic.com")
                .header("anthropic-beta", "prompt-caching-2024-07-31")
                .header("x-api-key", "sk-ant-api03-PLACEHOLDER")
                .header("content-type", "application/json")
                .body(full(r#"{"model":"claude","max_tokens":1}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.last();
    assert_eq!(seen.headers["authorization"], "Bearer sk-ant-oat01-REAL");
    assert_eq!(
        seen.headers["anthropic-beta"],
        "prompt-caching-2024-07-31,oauth-2025-04-20"
    );
    assert!(seen.headers.get("x-api-key").is_none());

    let event = h.next_event().await;
    assert_eq!(event.grant.as_deref(), Some("claude"));
    assert_eq!(
        event.request_headers["anthropic-beta"],
        "prompt-caching-2024-07-31"
    );
    assert_eq!(event.request_bytes, 33);
    assert_eq!(
        event.request_body.unwrap().text,
        r#"{"model":"claude","max_tokens":1}"#
    );
}

#[tokio::test]
async fn git_over_https_gets_basic_auth_with_x_access_token() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["github.com"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("github.com", upstream.port())];
        c.rules = vec![
            GrantRule::new("github", hosts(&["github.com"]))
                .set_header(
                    "authorization",
                    &basic("x-access-token", &Secret::new("TOKEN")),
                )
                .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.h1("github.com:443").await;
    let response = sender
        .send_request(
            Request::get("/org/repo.git/info/refs?service=git-upload-pack")
                .header("host", "github.com")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().headers["authorization"],
        "Basic eC1hY2Nlc3MtdG9rZW46VE9LRU4="
    );
    let event = h.next_event().await;
    assert_eq!(
        event.url,
        "https://github.com/org/repo.git/info/refs?service=git-upload-pack"
    );
}

#[tokio::test]
async fn a_request_for_another_host_inside_a_tunnel_is_refused() {
    let ca = TestCa::new();
    let upstream = https_upstream(
        &ca,
        &["api.github.com", "other.test"],
        &[b"http/1.1"],
        hello(),
    )
    .await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            route("api.github.com", upstream.port()),
            route("other.test", upstream.port()),
        ];
        c.rules = vec![github_api("ghp_REALTOKEN")];
    })
    .await;
    let mut sender = h.client.h1("other.test:443").await;
    let response = sender
        .send_request(
            Request::get("/user")
                .header("host", "api.github.com")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 421);
    assert!(body_text(response).await.contains("needs its own CONNECT"));
    assert!(upstream.seen().is_empty());
    let event = h.next_event().await;
    assert_eq!(event.status, 421);
    assert_eq!(event.grant, None);
}

#[tokio::test]
async fn an_untrusted_upstream_gets_a_502_that_says_why() {
    let upstream_ca = TestCa::new();
    let other_ca = TestCa::new();
    let upstream = https_upstream(&upstream_ca, &["api.github.com"], &[b"http/1.1"], hello()).await;
    // The proxy trusts a different CA than the upstream's.
    let mut h = Harness::start(&other_ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github_api("ghp_REALTOKEN")];
    })
    .await;
    let mut sender = h.client.h1("api.github.com:443").await;
    let response = sender
        .send_request(
            Request::get("/user")
                .header("host", "api.github.com")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = body_text(response).await;
    assert!(
        body.contains("moat: cannot reach https://api.github.com/user"),
        "{body}"
    );
    assert!(body.contains("invalid peer certificate"), "{body}");
    assert!(body.contains("MOAT_EXTRA_CA_CERTS"), "{body}");
    assert!(upstream.seen().is_empty());
    let event = h.next_event().await;
    assert_eq!(event.status, 502);
    assert!(event.error.unwrap().contains("invalid peer certificate"));
}

#[tokio::test]
async fn plain_http_is_forwarded_but_never_gets_credentials() {
    let ca = TestCa::new();
    let upstream = http_upstream(hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![
            ConnectTo::parse(&format!("plain.test:80:127.0.0.1:{}", upstream.port())).unwrap(),
        ];
        c.rules = vec![
            GrantRule::new("plain", hosts(&["plain.test"]))
                .set_header("authorization", &bearer(&Secret::new("REAL")))
                .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.plain().await;
    let response = sender
        .send_request(
            Request::get("http://plain.test/path?q=1")
                .header(
                    "proxy-authorization",
                    h.client.proxy_authorization().unwrap(),
                )
                .header("proxy-connection", "keep-alive")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body_text(response).await, "hello from upstream");
    let seen = upstream.last();
    assert_eq!(seen.uri, "/path?q=1");
    assert_eq!(seen.headers["host"], "plain.test");
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("proxy-authorization").is_none());
    assert!(seen.headers.get("proxy-connection").is_none());
    let event = h.next_event().await;
    assert_eq!(event.url, "http://plain.test/path?q=1");
    assert_eq!(event.grant, None);
    assert_eq!(event.request_headers["proxy-authorization"], REDACTED);
}

#[tokio::test]
async fn any_header_a_rule_writes_is_redacted_in_the_trace() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["svc.test"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("svc.test", upstream.port())];
        c.rules = vec![
            GrantRule::new("svc", hosts(&["svc.test"]))
                .set_header("x-service-key", &Secret::new("svc-REAL"))
                .unwrap(),
        ];
    })
    .await;
    let mut sender = h.client.h1("svc.test:443").await;
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "svc.test")
                .header("x-service-key", "svc-fake")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.last().headers["x-service-key"], "svc-REAL");
    let event = h.next_event().await;
    assert_eq!(event.request_headers["x-service-key"], REDACTED);
    assert!(!serde_json::to_string(&event).unwrap().contains("svc-REAL"));
}

#[tokio::test]
async fn concurrent_http2_streams_share_one_tunnel() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["api.github.com"], &[b"h2", b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("api.github.com", upstream.port())];
        c.rules = vec![github_api("ghp_REALTOKEN")];
    })
    .await;
    let sender = h.client.h2("api.github.com:443").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let response = sender
                .send_request(
                    Request::get(format!("https://api.github.com/item/{i}"))
                        .body(empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            body_text(response).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), "hello from upstream");
    }
    assert_eq!(upstream.seen().len(), 20);
    let mut urls = Vec::new();
    for _ in 0..20 {
        urls.push(h.next_event().await.url);
    }
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 20);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_moat_ca_shows_up_in_the_trace() {
    let ca = TestCa::new();
    let mut h = Harness::start(&ca, |_| {}).await;
    let (response, stream) = h.client.connect("api.github.com:443").await;
    assert_eq!(response.status, 200);
    // This client trusts nothing, so it rejects the proxy's certificate.
    let mut untrusting = h.client.clone();
    untrusting.trusted = std::sync::Arc::new(rustls::RootCertStore::empty());
    let result = tokio_rustls::TlsConnector::from(untrusting.tls_config(&[b"http/1.1"]))
        .connect(
            rustls::pki_types::ServerName::try_from("api.github.com").unwrap(),
            stream,
        )
        .await;
    assert!(result.is_err());
    let event = h.next_event().await;
    assert_eq!(event.method, "CONNECT");
    assert_eq!(event.url, "api.github.com:443");
    let error = event.error.unwrap();
    assert!(error.contains("does it trust the moat CA?"), "{error}");
}
