//! `moat doctor` end to end: a healthy setup, a missing and an expired Anthropic
//! credential, Docker unreachable, `--json`, `--build`, and no secret in any output.
//! Every test keeps the key in a file (`MOAT_KEYRING=file`).

use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use moat_credentials::{
    ChainKeySource, Credential, CredentialKind, CredentialSource, CredentialStore, KeyringMode,
    ProviderName, Secret,
};
use moat_home::MoatHome;

use moat_test_support::{FakeUpstream, Reply};

use crate::harness::{Out, TestEnv};

const ANTHROPIC_KEY: &str = "sk-ant-api03-DOCTORkeyVALUE-0123456789abcdefghijklmnopqrstuvwxyz";
const OAUTH_TOKEN: &str = "sk-ant-oat01-DOCTORoauthVALUE-0123456789abcdefghijklmnopqrstuvwxyz";
const GITHUB_TOKEN: &str = "ghp_DOCTORtokenVALUE0123456789abcdefghijkl";

/// `moat` with the key in a file, never the OS keyring.
fn moat(env: &TestEnv) -> Command {
    env.moat_file_keyring()
}

fn run(mut cmd: Command, args: &[&str]) -> Out {
    Out::from(cmd.args(args).output().unwrap())
}

fn doctor(env: &TestEnv, args: &[&str]) -> Out {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    run(moat(env), &all)
}

/// The line of check `name` (`✓ docker  …`), and the hint below it if any.
fn check<'a>(out: &'a Out, name: &str) -> (&'a str, Option<&'a str>) {
    let mut lines = out.stdout.lines();
    let line = lines
        .by_ref()
        .find(|l| {
            l.split_once(' ').is_some_and(|(_, rest)| {
                rest.strip_prefix(name)
                    .is_some_and(|after| after.starts_with(' '))
            })
        })
        .unwrap_or_else(|| panic!("no `{name}` check: {out:?}"));
    let hint = lines
        .next()
        .map(str::trim_start)
        .filter(|l| l.starts_with("hint: "));
    (line, hint)
}

/// `config.yaml` with the build's download locations (`mirrors.debian`, `.node`,
/// `.npm`) at a local server that answers, so the report does not depend on what this
/// machine's network reaches. Keep the server alive while doctor runs.
fn answering_mirrors(env: &TestEnv) -> FakeUpstream {
    let server = FakeUpstream::start_plain(|_| Reply::text(200, ""));
    let base = format!("http://127.0.0.1:{}", server.port());
    std::fs::write(
        env.moat_home().join("config.yaml"),
        format!("mirrors:\n  debian: {base}/debian\n  node: {base}/node\n  npm: {base}/npm/\n"),
    )
    .unwrap();
    server
}

fn assert_no_secret(out: &Out) {
    for secret in [ANTHROPIC_KEY, OAUTH_TOKEN, GITHUB_TOKEN] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "a secret was printed: {out:?}"
        );
    }
}

/// Save a credential straight into the test's store.
fn store_credential(env: &TestEnv, provider: &str, kind: CredentialKind, secret: &str) {
    let home = MoatHome::at(env.moat_home());
    let store =
        CredentialStore::open(&home, &ChainKeySource::for_home(&home, KeyringMode::File)).unwrap();
    let credential = Credential::new(
        ProviderName::parse(provider).unwrap(),
        kind,
        Secret::new(secret),
        CredentialSource::Imported {
            from: "~/.claude/.credentials.json".into(),
        },
        Timestamp::now() - SignedDuration::from_hours(48),
    )
    .unwrap();
    store.save(&credential).unwrap();
}

fn oauth_expiring_at(at: Timestamp) -> CredentialKind {
    CredentialKind::OAuthToken {
        expires_at: Some(at),
        subscription_type: Some("pro".into()),
        scopes: vec!["user:inference".into()],
        refresh_token: None,
    }
}

