//! Passthrough hosts: a raw tunnel, no interception, still under the policy.

use std::sync::Arc;

use http::Request;
use hyper_util::rt::TokioIo;
use moat_proxy::{GrantRule, HostPattern, NetworkPolicy, Secret, bearer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::support::*;

#[tokio::test]
async fn passthrough_hosts_are_tunnelled_without_interception() {
    let ca = TestCa::new();
    let upstream = https_upstream(&ca, &["pinned.test"], &[b"http/1.1"], hello()).await;
    let mut h = Harness::start(&ca, |c| {
        c.connect_to = vec![route("pinned.test", upstream.port())];
        c.passthrough = vec![HostPattern::parse("pinned.test").unwrap()];
        c.rules = vec![
            GrantRule::new("pinned", vec![HostPattern::parse("pinned.test").unwrap()])
                .set_header("authorization", &bearer(&Secret::new("REAL")))
                .unwrap(),
        ];
    })
    .await;

    // The client trusts only the upstream's own CA: the handshake succeeds only if the
    // proxy did not intercept.
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let mut direct = h.client.clone();
    direct.trusted = Arc::new(roots);
    let tls = direct.tunnel_tls("pinned.test:443", &[b"http/1.1"]).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", "pinned.test")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body_text(response).await, "hello from upstream");
    assert!(upstream.last().headers.get("authorization").is_none());
    drop(sender);
    let _ = conn.await;

    let event = h.next_event().await;
    assert_eq!(event.method, "CONNECT");
    assert_eq!(event.url, "pinned.test:443");
    assert_eq!(event.status, 200);
    assert_eq!(event.grant, None);
    assert!(
        event.request_bytes > 0 && event.response_bytes > 0,
        "{event:?}"
    );
}

#[tokio::test]
async fn passthrough_is_still_subject_to_the_policy() {
    let ca = TestCa::new();
    let mut h = Harness::start(&ca, |c| {
        c.policy = NetworkPolicy::Strict;
        c.passthrough = vec![HostPattern::parse("pinned.test").unwrap()];
    })
    .await;
    let (response, _) = h.client.connect("pinned.test:443").await;
    assert_eq!(response.status, 403);
    assert!(h.next_event().await.blocked);
}
