//! Enforced egress: a run's only way out is its proxy. Requests through it reach the
//! (fake) upstream and are recorded; a process that ignores the proxy, dials a raw IP, does
//! its own DNS or aims at the host's own services gets nowhere; strict policy blocks with
//! an explanation; private addresses are refused unless `network.allow` allows them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use moat_test_support::{FakeUpstream, Reply};

use crate::harness::{BUSYBOX_IMAGE, Out, TestEnv, docker, wait_for};

/// `moat run` with the upstream reachable as `host` through `MOAT_CONNECT_TO`, its CA
/// trusted through `MOAT_EXTRA_CA_CERTS`, and curl in the image.
pub(crate) fn run_against(
    env: &TestEnv,
    upstream: &FakeUpstream,
    hosts: &[&str],
    args: &[&str],
) -> Out {
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
         echo \"wrong-token: $(curl -s -o /dev/null -w '%{{http_connect}}' -x http://moat:wrong@127.0.0.1:3128 https://api.example.test/)\"; \
         echo \"relays: $(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c '^moat-forward$')\"; \
         echo \"proxy dir: $(ls /run/moat/proxy)\"",
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
    // moat-init handed its listening socket to the proxy: no relay runs in the container,
    // and the hand-over socket is gone, so the agent cannot hand the proxy another.
    assert_eq!(lines[6], "relays: 0", "{out:?}");
    assert_eq!(lines[7], "proxy dir: proxy.sock", "{out:?}");
    assert!(!out.stderr.contains("relaying instead"), "{out:?}");
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

/// The label on what [`PrivateServer`] makes, so a leftover can be told apart.
const PRIVATE_SERVER_LABEL: &str = "moat.test=egress-private-destination";

/// An HTTP server on another container of this host, on a Docker network of its own:
/// a private address the host routes to, as a database or an internal service would be.
/// Serves `/f` on port 8000. The container and the network go when this is dropped,
/// also when the test fails.
struct PrivateServer {
    name: String,
    ip: String,
    gateway: String,
}

impl PrivateServer {
    fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut server = PrivateServer {
            name: format!("moat-it-private-{}-{nanos:x}", std::process::id()),
            ip: String::new(),
            gateway: String::new(),
        };
        let name = server.name.clone();
        let out = docker(&["network", "create", "--label", PRIVATE_SERVER_LABEL, &name]);
        assert_eq!(out.code, 0, "{out:?}");
        let out = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &name,
            "--label",
            PRIVATE_SERVER_LABEL,
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            "mkdir -p /www && echo 'the private file' > /www/f && exec httpd -f -p 8000 -h /www",
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        let inspect = |format: &str, what: &str| {
            let out = docker(&[what, "inspect", "--format", format, &name]);
            assert_eq!(out.code, 0, "{out:?}");
            out.stdout.trim().to_owned()
        };
        server.ip = inspect(
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            "container",
        );
        server.gateway = inspect("{{range .IPAM.Config}}{{.Gateway}}{{end}}", "network");
        assert!(
            !server.ip.is_empty() && !server.gateway.is_empty(),
            "{}",
            server.name
        );
        // The host reaches it directly: wait until it answers.
        let addr = format!("{}:8000", server.ip).parse().unwrap();
        wait_for("the private server to answer", || {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            stream.write_all(b"GET /f HTTP/1.0\r\n\r\n").ok()?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).ok()?;
            reply.contains("the private file").then_some(())
        });
        server
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
        let _ = docker(&["network", "rm", &self.name]);
    }
}

#[test]
fn private_addresses_are_refused_under_a_permissive_policy_unless_allowed() {
    let env = TestEnv::new();
    let server = PrivateServer::start();
    std::fs::write(env.workspace().join("moat.yaml"), "dependencies: [curl]\n").unwrap();
    let url = format!("http://{}:8000/f", server.ip);
    let fetch = |url: &str| format!("curl -s -w '\\n%{{http_code}}' {url}; echo");

    // Permissive (the default), nothing allowed: refused, with the reason and the fix.
    let out = env.run(&["run", "--trust", "--", "sh", "-c", &fetch(&url)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.trim_end().ends_with("\n403"), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "`{}` is a private address (RFC 1918); moat does not connect to private networks",
            server.ip
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains("`network.allow`"), "{out:?}");
    assert!(
        out.stdout.contains(&format!("- \"{}:8000\"", server.ip)),
        "the entry to add, with its port: {out:?}"
    );
    assert!(!out.stdout.contains("the private file"), "{out:?}");

    // The trace records the refusal.
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["trace", "--network", "--json"]).stdout).unwrap();
    let events = json.as_array().unwrap();
    let refused = events.iter().find(|e| e["url"] == url.as_str()).unwrap();
    assert_eq!(refused["status"], 403, "{json}");
    assert_eq!(refused["blocked"], true, "{json}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("a private address (RFC 1918)"),
        "{json}"
    );
    let trace = env.run(&["trace", "--network"]);
    assert!(trace.stdout.contains(" 403 ("), "{trace:?}");
    assert!(trace.stdout.contains("BLOCKED: "), "{trace:?}");

    // Allowed by address and port: the file arrives. The network's gateway is the host's
    // own address, which stays refused.
    let allow = format!("{}:8000", server.ip);
    let script = format!(
        "{}; {}",
        fetch(&url),
        fetch(&format!("http://{}:8000/f", server.gateway))
    );
    let out = env.run(&["run", "--allow-host", &allow, "--", "sh", "-c", &script]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("the private file\n\n200\n"),
        "allowed: {out:?}"
    );
    assert!(
        out.stdout.contains("an address of the proxy's own host")
            && out.stdout.trim_end().ends_with("403"),
        "the gateway is the host: {out:?}"
    );
}