#[test]
fn a_healthy_setup_passes_and_shows_no_secret() {
    let env = TestEnv::new();
    let _mirrors = answering_mirrors(&env);
    let mut grant = moat(&env);
    grant.env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    let out = run(grant, &["grant", "anthropic"]);
    assert_eq!(out.code, 0, "{out:?}");
    store_credential(&env, "github", CredentialKind::Token, GITHUB_TOKEN);

    let mut cmd = moat(&env);
    cmd.env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .env("GITHUB_TOKEN", GITHUB_TOKEN);
    let out = run(cmd, &["doctor"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_secret(&out);
    for name in [
        "docker",
        "base image",
        "moat home",
        "credential key",
        "anthropic",
        "proxy CA",
        "config.yaml",
    ] {
        let (line, hint) = check(&out, name);
        assert!(line.starts_with("✓ "), "{name}: {out:?}");
        assert_eq!(hint, None, "{name}: {out:?}");
    }
    assert!(check(&out, "docker").0.contains("Docker "), "{out:?}");
    assert!(
        check(&out, "anthropic")
            .0
            .ends_with("API key from env:ANTHROPIC_API_KEY, no expiry"),
        "{out:?}"
    );
    assert!(
        check(&out, "github credential")
            .0
            .starts_with("✓ github credential"),
        "{out:?}"
    );
    assert!(check(&out, "image build").0.starts_with("- "), "{out:?}");
    assert!(
        out.stdout
            .ends_with("\nEverything moat needs is in place.\n"),
        "{out:?}"
    );
    // Looking creates nothing: no proxy CA.
    assert!(!env.moat_home().join("proxy-ca").exists());
}

#[test]
fn no_credential_fails_with_the_grant_hint_and_creates_no_key() {
    let env = TestEnv::new();
    let _mirrors = answering_mirrors(&env);
    let out = doctor(&env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let (line, hint) = check(&out, "anthropic");
    assert_eq!(line.split_whitespace().next(), Some("✗"), "{out:?}");
    assert!(line.ends_with("no Anthropic credential"), "{out:?}");
    assert_eq!(
        hint,
        Some(
            "hint: run `moat grant anthropic` (a Claude subscription, an API key, or your \
             Claude Code login; it uses ANTHROPIC_API_KEY when that is set)"
        )
    );
    assert!(check(&out, "credential key").0.starts_with("✓ "), "{out:?}");
    assert!(out.stdout.ends_with("\n1 problem to fix.\n"), "{out:?}");
    assert!(!env.moat_home().join("encryption.key").exists());
}

#[test]
fn an_expired_oauth_credential_says_so_and_how_to_renew_it() {
    let env = TestEnv::new();
    let _mirrors = answering_mirrors(&env);
    store_credential(
        &env,
        "anthropic",
        oauth_expiring_at(Timestamp::now() - SignedDuration::from_hours(3)),
        OAUTH_TOKEN,
    );
    // An expired credential of another provider only warns.
    store_credential(
        &env,
        "github",
        oauth_expiring_at(Timestamp::now() - SignedDuration::from_hours(1)),
        GITHUB_TOKEN,
    );
    let out = doctor(&env, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_no_secret(&out);
    let (line, hint) = check(&out, "anthropic");
    assert!(line.starts_with("✗ "), "{out:?}");
    assert!(line.contains("Credential expired at "), "{out:?}");
    assert!(
        line.ends_with("(OAuth token (pro) from imported ~/.claude/.credentials.json)"),
        "{out:?}"
    );
    assert_eq!(hint, Some("hint: run `moat grant anthropic`"));
    let (line, hint) = check(&out, "github credential");
    assert!(line.starts_with("! "), "{out:?}");
    assert_eq!(hint, Some("hint: run `moat grant github`"));
    assert!(
        out.stdout.ends_with("\n1 problem to fix, 1 warning.\n"),
        "{out:?}"
    );
}

#[test]
fn a_credential_expiring_within_a_week_is_a_warning() {
    let env = TestEnv::new();
    store_credential(
        &env,
        "anthropic",
        oauth_expiring_at(Timestamp::now() + SignedDuration::from_hours(3 * 24 + 1)),
        OAUTH_TOKEN,
    );
    let out = doctor(&env, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let (line, hint) = check(&out, "anthropic");
    assert!(line.starts_with("! "), "{out:?}");
    assert!(line.ends_with("(in 3 days)"), "{out:?}");
    assert!(hint.unwrap().contains("`moat grant anthropic`"), "{out:?}");
}

#[test]
fn docker_down_fails_with_a_docker_hint() {
    let env = TestEnv::new();
    let mut cmd = moat(&env);
    cmd.env("DOCKER_HOST", "unix:///nonexistent.sock");
    let out = run(cmd, &["doctor", "--build"]);
    assert_eq!(out.code, 1, "{out:?}");
    let (line, hint) = check(&out, "docker");
    assert!(line.starts_with("✗ "), "{out:?}");
    assert!(line.contains("unix:///nonexistent.sock"), "{out:?}");
    assert!(hint.unwrap().contains("DOCKER_HOST"), "{out:?}");
    assert!(check(&out, "base image").0.starts_with("- "), "{out:?}");
    assert!(
        check(&out, "image build")
            .0
            .ends_with("skipped: Docker is not reachable"),
        "{out:?}"
    );
}

#[test]
fn json_is_an_array_of_checks() {
    let env = TestEnv::new();
    let mut cmd = moat(&env);
    cmd.env("MOAT_CONNECT_TO", "not-a-rule")
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    let out = run(cmd, &["doctor", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_no_secret(&out);
    let checks: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    for c in &checks {
        assert!(c["check"].is_string(), "{c}");
        assert!(c["detail"].is_string(), "{c}");
        assert!(
            ["ok", "warn", "fail", "skip"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["hint"].is_string() || c["hint"].is_null(), "{c}");
    }
    let find = |name: &str| checks.iter().find(|c| c["check"] == name).unwrap();
    assert_eq!(find("docker")["status"], "ok");
    assert_eq!(find("anthropic")["status"], "fail");
    assert!(
        find("anthropic")["hint"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY is set")
    );
    assert_eq!(find("MOAT_CONNECT_TO")["status"], "fail");
    assert!(find("MOAT_CONNECT_TO")["hint"].is_string());
    assert_eq!(find("image build")["status"], "skip");
}

#[test]
fn build_proves_an_image_builds() {
    let env = TestEnv::new();
    let out = doctor(&env, &["--build", "--json"]);
    let checks: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let build = checks.iter().find(|c| c["check"] == "image build").unwrap();
    assert_eq!(build["status"], "ok", "{out:?}");
    assert!(
        build["detail"].as_str().unwrap().contains("moat/run:"),
        "{out:?}"
    );
}

/// The way out of an image build: a Node.js base that does not answer points to
/// `mirrors.node`; HTTPS to the npm registry signed by a CA the image does not have
/// points to `MOAT_EXTRA_CA_CERTS` (and says "re-signed" when this machine trusts that
/// CA); with the CA given, the registry is fine.
#[test]
fn the_build_network_names_the_setting_that_fixes_it() {
    let env = TestEnv::new();
    let debian = FakeUpstream::start_plain(|_| Reply::text(200, ""));
    let npm = FakeUpstream::start(&["localhost"], |_| Reply::text(200, ""));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        env.moat_home().join("config.yaml"),
        format!(
            "mirrors:\n  debian: http://127.0.0.1:{}/debian\n  node: https://127.0.0.1:{closed_port}/dist\n  npm: https://localhost:{}/\n",
            debian.port(),
            npm.port()
        ),
    )
    .unwrap();

    let out = doctor(&env, &[]);
    let (line, hint) = check(&out, "build network: Debian");
    assert!(line.starts_with("✓ "), "{out:?}");
    assert_eq!(hint, None);
    let (line, hint) = check(&out, "build network: Node.js");
    assert!(
        line.starts_with("! ") && line.contains("cannot be reached"),
        "{out:?}"
    );
    assert!(hint.unwrap().contains("`mirrors.node`"), "{out:?}");
    let (line, hint) = check(&out, "build network: npm");
    assert!(
        line.starts_with("! ") && line.contains("not trusted"),
        "{out:?}"
    );
    assert!(hint.unwrap().contains("MOAT_EXTRA_CA_CERTS"), "{out:?}");

    // This machine trusts the CA (its roots are the test CA's file), images do not.
    let mut cmd = moat(&env);
    cmd.env("SSL_CERT_FILE", npm.ca_file());
    let out = run(cmd, &["doctor"]);
    let (line, hint) = check(&out, "build network: npm");
    assert!(line.contains("re-signed on the way"), "{out:?}");
    assert!(hint.unwrap().contains("MOAT_EXTRA_CA_CERTS"), "{out:?}");

    let mut cmd = moat(&env);
    cmd.env("MOAT_EXTRA_CA_CERTS", npm.ca_file());
    let out = run(cmd, &["doctor"]);
    let (line, hint) = check(&out, "build network: npm");
    assert!(line.starts_with("✓ "), "{out:?}");
    assert_eq!(hint, None, "{out:?}");
}
