//! `moat grant`, `moat grant list`, `moat grant providers` and `moat revoke` end to end:
//! credentials from the environment, the Anthropic menu driven through a terminal, a fake
//! `claude setup-token`, validation requests against a fake HTTPS service reached through
//! `MOAT_CONNECT_TO`. Every test keeps the key in a file (`MOAT_KEYRING=file`).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_credentials::{ChainKeySource, CredentialStore, KeyringMode, ProviderName};
use moat_home::MoatHome;

use crate::fake_upstream::FakeUpstream;
use crate::harness::{Out, TestEnv};

const GITHUB_TOKEN: &str = "ghp_TESTtokenVALUE0123456789abcdefghijkl";
const ANTHROPIC_KEY: &str = "sk-ant-api03-TESTkeyVALUE-0123456789abcdefghijklmnopqrstuvwxyz";
const OAUTH_TOKEN: &str =
    "sk-ant-oat01-TESToauthVALUE-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `moat` with the key in a file, never the OS keyring.
fn moat(env: &TestEnv) -> Command {
    env.moat_file_keyring()
}

fn run(mut cmd: Command, args: &[&str]) -> Out {
    Out::from(cmd.args(args).output().unwrap())
}

fn assert_no_secret(out: &Out, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "a secret was printed: {out:?}"
        );
    }
}

fn error_line(out: &Out) -> &str {
    out.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
}

fn hint_line(out: &Out) -> &str {
    out.stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default()
}

fn credential_file(env: &TestEnv, provider: &str) -> PathBuf {
    env.moat_home()
        .join("credentials")
        .join(format!("{provider}.enc"))
}

/// The stored secret, decrypted with the test's key file.
fn stored_secret(env: &TestEnv, provider: &str) -> String {
    let home = MoatHome::at(env.moat_home());
    let store =
        CredentialStore::open(&home, &ChainKeySource::for_home(&home, KeyringMode::File)).unwrap();
    store
        .require(&ProviderName::parse(provider).unwrap())
        .unwrap()
        .secret()
        .expose()
        .to_owned()
}

/// The file is private and holds no trace of the secret.
fn assert_sealed(env: &TestEnv, provider: &str, secret: &str) {
    let path = credential_file(env, provider);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is readable in {}",
        path.display()
    );
    assert_eq!(stored_secret(env, provider), secret);
}

