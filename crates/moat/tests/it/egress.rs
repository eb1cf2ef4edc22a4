//! Enforced egress: a run's only way out is its proxy. Requests through it reach the
//! (fake) upstream and are recorded; a process that ignores the proxy, dials a raw IP, does
//! its own DNS or aims at the host's own services gets nowhere; strict policy blocks with
//! an explanation.

use moat_test_support::{FakeUpstream, Reply};

use crate::harness::{Out, TestEnv};

/// `moat run` with the upstream reachable as `host` through `MOAT_CONNECT_TO`, its CA
/// trusted through `MOAT_EXTRA_CA_CERTS`, and curl in the image.
fn run_against(env: &TestEnv, upstream: &FakeUpstream, hosts: &[&str], args: &[&str]) -> Out {
    let connect_to: Vec<String> = hosts
        .iter()
        .map(|h| format!("{h}:443:127.0.0.1:{}", upstream.port()))
        .collect();
    Out::from(
        env.moat()
            .env("MOAT_CONNECT_TO", connect_to.join(","))
            .env("MOAT_EXTRA_CA_CERTS", upstream.ca_file())
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn the_proxy_is_the_only_way_out_and_every_request_is_recorded() {
    let env = TestEnv::new();
    let upstream = FakeUpstream::start(&["api.example.test"], |r| {
        Reply::json(200, format!("{{\"path\":\"{}\"}}", r.path))
    });
    std::fs::write(env.workspace().join("moat.yaml"), "dependencies: [curl]\n").unwrap();
    let script = format!(
        "echo \"proxied: $(curl -sS https://api.example.test/hello)\"; \
         curl -sS --noproxy '*' --max-time 5 https://api.example.test/hello >/dev/null 2>&1; echo \"no-proxy: $?\"; \
         curl -sS --noproxy '*' --max-time 5 http://192.0.2.1/ >/dev/null 2>&1; echo \"raw-ip: $?\"; \
         getent hosts deb.debian.org >/dev/null; echo \"dns: $?\"; \
         echo \"host-service: $(curl -s -o /dev/null -w '%{{http_code}}' --noproxy '' -x \"$HTTP_PROXY\" http://127.0.0.1:{}/)\"; \
         echo \"wrong-token: $(curl -s -o /dev/null -w '%{{http_connect}}' -x http://moat:wrong@127.0.0.1:3128 https://api.example.test/)\"",
        upstream.port()
    );
    let out = run_against(
        &env,
        &upstream,
        &["api.example.test"],
        &["run", "--trust", "--", "sh", "-c", &script],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "proxied: {\"path\":\"/hello\"}", "{out:?}");
    assert_eq!(
        lines[1], "no-proxy: 6",
        "ignoring the proxy: no DNS, so no host: {out:?}"
    );
    assert_eq!(lines[2], "raw-ip: 7", "a raw IP has no route: {out:?}");
    assert_eq!(lines[3], "dns: 2", "DNS reaches nothing: {out:?}");
    assert_eq!(
        lines[4], "host-service: 403",
        "the proxy refuses the host's own services: {out:?}"
    );
    assert_eq!(
        lines[5], "wrong-token: 407",
        "the proxy demands the run's token: {out:?}"
    );
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the proxied request arrived"
    );

    // The trace shows the request, as a line and as JSON.
    let trace = env.run(&["trace", "--network"]);
    assert_eq!(trace.code, 0, "{trace:?}");
    let first = trace.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with('[') && first.contains("] GET https://api.example.test/hello 200 ("),
        "{trace:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["trace", "--network", "--json"]).stdout).unwrap();
    let events = json.as_array().unwrap();
    let hello = events
        .iter()
        .find(|e| e["url"] == "https://api.example.test/hello")
        .unwrap();
    assert_eq!(hello["status"], 200);
    assert_eq!(hello["blocked"], false);
    assert_eq!(hello["response_body"]["text"], "{\"path\":\"/hello\"}");
    assert_eq!(hello["response_body"]["truncated"], false);
    assert!(
        events
            .iter()
            .any(|e| e["url"].as_str().unwrap().contains("127.0.0.1")),
        "the refused request is recorded too: {json}"
    );
}

#[test]
fn strict_policy_blocks_with_an_explanation() {
    let env = TestEnv::new();
    let upstream = FakeUpstream::start(&["allowed.example.test", "other.example.test"], |_| {
        Reply::text(200, "upstream says hi")
    });
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [curl]\nnetwork:\n  policy: strict\n  allow: [allowed.example.test]\n",
    )
    .unwrap();
    let script = "curl -sS https://allowed.example.test/; echo; \
                  curl -s -w '\\n%{http_code}' -x \"$HTTP_PROXY\" http://other.example.test/; echo; \
                  curl -s -o /dev/null -w '%{http_connect}' https://other.example.test/; echo";
    let out = run_against(
        &env,
        &upstream,
        &["allowed.example.test", "other.example.test"],
        &["run", "--trust", "--", "sh", "-c", script],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("upstream says hi\n"), "{out:?}");
    assert!(
        out.stdout.contains("other.example.test"),
        "the block names the host: {out:?}"
    );
    assert!(
        out.stdout.contains("network.allow"),
        "and says how to allow it: {out:?}"
    );
    assert!(out.stdout.contains("\n403\n"), "{out:?}");
    assert!(
        out.stdout.trim_end().ends_with("403"),
        "a blocked CONNECT is refused: {out:?}"
    );
    let trace = env.run(&["trace", "--network"]);
    assert!(
        trace.stdout.contains("BLOCKED by network policy"),
        "{trace:?}"
    );
    assert_eq!(
        upstream.requests().len(),
        1,
        "the blocked host was never contacted"
    );
}

#[test]
fn passthrough_hosts_are_tunnelled_without_interception() {
    let env = TestEnv::new();
    let upstream =
        FakeUpstream::start(&["pinned.example.test"], |_| Reply::text(200, "end to end"));
    // The image trusts the upstream's own CA (MOAT_EXTRA_CA_CERTS), and only that: with
    // moat's CA in between, curl would fail on the fake's certificate chain. `--cacert`
    // pins the upstream's CA alone, so success proves nothing intercepted the TLS.
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [curl]\nnetwork:\n  passthrough: [pinned.example.test]\n",
    )
    .unwrap();
    let script = "curl -sS --cacert /usr/local/share/ca-certificates/moat-extra.crt https://pinned.example.test/";
    let out = run_against(
        &env,
        &upstream,
        &["pinned.example.test"],
        &["run", "--trust", "--", "sh", "-c", script],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "end to end");
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["trace", "--network", "--json"]).stdout).unwrap();
    let events = json.as_array().unwrap();
    assert_eq!(events.len(), 1, "{json}");
    assert_eq!(
        events[0]["method"], "CONNECT",
        "one tunnel, no inner request seen: {json}"
    );
}
