//! Credentials in runs: a granted token reaches the (fake) upstream, `git clone` over HTTPS
//! is authenticated by the proxy, and nothing inside the container ever holds the token.

use std::process::Command;

use moat_test_support::{FakeUpstream, Reply, git_http_backend};

use crate::harness::{Out, TestEnv};

/// The real token: only the host and the fake upstream ever see it.
const TOKEN: &str = "ghp_moatTestSecret0123456789abcdefghij";

fn with_upstream(cmd: &mut Command, upstream: &FakeUpstream) {
    cmd.env("MOAT_KEYRING", "file")
        .env(
            "MOAT_CONNECT_TO",
            format!(
                "api.github.com:443:127.0.0.1:{0},github.com:443:127.0.0.1:{0}",
                upstream.port()
            ),
        )
        .env("MOAT_EXTRA_CA_CERTS", upstream.ca_file());
}

/// A bare repository `acme/repo.git` under a new directory, with one commit.
fn git_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let git = |args: &[&str], dir: &std::path::Path| {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.test"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {ok:?}");
    };
    std::fs::create_dir_all(&work).unwrap();
    git(&["init", "-q", "-b", "main"], &work);
    std::fs::write(work.join("README"), "hello from the fake github\n").unwrap();
    git(&["add", "README"], &work);
    git(&["commit", "-q", "-m", "first"], &work);
    std::fs::create_dir_all(root.path().join("acme")).unwrap();
    git(
        &["clone", "-q", "--bare", "work", "acme/repo.git"],
        root.path(),
    );
    root
}

#[test]
fn a_granted_token_is_injected_and_never_enters_the_container() {
    let env = TestEnv::new();
    let repos = git_root();
    let repo_root = repos.path().to_owned();
    let basic = format!(
        "Basic {}",
        base64_encode(format!("x-access-token:{TOKEN}").as_bytes())
    );
    let upstream = FakeUpstream::start(&["api.github.com", "github.com"], move |r| {
        let host = r.header("host").unwrap_or_default();
        if host.starts_with("api.github.com") && r.path == "/echo" {
            // A server that says the request back (a debug endpoint, an error page).
            let got = r.header("authorization").unwrap_or_default().to_owned();
            let mut reply = Reply::text(200, format!("{} you sent: {got}\n", r.method));
            reply.headers.push(("x-echo".to_owned(), got));
            reply
        } else if host.starts_with("api.github.com") {
            if r.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
                Reply::json(200, r#"{"login":"octocat"}"#)
            } else {
                Reply::json(401, r#"{"message":"Bad credentials"}"#)
            }
        } else if r.header("authorization") == Some(basic.as_str()) {
            git_http_backend(&repo_root, r)
        } else {
            Reply::text(401, "authentication required")
        }
    });

    // `moat grant github` takes the token from the environment and checks it against the
    // (fake) API, reached like the real one through MOAT_CONNECT_TO.
    let mut grant = env.moat();
    with_upstream(&mut grant, &upstream);
    let out = Out::from(
        grant
            .env("GITHUB_TOKEN", TOKEN)
            .args(["grant", "github", "--validate"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("Authenticated as: octocat"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
        "{out:?}"
    );

    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [curl, git]\n",
    )
    .unwrap();
    // The needle is assembled inside the container into a file no search covers, so no
    // command line (not even grep's) ever holds it.
    let (a, b) = TOKEN.split_at(10);
    let script = format!(
        "echo \"api: $(curl -sS https://api.github.com/user)\"; \
         git clone -q https://github.com/acme/repo.git /tmp/clone && echo \"clone: $(cat /tmp/clone/README)\"; \
         echo \"GH_TOKEN is a placeholder: $( [ -n \"$GH_TOKEN\" ] && echo yes)\"; \
         echo \"echo: $(curl -sS -D /tmp/echo-headers https://api.github.com/echo)\"; \
         echo \"echo header: $(grep -i '^x-echo:' /tmp/echo-headers | tr -d '\\r')\"; \
         echo \"trace: $(curl -sS -o /dev/null -w '%{{http_code}}' -X TRACE https://api.github.com/echo)\"; \
         a='{a}'; b='{b}'; printf '%s%s' \"$a\" \"$b\" > /dev/shm/needle; \
         echo \"env: $(env | grep -cF -f /dev/shm/needle)\"; \
         echo \"files: $(grep -rlsF -f /dev/shm/needle /home /etc /tmp /workspace /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | wc -l)\""
    );
    let mut run = env.moat();
    with_upstream(&mut run, &upstream);
    let out = Out::from(
        run.args([
            "run", "--trust", "--grant", "github", "--", "sh", "-c", &script,
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], r#"api: {"login":"octocat"}"#, "{out:?}");
    assert_eq!(lines[1], "clone: hello from the fake github", "{out:?}");
    assert_eq!(lines[2], "GH_TOKEN is a placeholder: yes", "{out:?}");
    // The agent asks a granted host to say its request back: it gets the credential
    // blanked, and a TRACE (which says back everything) does not go out with it.
    let blank = "*".repeat(format!("Bearer {TOKEN}").len());
    assert_eq!(lines[3], format!("echo: GET you sent: {blank}"), "{out:?}");
    assert_eq!(lines[4], format!("echo header: x-echo: {blank}"), "{out:?}");
    assert_eq!(lines[5], "trace: 405", "{out:?}");
    assert_eq!(lines[6], "env: 0", "{out:?}");
    assert_eq!(lines[7], "files: 0", "{out:?}");
    assert!(!out.stdout.contains(TOKEN), "{out:?}");
    assert!(!out.stderr.contains(TOKEN), "{out:?}");

    // The trace shows each request and which grant was injected; no token in it.
    let trace = env.run(&["trace", "--network"]);
    assert!(
        trace.stdout.contains("GET https://api.github.com/user 200"),
        "{trace:?}"
    );
    assert!(trace.stdout.contains("[grant: github]"), "{trace:?}");
    assert!(
        trace
            .stdout
            .contains("https://github.com/acme/repo.git/info/refs"),
        "{trace:?}"
    );
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    for file in ["network.jsonl", "metadata.json", "logs.jsonl"] {
        let text =
            std::fs::read_to_string(env.moat_home().join("runs").join(&id).join(file)).unwrap();
        assert!(!text.contains(TOKEN), "{file} holds the token");
    }
}

#[test]
fn a_grant_that_was_never_given_stops_the_run_before_it_starts() {
    let env = TestEnv::new();
    let out = Out::from(
        env.moat()
            .env("MOAT_KEYRING", "file")
            .args(["run", "--grant", "github", "--", "true"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("github"), "{out:?}");
    assert!(
        out.stderr.contains("hint: ") && out.stderr.contains("moat grant github"),
        "{out:?}"
    );
    assert!(env.run_dirs().is_empty());
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