fn list_json(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = run(moat(env), &["grant", "list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

fn github_fake() -> FakeUpstream {
    FakeUpstream::start(&["api.github.com"], |seen| {
        if seen.path == "/user"
            && seen.header("authorization") == Some(format!("Bearer {GITHUB_TOKEN}").as_str())
        {
            (200, r#"{"login":"octocat","id":1}"#.into())
        } else {
            (401, r#"{"message":"Bad credentials"}"#.into())
        }
    })
}

fn anthropic_fake() -> FakeUpstream {
    FakeUpstream::start(&["api.anthropic.com"], |seen| {
        if seen.path == "/v1/models" && seen.header("x-api-key") == Some(ANTHROPIC_KEY) {
            (200, r#"{"data":[]}"#.into())
        } else {
            (
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#
                    .into(),
            )
        }
    })
}

#[test]
fn github_token_from_the_environment_is_validated_and_saved() {
    let env = TestEnv::new();
    let fake = github_fake();
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("GITHUB_TOKEN", GITHUB_TOKEN);
    let out = run(cmd, &["grant", "github"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("Using GITHUB_TOKEN from the environment.\n"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("Authenticated as: octocat\n"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "GitHub token saved to {}\n",
            credential_file(&env, "github").display()
        )),
        "{out:?}"
    );
    assert_no_secret(&out, &[GITHUB_TOKEN]);

    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].host, "api.github.com");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    assert!(seen[0].header("user-agent").unwrap().starts_with("moat/"));
    assert_sealed(&env, "github", GITHUB_TOKEN);

    let listed = list_json(&env);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["provider"], "github");
    assert_eq!(listed[0]["kind"], "token");
    assert_eq!(listed[0]["source"], "env:GITHUB_TOKEN");
    assert_eq!(listed[0]["status"], "ok");
}

#[test]
fn gh_token_works_too() {
    let env = TestEnv::new();
    let fake = github_fake();
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("GH_TOKEN", GITHUB_TOKEN);
    let out = run(cmd, &["grant", "gh"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Using GH_TOKEN from the environment."));
    assert!(out.stdout.contains("Authenticated as: octocat"));
}

#[test]
fn a_rejected_token_is_an_error_and_nothing_is_saved() {
    let env = TestEnv::new();
    let fake = github_fake();
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("GITHUB_TOKEN", "ghp_WRONGtoken000000000000000000000000000");
    let out = run(cmd, &["grant", "github"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        error_line(&out),
        "error: the GitHub token was rejected by `api.github.com` (HTTP 401)"
    );
    assert!(
        hint_line(&out).contains("run `moat grant github` again"),
        "{out:?}"
    );
    assert_no_secret(&out, &["ghp_WRONGtoken"]);
    assert!(!credential_file(&env, "github").exists());
    assert_eq!(fake.seen().len(), 1);
}

#[test]
fn validation_can_be_skipped_and_unreachable_services_say_how() {
    let env = TestEnv::new();
    // Nothing listens there: a validation request must fail with advice.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = moat(&env);
    cmd.env("GITHUB_TOKEN", GITHUB_TOKEN).env(
        "MOAT_CONNECT_TO",
        format!("api.github.com:443:127.0.0.1:{port}"),
    );
    let out = run(cmd, &["grant", "github"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        error_line(&out)
            .starts_with("error: the validation request to `https://api.github.com/user` failed"),
        "{out:?}"
    );
    assert!(hint_line(&out).contains("--no-validate"), "{out:?}");
    assert!(!credential_file(&env, "github").exists());

    let mut cmd = moat(&env);
    cmd.env("GITHUB_TOKEN", GITHUB_TOKEN).env(
        "MOAT_CONNECT_TO",
        format!("api.github.com:443:127.0.0.1:{port}"),
    );
    let out = run(cmd, &["grant", "github", "--no-validate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("Authenticated"), "{out:?}");
    assert_sealed(&env, "github", GITHUB_TOKEN);
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused() {
    let env = TestEnv::new();
    let fake = github_fake();
    let mut cmd = moat(&env);
    cmd.env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("MOAT_CONNECT_TO", fake.connect_to());
    let out = run(cmd, &["grant", "github"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(error_line(&out).contains("failed"), "{out:?}");
    assert!(hint_line(&out).contains("MOAT_EXTRA_CA_CERTS"), "{out:?}");
    assert!(fake.seen().is_empty());
    assert!(!credential_file(&env, "github").exists());
}

#[test]
fn anthropic_api_key_from_the_environment() {
    let env = TestEnv::new();
    let fake = anthropic_fake();

    // Without a terminal: saved without a request.
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    let out = run(cmd, &["grant", "anthropic"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "Using ANTHROPIC_API_KEY from the environment.\nAnthropic API key saved to {}\n",
            credential_file(&env, "anthropic").display()
        )
    );
    assert!(fake.seen().is_empty());
    assert_sealed(&env, "anthropic", ANTHROPIC_KEY);
    assert_eq!(list_json(&env)[0]["kind"], "api-key");

    // `--validate` checks it.
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    let out = run(cmd, &["grant", "anthropic", "--validate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("\nValidating API key...\nAPI key is valid.\nAnthropic API key saved to "),
        "{out:?}"
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/models");
    assert_eq!(seen[0].header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    assert_no_secret(&out, &[ANTHROPIC_KEY]);
}

#[test]
fn an_invalid_anthropic_key_is_refused_and_the_old_one_kept() {
    let env = TestEnv::new();
    let fake = anthropic_fake();
    let mut cmd = moat(&env);
    cmd.env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    assert_eq!(run(cmd, &["grant", "anthropic"]).code, 0);

    let wrong = "sk-ant-api03-WRONGkey-000000000000000000000000000000000000";
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("ANTHROPIC_API_KEY", wrong);
    let out = run(cmd, &["grant", "anthropic", "--validate"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        error_line(&out),
        "error: the Anthropic API key was rejected by `api.anthropic.com` (HTTP 401)"
    );
    assert_no_secret(&out, &[wrong, ANTHROPIC_KEY]);
    assert_eq!(stored_secret(&env, "anthropic"), ANTHROPIC_KEY);
}

#[test]
fn an_oauth_token_in_anthropic_api_key_is_saved_as_one() {
    let env = TestEnv::new();
    let mut cmd = moat(&env);
    cmd.env("ANTHROPIC_API_KEY", OAUTH_TOKEN);
    let out = run(cmd, &["grant", "anthropic"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Anthropic credential saved to "),
        "{out:?}"
    );
    assert_eq!(list_json(&env)[0]["kind"], "oauth-token");
    assert_sealed(&env, "anthropic", OAUTH_TOKEN);
}

#[test]
fn without_a_terminal_moat_never_asks_and_names_the_variable() {
    let env = TestEnv::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "github",
            "error: no terminal to ask for the GitHub token",
            "hint: set GITHUB_TOKEN or GH_TOKEN and run `moat grant github` again",
        ),
        (
            "openai",
            "error: no terminal to ask for the OpenAI API key",
            "hint: set OPENAI_API_KEY and run `moat grant openai` again",
        ),
        (
            "gitlab",
            "error: no terminal to ask for the `gitlab` token",
            "hint: set GITLAB_TOKEN or GL_TOKEN and run `moat grant gitlab` again",
        ),
        (
            "anthropic",
            "error: no terminal to show the `moat grant anthropic` menu",
            "hint: set ANTHROPIC_API_KEY and run `moat grant anthropic` again",
        ),
    ];
    for (provider, error, hint) in cases {
        // A pipe that stays open: a prompt would wait on it forever.
        let mut child = moat(&env)
            .args(["grant", provider])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = wait_with_timeout(child, Duration::from_secs(20));
        drop(stdin);
        assert_eq!(out.code, 1, "{out:?}");
        assert_eq!(error_line(&out), *error, "{out:?}");
        assert!(hint_line(&out).starts_with(hint), "{out:?}");
        assert!(!credential_file(&env, provider).exists());
    }
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> Out {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("moat waited for input without a terminal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Out::from(child.wait_with_output().unwrap())
}

#[test]
fn openai_and_gitlab_validate_with_their_own_headers() {
    let env = TestEnv::new();
    let fake = FakeUpstream::start(&["api.openai.com", "gitlab.com"], |seen| {
        match (seen.host.as_str(), seen.path.as_str()) {
            ("api.openai.com", "/v1/models") => (200, r#"{"data":[]}"#.into()),
            ("gitlab.com", "/api/v4/user") => (200, r#"{"username":"tanuki"}"#.into()),
            _ => (404, "{}".into()),
        }
    });
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("OPENAI_API_KEY", "sk-proj-TESTopenai");
    let out = run(cmd, &["grant", "openai"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("API key is valid.\nOpenAI API key saved to "),
        "{out:?}"
    );

    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("GL_TOKEN", "glpat-TESTgitlab");
    let out = run(cmd, &["grant", "gitlab"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Using GL_TOKEN from the environment."),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("Authenticated as: tanuki\ngitlab token saved to "),
        "{out:?}"
    );
    assert_no_secret(&out, &["glpat-TESTgitlab"]);

    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-proj-TESTopenai")
    );
    assert_eq!(seen[1].header("private-token"), Some("glpat-TESTgitlab"));
    assert_sealed(&env, "gitlab", "glpat-TESTgitlab");
}

#[test]
fn a_users_own_yaml_provider() {
    let env = TestEnv::new();
    let providers = env.moat_home().join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::write(
        providers.join("acme.yaml"),
        "name: acme\ndescription: Acme API\ntoken_env: ACME_TOKEN\nhosts: [api.acme.test]\n\
         inject:\n  header: X-Acme-Key\n  value: \"Key {token}\"\ncontainer_env: ACME_TOKEN\n\
         validate:\n  url: https://api.acme.test/v1/me\n  show: user.name\n",
    )
    .unwrap();
    let fake = FakeUpstream::start(&["api.acme.test"], |seen| {
        if seen.header("x-acme-key") == Some("Key acme-SECRET") {
            (200, r#"{"user":{"name":"wile"}}"#.into())
        } else {
            (403, "{}".into())
        }
    });

    let out = run(moat(&env), &["grant", "providers", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let acme = listed.iter().find(|p| p["name"] == "acme").unwrap();
    assert_eq!(acme["origin"], "custom");
    assert_eq!(acme["hosts"], serde_json::json!(["api.acme.test"]));
    assert_eq!(acme["token_env"], serde_json::json!(["ACME_TOKEN"]));

    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("ACME_TOKEN", "acme-SECRET");
    let out = run(cmd, &["grant", "acme"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Authenticated as: wile\n"), "{out:?}");
    assert_no_secret(&out, &["acme-SECRET"]);
    assert_sealed(&env, "acme", "acme-SECRET");
    assert_eq!(list_json(&env)[0]["kind"], "header");

    // A broken definition is named with its line, for every command that reads them.
    std::fs::write(
        providers.join("broken.yaml"),
        "name: broken\ndescription: B\ntoken_env: B_TOKEN\nhosts: [\"https://b.test\"]\ninject: {header: X}\n",
    )
    .unwrap();
    let out = run(moat(&env), &["grant", "providers"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        error_line(&out),
        format!(
            "error: {}:4:9: `hosts`: invalid host pattern `https://b.test`: it is a URL, not a host",
            providers.join("broken.yaml").display()
        )
    );
    assert!(!hint_line(&out).is_empty(), "{out:?}");
}

#[test]
fn list_providers_and_revoke() {
    let env = TestEnv::new();
    let out = run(moat(&env), &["grant", "list", "--json"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "[]"), "{out:?}");
    let out = run(moat(&env), &["grant", "list"]);
    assert!(out.stderr.contains("No credentials granted yet"), "{out:?}");

    let mut cmd = moat(&env);
    cmd.env("GITHUB_TOKEN", GITHUB_TOKEN);
    assert_eq!(run(cmd, &["grant", "github", "--no-validate"]).code, 0);
    let mut cmd = moat(&env);
    cmd.env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    assert_eq!(run(cmd, &["grant", "claude"]).code, 0);

    let out = run(moat(&env), &["grant", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0].starts_with("PROVIDER   KIND     SOURCE"),
        "{out:?}"
    );
    assert!(
        lines[0].contains("EXPIRES") && lines[0].ends_with("GRANTED"),
        "{out:?}"
    );
    assert!(
        lines[1].starts_with("anthropic  API key  env:ANTHROPIC_API_KEY  -"),
        "{out:?}"
    );
    assert!(
        lines[2].starts_with("github     token    env:GITHUB_TOKEN"),
        "{out:?}"
    );
    assert_no_secret(&out, &[GITHUB_TOKEN, ANTHROPIC_KEY]);

    let out = run(moat(&env), &["grant", "providers"]);
    assert_eq!(out.code, 0, "{out:?}");
    for name in ["anthropic (claude)", "github (gh)", "openai", "gitlab (gl)"] {
        assert!(out.stdout.contains(name), "{out:?}");
    }

    let out = run(moat(&env), &["revoke", "github"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "Revoked `github` (removed {})\n",
            credential_file(&env, "github").display()
        )
    );
    assert!(!credential_file(&env, "github").exists());
    let listed = list_json(&env);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["provider"], "anthropic");

    let out = run(moat(&env), &["revoke", "github"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(error_line(&out), "error: `github` is not granted");
    assert_eq!(
        hint_line(&out),
        "hint: `moat grant list` shows the granted credentials"
    );

    let out = run(moat(&env), &["revoke", "../etc"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(error_line(&out), "error: unknown provider `../etc`");

    let out = run(moat(&env), &["grant", "nosuch"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(error_line(&out), "error: unknown provider `nosuch`");
    assert!(hint_line(&out).contains("moat grant providers"), "{out:?}");
}

#[test]
fn paths_under_home_are_shown_with_a_tilde() {
    let env = TestEnv::new();
    let home = env.moat_home().parent().unwrap().join("home");
    let moat_home = home.join(".moat");
    let mut cmd = moat(&env);
    cmd.env("MOAT_HOME", &moat_home)
        .env("HOME", &home)
        .env("GITHUB_TOKEN", GITHUB_TOKEN);
    let out = run(cmd, &["grant", "github", "--no-validate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("GitHub token saved to ~/.moat/credentials/github.enc\n"),
        "{out:?}"
    );
}

/// A `moat` process on a terminal of its own, and everything it showed there.
struct Terminal {
    child: Child,
    master: File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(mut cmd: Command) -> Self {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = File::from(pty.slave);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            master,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Wait until `text` is on the screen (after `from` bytes of it).
    fn wait_for(&self, text: &str) {
        let start = Instant::now();
        while !self.screen().contains(text) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "`{text}` never appeared; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// The exit code and the whole screen.
    fn finish(mut self) -> (i32, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("moat did not finish; the screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        (status.code().unwrap_or(-1), self.screen())
    }
}

const MENU: &str = "
Choose authentication method:

  1. Claude subscription (recommended)
     Uses 'claude setup-token' to get a long-lived OAuth token.
     Requires a Claude Pro/Max subscription.

  2. Anthropic API key
     Use an API key from console.anthropic.com
     Billed per token to your API account.

  3. Import existing Claude Code credentials
     Use OAuth tokens from your local Claude Code installation.

Enter choice [1, 2, or 3]: ";

/// The screen with terminal line endings made plain.
fn plain(screen: &str) -> String {
    screen.replace("\r\n", "\n")
}

#[test]
fn menu_option_2_api_key_with_validation() {
    let env = TestEnv::new();
    let fake = anthropic_fake();
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.args(["grant", "anthropic"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Enter choice [1, 2, or 3]: ");
    assert!(plain(&term.screen()).contains(MENU), "{}", term.screen());
    // An answer out of range is asked again.
    term.type_keys("7\r");
    term.wait_for("Please enter 1, 2, or 3.");
    term.type_keys("2\r");
    term.wait_for("API Key: ");
    term.type_keys(&format!("{ANTHROPIC_KEY}\r"));
    term.wait_for("This makes a small API call. [Y/n]: ");
    term.type_keys("y\r");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    let expected = format!(
        "Enter your Anthropic API key.
You can find or create one at: https://console.anthropic.com/settings/keys

API Key: 

Validate API key with a test request? This makes a small API call. [Y/n]: y

Validating API key...
API key is valid.
Anthropic API key saved to {}
",
        credential_file(&env, "anthropic").display()
    );
    assert!(plain(&screen).ends_with(&expected), "{screen}");
    assert!(
        !screen.contains(ANTHROPIC_KEY),
        "the key was echoed: {screen}"
    );
    assert_eq!(fake.seen().len(), 1);
    assert_sealed(&env, "anthropic", ANTHROPIC_KEY);
}

#[test]
fn menu_option_2_without_validation() {
    let env = TestEnv::new();
    let mut cmd = moat(&env);
    cmd.args(["grant", "anthropic"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Enter choice [1, 2, or 3]: ");
    term.type_keys("2\r");
    term.wait_for("API Key: ");
    // Pasted in pieces, with a typo corrected by backspace.
    term.type_keys("sk-ant-api03-PASTED");
    term.type_keys("X\x7f-rest\r");
    term.wait_for("[Y/n]: ");
    term.type_keys("n\r");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("Validating"), "{screen}");
    assert!(!screen.contains("PASTED"), "{screen}");
    assert_eq!(stored_secret(&env, "anthropic"), "sk-ant-api03-PASTED-rest");
}

fn claude_code_fixture(env: &TestEnv, expires_at_ms: i64) {
    let dir = env.moat_home().parent().unwrap().join("home/.claude");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".credentials.json"),
        format!(
            r#"{{"claudeAiOauth":{{"accessToken":"{OAUTH_TOKEN}","refreshToken":"sk-ant-ort01-TESTrefresh","expiresAt":{expires_at_ms},"scopes":["user:inference"],"subscriptionType":"pro"}}}}"#
        ),
    )
    .unwrap();
}

#[test]
fn menu_option_3_imports_claude_code_credentials() {
    let env = TestEnv::new();
    // 2099-01-01T00:00:00Z
    claude_code_fixture(&env, 4_070_908_800_000);
    let mut cmd = moat(&env);
    cmd.args(["grant", "anthropic"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Enter choice [1, 2, or 3]: ");
    term.type_keys("3\r");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    let expected = format!(
        "Found Claude Code credentials.
  Subscription: pro
  Expires: 2099-01-01T00:00:00Z

Claude Code credentials imported to {}
",
        credential_file(&env, "anthropic").display()
    );
    assert!(plain(&screen).ends_with(&expected), "{screen}");
    assert!(!screen.contains("TESToauth"), "{screen}");
    assert_sealed(&env, "anthropic", OAUTH_TOKEN);
    let listed = list_json(&env);
    assert_eq!(listed[0]["kind"], "oauth-token");
    assert_eq!(listed[0]["subscription_type"], "pro");
    assert_eq!(listed[0]["source"], "imported ~/.claude/.credentials.json");
    assert_eq!(listed[0]["expires_at"], "2099-01-01T00:00:00Z");
}

#[test]
fn menu_option_3_refuses_expired_or_missing_credentials() {
    let env = TestEnv::new();
    let import = |env: &TestEnv| {
        let mut cmd = moat(env);
        cmd.args(["grant", "anthropic"]);
        let mut term = Terminal::start(cmd);
        term.wait_for("Enter choice [1, 2, or 3]: ");
        term.type_keys("3\r");
        term.finish()
    };
    let (code, screen) = import(&env);
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains(
            "error: no Claude Code credentials found in `~/.claude/.credentials.json`: the file \
             does not exist"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("hint: install Claude Code and log in"),
        "{screen}"
    );

    // 2020-01-01T00:00:00Z
    claude_code_fixture(&env, 1_577_836_800_000);
    let (code, screen) = import(&env);
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains(
            "error: the Claude Code credentials in `~/.claude/.credentials.json` expired at \
             2020-01-01T00:00:00Z"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("run `moat grant anthropic` again"),
        "{screen}"
    );
    assert!(!screen.contains("TESToauth"), "{screen}");
    assert!(!credential_file(&env, "anthropic").exists());
}

/// A directory holding a fake `claude` whose `setup-token` asks for a code, records it in
/// `code.txt` beside itself, and prints a token.
fn fake_claude() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        r#"#!/bin/sh
[ "$1" = "setup-token" ] || exit 2
printf 'Opening your browser to sign in...\n'
printf 'Paste code here if prompted > '
read code
printf '%s' "$code" > '{log}'
printf '\n\342\234\223 Long-lived authentication token created successfully!\n\n'
printf 'Your OAuth token (valid for 1 year):\n\n%s\n\nStore this token securely.\n' '{OAUTH_TOKEN}'
"#,
        log = dir.path().join("code.txt").display()
    );
    let path = dir.path().join("claude");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn menu_option_1_runs_claude_setup_token() {
    let env = TestEnv::new();
    let claude = fake_claude();
    let mut cmd = moat(&env);
    cmd.env("PATH", path_with(claude.path()))
        .args(["grant", "anthropic"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Enter choice [1, 2, or 3]: ");
    term.type_keys("1\r");
    term.wait_for("Paste code here if prompted > ");
    term.type_keys("CODE42\r");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    let screen = plain(&screen);
    assert!(
        screen.contains(
            "Running 'claude setup-token' to obtain authentication token...\n\
             This may open a browser for authentication.\n\n"
        ),
        "{screen}"
    );
    assert!(screen.contains("\nsk-ant-[hidden by moat]\n"), "{screen}");
    assert!(
        !screen.contains("TESToauth"),
        "the token was shown: {screen}"
    );
    assert!(
        screen.ends_with(&format!(
            "Anthropic credential saved to {}\n\nYou can now run 'moat claude' to start Claude Code.\n",
            credential_file(&env, "anthropic").display()
        )),
        "{screen}"
    );
    assert_eq!(
        std::fs::read_to_string(claude.path().join("code.txt")).unwrap(),
        "CODE42",
        "the keys reached `claude`"
    );
    assert_sealed(&env, "anthropic", OAUTH_TOKEN);
    let listed = list_json(&env);
    assert_eq!(listed[0]["kind"], "oauth-token");
    assert_eq!(listed[0]["source"], "claude setup-token");
}

#[test]
fn menu_option_1_without_claude_says_how_to_install_it() {
    let env = TestEnv::new();
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = moat(&env);
    cmd.env("PATH", empty.path()).args(["grant", "anthropic"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Enter choice [1, 2, or 3]: ");
    term.type_keys("1\r");
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("error: `claude` is not installed (it is not on PATH)"),
        "{screen}"
    );
    assert!(
        screen.contains("npm install -g @anthropic-ai/claude-code"),
        "{screen}"
    );
    assert!(!credential_file(&env, "anthropic").exists());
}

#[test]
fn github_prompt_at_a_terminal_with_gh_declined() {
    let env = TestEnv::new();
    let fake = github_fake();
    // A fake `gh` that is logged in.
    let bin = tempfile::tempdir().unwrap();
    let gh = bin.path().join("gh");
    std::fs::write(
        &gh,
        "#!/bin/sh\necho ghp_FROMghCLI000000000000000000000000000\n",
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("PATH", path_with(bin.path()))
        .args(["grant", "github"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Use token from gh CLI? [Y/n]: ");
    term.type_keys("n\r");
    term.wait_for("Token: ");
    term.type_keys(&format!("{GITHUB_TOKEN}\r"));
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Authenticated as: octocat"), "{screen}");
    assert!(
        !screen.contains(GITHUB_TOKEN) && !screen.contains("FROMghCLI"),
        "{screen}"
    );
    assert_eq!(list_json(&env)[0]["source"], "pasted");

    // Accepting the gh token: the fake rejects it, so nothing changes.
    let mut cmd = moat(&env);
    fake.apply(&mut cmd);
    cmd.env("PATH", path_with(bin.path()))
        .args(["grant", "github"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("Use token from gh CLI? [Y/n]: ");
    term.type_keys("\r");
    let (code, screen) = term.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("was rejected"), "{screen}");
    assert_eq!(stored_secret(&env, "github"), GITHUB_TOKEN);
}

#[test]
fn ctrl_c_at_a_hidden_prompt_cancels_and_restores_the_terminal() {
    let env = TestEnv::new();
    let mut cmd = moat(&env);
    cmd.args(["grant", "openai"]);
    let mut term = Terminal::start(cmd);
    term.wait_for("API Key: ");
    term.type_keys("sk-partial\x03");
    let (code, screen) = term.finish();
    assert_eq!(code, 130, "{screen}");
    assert!(!screen.contains("sk-partial"), "{screen}");
    assert!(!credential_file(&env, "openai").exists());
}
