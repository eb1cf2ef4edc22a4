//! `moat claude` with the real Claude Code CLI (npm `@anthropic-ai/claude-code`, built into
//! the image from the npm registry) against a fake `api.anthropic.com` on loopback, reached
//! through the run's proxy with `MOAT_CONNECT_TO`.

use std::path::PathBuf;
use std::process::Command;

use moat_credentials::{
    ChainKeySource, Credential, CredentialKind, CredentialSource, CredentialStore, KeyringMode,
    ProviderName, Secret,
};
use moat_home::MoatHome;
use moat_test_support::anthropic::FakeAnthropic;

use crate::harness::{Out, TestEnv, docker, wait_for};
use crate::mirrors::{host_extra_cas, node_mirror};

/// The real credentials: only the host and the fake ever see them.
const API_KEY: &str = "sk-ant-api03-moatTestRealKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH";
const OAUTH_TOKEN: &str =
    "sk-ant-oat01-moatTestRealOAuth0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

/// A test's Claude world: its moat environment, the fake API, and the settings that make
/// image builds (npm registry through this network, Node from a local mirror) and the
/// proxy (the fake's CA, its address) work here.
pub(crate) struct Claude {
    pub(crate) env: TestEnv,
    pub(crate) fake: FakeAnthropic,
    pub(crate) ca_file: PathBuf,
}

impl Claude {
    pub(crate) fn new(reply: &str) -> Self {
        let env = TestEnv::new();
        let fake = FakeAnthropic::start(reply);
        // One file for both: the network's re-signing CAs (npm during builds) and the
        // fake's test CA (the proxy's upstream).
        let mut pem = host_extra_cas();
        pem.extend(std::fs::read(fake.ca_file()).unwrap());
        let ca_file = env.moat_home().join("../extra-ca.pem");
        std::fs::write(&ca_file, pem).unwrap();
        std::fs::write(
            env.moat_home().join("config.yaml"),
            format!("mirrors:\n  node: {}\n", node_mirror("24")),
        )
        .unwrap();
        Claude { env, fake, ca_file }
    }

    pub(crate) fn moat(&self) -> Command {
        let mut cmd = self.env.moat_file_keyring();
        cmd.env("MOAT_BUILD_NETWORK", "host")
            .env("MOAT_EXTRA_CA_CERTS", &self.ca_file)
            .env(
                "MOAT_CONNECT_TO",
                format!("api.anthropic.com:443:127.0.0.1:{}", self.fake.port()),
            );
        cmd
    }

    /// [`Claude::moat`]'s environment (and `HOME`) as `K=V ...`, for a tmux session.
    pub(crate) fn terminal_env(&self) -> String {
        format!(
            "MOAT_KEYRING=file MOAT_BUILD_NETWORK=host MOAT_EXTRA_CA_CERTS='{}' MOAT_CONNECT_TO=api.anthropic.com:443:127.0.0.1:{} HOME='{}'",
            self.ca_file.display(),
            self.fake.port(),
            self.home().display()
        )
    }

    pub(crate) fn run(&self, args: &[&str]) -> Out {
        Out::from(self.moat().args(args).output().unwrap())
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.env.moat_home().join("../home")
    }

    /// Store `secret` as the anthropic credential, as `moat grant anthropic` would.
    pub(crate) fn grant(&self, secret: &str) {
        let out = Out::from(
            self.moat()
                .env("ANTHROPIC_API_KEY", secret)
                .args(["grant", "anthropic", "--no-validate"])
                .output()
                .unwrap(),
        );
        assert_eq!(out.code, 0, "{out:?}");
    }

    /// [`Claude::moat`] with `MOAT_CONNECT_TO` sending `hosts` (name, port) to loopback too.
    pub(crate) fn moat_reaching(&self, hosts: &[(&str, u16)]) -> Command {
        let mut rules = vec![format!(
            "api.anthropic.com:443:127.0.0.1:{}",
            self.fake.port()
        )];
        rules.extend(
            hosts
                .iter()
                .map(|(host, port)| format!("{host}:443:127.0.0.1:{port}")),
        );
        let mut cmd = self.moat();
        cmd.env("MOAT_CONNECT_TO", rules.join(","));
        cmd
    }

    /// `moat claude sessions --json`, parsed.
    fn sessions(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["claude", "sessions", "--json"]);
        assert_eq!(out.code, 0, "{out:?}");
        serde_json::from_str(&out.stdout).unwrap()
    }
}

/// Whether `needle` occurs anywhere in the (stopped) container's files or configuration.
pub(crate) fn container_holds(container: &str, needle: &str) -> bool {
    let inspect = docker(&["inspect", container]);
    assert_eq!(inspect.code, 0, "{inspect:?}");
    if inspect.stdout.contains(needle) {
        return true;
    }
    let export = Command::new(crate::harness::DOCKER)
        .args(["export", container])
        .output()
        .unwrap();
    assert!(export.status.success());
    export
        .stdout
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn claude_p_answers_with_an_api_key_that_never_enters_the_container() {
    let claude = Claude::new("Hello from the fake Anthropic API.");
    claude.grant(API_KEY);
    // The host's onboarding state: the account goes in, its stored key does not.
    std::fs::write(
        claude.home().join(".claude.json"),
        r#"{"oauthAccount":{"emailAddress":"dev@example.test"},"numStartups":41,"primaryApiKey":"sk-ant-api03-hostOnlySecret","mcpServers":{"x":{"headers":{"Authorization":"Bearer hostOnlySecret"}}}}"#,
    )
    .unwrap();
    let out = claude.run(&["claude", "--keep", "--name", "first", "-p", "say hello"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Hello from the fake Anthropic API."),
        "{out:?}"
    );
    assert!(!out.stdout.contains(API_KEY) && !out.stderr.contains(API_KEY));

    // The fake saw the real key, as `x-api-key`, on the conversation's request.
    let main = claude.fake.main_request().expect("a /v1/messages request");
    assert_eq!(main.header("x-api-key"), Some(API_KEY));
    assert!(main.has_message_text("user", "say hello"), "{main:?}");

    // Nothing the container had holds the key: environment, files, process arguments.
    let run = &claude.env.list()[0];
    let container = run["container_id"].as_str().unwrap();
    assert!(!container_holds(container, API_KEY));
    assert!(!container_holds(container, "hostOnlySecret"));
    assert!(container_holds(container, "dev@example.test"));
    docker(&["rm", "-f", container]);

    // The request is in the trace, with the grant that was injected.
    let trace = claude.run(&["trace", "--network"]);
    assert_eq!(trace.code, 0, "{trace:?}");
    assert!(
        trace
            .stdout
            .lines()
            .any(|l| l.contains("POST https://api.anthropic.com/v1/messages")
                && l.contains(" 200 ")
                && l.contains("anthropic")),
        "{trace:?}"
    );
    assert!(!trace.stdout.contains(API_KEY));

    // The conversation landed on the host, in Claude Code's directory for the workspace.
    let sessions = claude.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let id = sessions[0]["session_id"].as_str().unwrap();
    assert_eq!(sessions[0]["run_name"], "first");
    let project = claude.home().join(".claude/projects").join(
        claude
            .env
            .workspace()
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
    );
    let log = std::fs::read_to_string(project.join(format!("{id}.jsonl"))).unwrap();
    assert!(log.contains("say hello"));
    assert!(!log.contains(API_KEY));
}

#[test]
fn an_oauth_token_goes_as_bearer_with_the_oauth_beta() {
    let claude = Claude::new("OAuth works.");
    claude.grant(OAUTH_TOKEN);
    let out = claude.run(&["claude", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("OAuth works."), "{out:?}");
    let main = claude.fake.main_request().expect("a /v1/messages request");
    assert_eq!(
        main.header("authorization"),
        Some(format!("Bearer {OAUTH_TOKEN}").as_str())
    );
    assert!(main.header("x-api-key").is_none(), "{main:?}");
    assert!(main.betas().contains(&"oauth-2025-04-20"), "{main:?}");
}

#[test]
fn continue_and_resume_carry_the_conversation() {
    let claude = Claude::new("Noted: pelican.");
    claude.grant(API_KEY);
    let first = claude.run(&["claude", "--name", "one", "-p", "remember the word pelican"]);
    assert_eq!(first.code, 0, "{first:?}");

    claude.fake.set_reply("The word was pelican.");
    let second = claude.run(&["claude", "-c", "-p", "which word?"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second.stdout.contains("The word was pelican."),
        "{second:?}"
    );
    // Claude Code sent the first exchange along with the new question.
    let main = claude.fake.main_request().unwrap();
    assert!(
        main.has_message_text("user", "remember the word pelican"),
        "{main:?}"
    );
    assert!(main.has_message_text("user", "which word?"), "{main:?}");

    // Both runs are listed, newest first, with the conversation they held.
    let sessions = claude.sessions();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions[1]["run_name"], "one");
    assert!(
        sessions
            .iter()
            .all(|s| s["state"] == "exited" && s["exit_code"] == 0),
        "state and exit_code apart, as in `moat list --json`: {sessions:?}"
    );

    // `--resume` takes the run's name and finds its session (and workspace).
    claude.fake.set_reply("Resumed.");
    let third = claude.run(&["claude", "--resume", "one", "-p", "again"]);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(third.stdout.contains("Resumed."), "{third:?}");
    let main = claude.fake.main_request().unwrap();
    assert!(
        main.has_message_text("user", "remember the word pelican"),
        "{main:?}"
    );

    // A session ID that is not a UUID is refused before anything starts.
    let bad = claude.run(&["claude", "--resume", "../../etc/passwd", "-p", "x"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(
        bad.stderr
            .contains("neither a Claude session ID nor a moat run"),
        "{bad:?}"
    );
}

#[test]
fn moat_resume_is_claude_continue() {
    let claude = Claude::new("First.");
    claude.grant(API_KEY);
    assert_eq!(claude.run(&["claude", "-p", "the colour is teal"]).code, 0);
    claude.fake.set_reply("Teal.");
    let out = claude.run(&["resume", "-p", "what colour?"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Teal."), "{out:?}");
    let main = claude.fake.main_request().unwrap();
    assert!(
        main.has_message_text("user", "the colour is teal"),
        "{main:?}"
    );
}

#[test]
fn without_a_credential_nothing_starts() {
    let claude = Claude::new("unused");
    let out = claude.run(&["claude", "-p", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .starts_with("error: no Anthropic credential: Claude Code needs one"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("hint: run `moat grant anthropic`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("ANTHROPIC_API_KEY"), "{out:?}");
    assert!(claude.env.run_dirs().is_empty());
    assert!(claude.fake.requests().is_empty());
}

#[test]
fn an_expired_oauth_token_says_so() {
    let claude = Claude::new("unused");
    let home = MoatHome::at(claude.env.moat_home());
    let store =
        CredentialStore::open(&home, &ChainKeySource::for_home(&home, KeyringMode::File)).unwrap();
    let expired = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let credential = Credential::new(
        ProviderName::anthropic(),
        CredentialKind::OAuthToken {
            expires_at: Some(expired),
            subscription_type: Some("pro".into()),
            scopes: vec!["user:inference".into()],
            refresh_token: None,
        },
        Secret::new(OAUTH_TOKEN),
        CredentialSource::Imported {
            from: "~/.claude/.credentials.json".into(),
        },
        expired - jiff::SignedDuration::from_hours(10),
    )
    .unwrap();
    store.save(&credential).unwrap();
    let out = claude.run(&["claude", "-p", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("credential expired"), "{out:?}");
    assert!(out.stderr.contains("moat grant anthropic"), "{out:?}");
    assert!(!out.stderr.contains(OAUTH_TOKEN));
    assert!(claude.env.run_dirs().is_empty());
}

#[test]
fn docker_down_is_explained() {
    let claude = Claude::new("unused");
    claude.grant(API_KEY);
    let out = Out::from(
        claude
            .moat()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["claude", "-p", "hi"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot connect to the Docker daemon at `unix:///nonexistent/docker.sock`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("hint:"), "{out:?}");
    assert!(claude.env.run_dirs().is_empty());
}

#[test]
fn interactive_claude_answers_without_onboarding_screens() {
    let claude = Claude::new("Interactive hello from the fake.");
    claude.grant(API_KEY);
    let tmux = crate::interactive::Tmux::new(&claude.env);
    let envs = claude.terminal_env();
    tmux.start_with_env(&claude.env, "claude", &envs, "claude --name tui");
    // The prompt box of Claude Code's TUI, without a theme picker, login or trust dialog.
    // The first Claude image of the suite may be built here, with its progress shown.
    let screen = tmux.wait_screen_within(
        "claude",
        "Claude Code's prompt",
        std::time::Duration::from_secs(900),
        |screen| screen.contains("bypass permissions") || screen.contains("? for shortcuts"),
    );
    for onboarding in [
        "Choose the text style",
        "Select login method",
        "Do you trust",
    ] {
        assert!(!screen.contains(onboarding), "{screen}");
    }
    tmux.keys("claude", &["say hello", "Enter"]);
    tmux.wait_screen("claude", "Interactive hello from the fake.");
    let main = claude.fake.main_request().unwrap();
    assert_eq!(main.header("x-api-key"), Some(API_KEY));
    // Leave Claude Code; moat ends with its exit code.
    tmux.keys("claude", &["C-c"]);
    tmux.keys("claude", &["C-c"]);
    let screen = tmux.wait_screen("claude", "MOAT-EXIT=");
    assert!(screen.contains("MOAT-EXIT=0"), "{screen}");
    let sessions = claude.sessions();
    assert_eq!(sessions.len(), 1);
    // The last words are moat's: how to go on with the conversation under moat.
    let session = sessions[0]["session_id"].as_str().unwrap();
    assert!(
        screen
            .replace('\n', "")
            .contains(&format!("moat claude --resume {session}")),
        "{screen}"
    );
    // `moat logs` of the TUI session is the text that was on the screen.
    let logs = claude.run(&["logs", "tui"]);
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(
        logs.stdout.contains("Interactive hello from the fake."),
        "{}",
        logs.stdout
    );
    assert!(!logs.stdout.contains('\x1b'), "{:?}", logs.stdout);
}

#[test]
fn a_detached_claude_is_reattached_with_its_tui() {
    let claude = Claude::new("Hello after attach.");
    claude.grant(API_KEY);
    let out = claude.run(&["claude", "-d", "--name", "bg"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.stdout.trim().to_owned();
    assert!(id.starts_with("run_"), "{out:?}");
    claude.env.wait_for_state(&id, "running");
    // Its conversation is in use: `--resume` points at `moat attach` instead.
    let busy = claude.run(&["claude", "--resume", "bg", "-p", "x"]);
    assert_eq!(busy.code, 125, "{busy:?}");
    assert!(busy.stderr.contains("is still running"), "{busy:?}");
    assert!(
        busy.stderr.contains(&format!("moat attach {id}")),
        "{busy:?}"
    );

    let tmux = crate::interactive::Tmux::new(&claude.env);
    tmux.start_with_env(&claude.env, "attach", "HOME=/nonexistent", "attach bg");
    // Redraw: the TUI was drawn before anyone watched.
    std::thread::sleep(std::time::Duration::from_secs(2));
    tmux.keys("attach", &["C-l"]);
    wait_for("Claude Code's prompt after attach", || {
        let screen = tmux.screen("attach");
        (screen.contains("bypass permissions") || screen.contains("? for shortcuts"))
            .then_some(screen)
    });
    tmux.keys("attach", &["say hello", "Enter"]);
    tmux.wait_screen("attach", "Hello after attach.");
    // Ending Claude Code ends the run; attach returns its exit code.
    tmux.keys("attach", &["C-c"]);
    tmux.keys("attach", &["C-c"]);
    let screen = tmux.wait_screen("attach", "MOAT-EXIT=");
    assert!(screen.contains("MOAT-EXIT=0"), "{screen}");
    let sessions = claude.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["run_name"], "bg");
}

#[test]
fn strict_policy_lets_claude_reach_anthropic_and_agent_yaml_grants_count() {
    let claude = Claude::new("Strictly speaking, hello.");
    claude.grant(API_KEY);
    std::fs::write(
        claude.env.workspace().join("agent.yaml"),
        "network:\n  policy: strict\n",
    )
    .unwrap();
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Strictly speaking, hello."), "{out:?}");
    let trace = claude.run(&["trace", "--network"]);
    assert!(!trace.stdout.contains("BLOCKED"), "{trace:?}");

    // `grants:` in agent.yaml are the run's too: an ungranted one stops it.
    std::fs::write(
        claude.env.workspace().join("agent.yaml"),
        "grants:\n  - github\n",
    )
    .unwrap();
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("`github` is not granted"), "{out:?}");
}

/// The real Claude Code makes two tool calls in one conversation, each a turn of its own
/// (a Messages response): a snapshot after each turn that changed the workspace, and
/// restoring the first undoes the second turn's change — shell commands included.
#[test]
fn each_agent_turn_is_a_snapshot_and_restoring_one_undoes_the_next() {
    let claude = Claude::new("Both written.");
    claude.grant(API_KEY);
    claude
        .fake
        .set_tool_calls(&["echo one > turn.txt", "echo two > turn.txt"]);
    let out = claude.run(&["claude", "-p", "write turn.txt twice"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Both written."), "{out:?}");
    let turn = claude.env.workspace().join("turn.txt");
    assert_eq!(std::fs::read_to_string(&turn).unwrap(), "two\n");
    let id = claude.env.list()[0]["id"].as_str().unwrap().to_owned();
    let list = claude.run(&["snapshot", "list", &id, "--json"]);
    assert_eq!(list.code, 0, "{list:?}");
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let turns: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["trigger"] == "agent_turn")
        .collect();
    // Each Messages request waits for the snapshot of the turn before it: the first
    // (the prompt) follows no change, no snapshot; the second and the third (after each
    // tool call) follow one change each.
    assert_eq!(turns.len(), 2, "{list}");
    let first = turns[0]["id"].as_str().unwrap();
    let out = claude.run(&["snapshot", "restore", &id, first, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(&turn).unwrap(), "one\n");
}

/// A plugin at `root` whose `Stop` hook runs `hooks/mark.sh` (`script`, with mode `mode`):
/// how these tests see that Claude Code in the container loaded it.
fn write_stop_hook_plugin(
    root: &std::path::Path,
    name: &str,
    version: &str,
    script: &str,
    mode: u32,
) {
    use std::os::unix::fs::PermissionsExt as _;
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        root.join(".claude-plugin/plugin.json"),
        &format!(r#"{{"name": "{name}", "version": "{version}", "description": "says {name}"}}"#),
    );
    write(
        root.join("hooks/hooks.json"),
        r#"{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/hooks/mark.sh"}]}]}}"#,
    );
    write(root.join("hooks/mark.sh"), script);
    std::fs::set_permissions(
        root.join("hooks/mark.sh"),
        std::fs::Permissions::from_mode(mode),
    )
    .unwrap();
}

/// A plugin the host's Claude Code installed and enabled comes into the run, copied
/// read-only, with its hook script still executable: its `Stop` hook runs in the
/// container (a `-p` session registers seed plugins after its start, so `SessionStart`
/// would be too early). The host's files stay as they were, and the agent cannot change the copy.
#[test]
fn an_installed_host_plugin_runs_in_the_container() {
    let claude = Claude::new("Plugged in.");
    claude.grant(API_KEY);
    let plugins = claude.home().join(".claude/plugins");
    let marketplace = plugins.join("marketplaces/fakemkt");
    let installed = plugins.join("cache/fakemkt/hello/1.0.0");
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        plugins.join("known_marketplaces.json"),
        &format!(
            r#"{{"fakemkt": {{"source": {{"source": "directory", "path": "/somewhere/fakemkt"}}, "installLocation": "{}", "lastUpdated": "2026-12-01T00:00:00.000Z"}}}}"#,
            marketplace.display()
        ),
    );
    write(
        marketplace.join(".claude-plugin/marketplace.json"),
        r#"{"name": "fakemkt", "owner": {"name": "moat tests"}, "plugins": [{"name": "hello", "source": "./plugins/hello", "description": "says hello", "version": "1.0.0"}]}"#,
    );
    write(
        marketplace.join(".git/config"),
        "[remote] url = https://token-in-git-config@x\n",
    );
    for root in [marketplace.join("plugins/hello"), installed.clone()] {
        write_stop_hook_plugin(
            &root,
            "hello",
            "1.0.0",
            "#!/bin/sh\necho \"hook of $CLAUDE_PLUGIN_ROOT\" > /workspace/plugin-hook-ran\ntouch \"$CLAUDE_PLUGIN_ROOT/changed\" 2>/dev/null && echo writable >> /workspace/plugin-hook-ran\nexit 0\n",
            0o700,
        );
    }
    write(
        plugins.join("installed_plugins.json"),
        &format!(
            r#"{{"version": 2, "plugins": {{"hello@fakemkt": [{{"scope": "user", "installPath": "{}", "version": "1.0.0", "installedAt": "2026-12-01T00:00:00.000Z", "lastUpdated": "2026-12-01T00:00:00.000Z"}}]}}}}"#,
            installed.display()
        ),
    );
    write(
        claude.home().join(".claude/settings.json"),
        r#"{"enabledPlugins": {"hello@fakemkt": true}}"#,
    );

    let out = claude.run(&["claude", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Plugged in."), "{out:?}");
    let marker = claude.env.workspace().join("plugin-hook-ran");
    let ran = std::fs::read_to_string(&marker)
        .unwrap_or_else(|e| panic!("the plugin's hook did not run ({e}): {out:?}"));
    // From the seed's copy (of the marketplace's files, for a directory marketplace).
    assert!(ran.contains("hook of /run/moat/seed/"), "{ran}");
    assert!(!ran.contains("writable"), "the copy is read-only: {ran}");
    assert!(!installed.join("changed").exists());
    let id = claude.env.list()[0]["id"].as_str().unwrap().to_owned();
    let seed = claude.env.moat_home().join("runs").join(&id).join("seed");
    assert!(
        !seed.join("marketplaces/fakemkt/.git").exists(),
        "no clone metadata"
    );

    // `claude.plugins` can switch it off; enabling one not installed here is refused.
    write(
        claude.env.workspace().join("agent.yaml"),
        "claude:\n  plugins:\n    \"hello@fakemkt\": false\n",
    );
    std::fs::remove_file(&marker).unwrap();
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!marker.exists(), "disabled by claude.plugins");
    write(
        claude.env.workspace().join("agent.yaml"),
        "claude:\n  plugins:\n    \"other@fakemkt\": true\n",
    );
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("`claude.plugins` enables `other@fakemkt`, which this run cannot have"),
        "{out:?}"
    );
    assert!(out.stderr.contains("hint: "), "{out:?}");

    // A `directory` marketplace of `claude.marketplaces`, here the workspace's own (which
    // a run can change): its plugin comes, and a link planted in it to a directory of
    // this machine stays a link, so nothing of that directory is copied.
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("id_ed25519"), "HOST-PRIVATE-KEY").unwrap();
    let mkt = claude.env.workspace().join("mkt");
    write(
        mkt.join(".claude-plugin/marketplace.json"),
        r#"{"name": "localmkt", "owner": {"name": "moat tests"}, "plugins": [{"name": "hi", "source": "./plugins/hi", "version": "0.1.0"}]}"#,
    );
    let hi = mkt.join("plugins/hi");
    write_stop_hook_plugin(
        &hi,
        "hi",
        "0.1.0",
        "#!/bin/sh\necho \"directory hook of $CLAUDE_PLUGIN_ROOT\" > /workspace/plugin-hook-ran\nexit 0\n",
        0o755,
    );
    std::os::unix::fs::symlink(secret.path(), hi.join("keys")).unwrap();
    // What else is in the directory is not the plugin's: it stays out of the run.
    write(mkt.join(".env"), "NOT_FOR_THE_RUN=1\n");
    write(
        claude.env.workspace().join("agent.yaml"),
        "claude:\n  marketplaces:\n    localmkt: {source: directory, path: ./mkt}\n  plugins:\n    \"hi@localmkt\": true\n    \"hello@fakemkt\": false\n",
    );
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ran = std::fs::read_to_string(&marker)
        .unwrap_or_else(|e| panic!("the directory plugin's hook did not run ({e}): {out:?}"));
    assert!(ran.contains("directory hook of /run/moat/seed/"), "{ran}");
    let id = claude.env.list()[0]["id"].as_str().unwrap().to_owned();
    let seed = claude.env.moat_home().join("runs").join(&id).join("seed");
    let grep = Command::new("grep")
        .args(["-rlsF", "HOST-PRIVATE-KEY"])
        .arg(&seed)
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "a host file was copied: {grep:?}");
    let known = std::fs::read_to_string(seed.join("known_marketplaces.json")).unwrap();
    assert!(
        !known.contains(&mkt.display().to_string()),
        "the container's entry names the copy: {known}"
    );
    assert!(
        seed.join("marketplaces/localmkt/plugins/hi/hooks/mark.sh")
            .exists()
    );
    assert!(
        !seed.join("marketplaces/localmkt/.env").exists(),
        "only the listing and the plugins come"
    );

    // The agent swaps the marketplace's directory for a link to one of this machine that
    // holds a listing: the next run is refused, and nothing of that directory is copied.
    let elsewhere = secret.path().join("mkt");
    std::fs::create_dir_all(elsewhere.join(".claude-plugin")).unwrap();
    std::fs::copy(
        mkt.join(".claude-plugin/marketplace.json"),
        elsewhere.join(".claude-plugin/marketplace.json"),
    )
    .unwrap();
    std::fs::create_dir_all(elsewhere.join("plugins")).unwrap();
    std::os::unix::fs::symlink(secret.path(), elsewhere.join("plugins/hi")).unwrap();
    std::fs::rename(&mkt, claude.env.workspace().join("mkt-was")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &mkt).unwrap();
    let runs = claude.env.list().len();
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("is reached through a symbolic link"),
        "{out:?}"
    );
    assert_eq!(claude.env.list().len(), runs, "no run was made: {out:?}");
    std::fs::remove_file(&mkt).unwrap();
    std::fs::rename(claude.env.workspace().join("mkt-was"), &mkt).unwrap();
    let out = claude.run(&["claude", "plugins", "list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let row = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "hi@localmkt")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(row["enabled"], true, "{listed}");
}

/// A marketplace that only `claude.marketplaces` names, in a private repository of a
/// (fake) `github.com` served over git's smart HTTP: moat fetches it on the host through
/// its own proxy, which injects the `github` grant, and the run gets read-only copies.
#[test]
fn a_private_marketplace_is_fetched_on_the_host_through_the_runs_grants() {
    const GITHUB_TOKEN: &str = "ghp_moatTestMarketplaceToken0123456789abcdef";
    let claude = Claude::new("Fetched in.");
    claude.grant(API_KEY);

    // The marketplace's repository: a listing and one plugin with a `Stop` hook.
    let repos = tempfile::tempdir().unwrap();
    let work = repos.path().join("work");
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        work.join(".claude-plugin/marketplace.json"),
        r#"{"name": "fakemkt", "owner": {"name": "moat tests"}, "plugins": [{"name": "hello", "source": "./plugins/hello", "description": "says hello", "version": "1.0.0"}, {"name": "sneaky", "source": "./outside"}]}"#,
    );
    // A hostile repository's link out of itself: its plugin must not bring this
    // machine's directory into the run.
    std::os::unix::fs::symlink("/etc", work.join("outside")).unwrap();
    write_stop_hook_plugin(
        &work.join("plugins/hello"),
        "hello",
        "1.0.0",
        "#!/bin/sh\necho \"hook of $CLAUDE_PLUGIN_ROOT\" > /workspace/plugin-hook-ran\nexit 0\n",
        0o755,
    );
    let git = |args: &[&str], dir: &std::path::Path| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.test"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"], &work);
    git(&["add", "-A"], &work);
    git(&["commit", "-q", "-m", "the marketplace"], &work);
    std::fs::create_dir_all(repos.path().join("acme")).unwrap();
    git(
        &["clone", "-q", "--bare", "work", "acme/mkt.git"],
        repos.path(),
    );
    let commit = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&work)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    // The fake github.com: private, so only the grant's credential gets the repository.
    let root = repos.path().to_owned();
    let basic = format!(
        "Basic {}",
        crate::grants::base64_encode(format!("x-access-token:{GITHUB_TOKEN}").as_bytes())
    );
    let github = moat_test_support::FakeUpstream::start(&["github.com"], move |r| {
        if r.header("authorization") == Some(basic.as_str()) {
            moat_test_support::git_http_backend(&root, r)
        } else {
            moat_test_support::Reply::text(401, "authentication required")
        }
    });
    let mut pem = std::fs::read(&claude.ca_file).unwrap();
    pem.extend(std::fs::read(github.ca_file()).unwrap());
    std::fs::write(&claude.ca_file, pem).unwrap();
    let moat = |args: &[&str]| {
        Out::from(
            claude
                .moat_reaching(&[("github.com", github.port())])
                .args(args)
                .output()
                .unwrap(),
        )
    };

    // Enabled on the host; the marketplace only the workspace's agent.yaml names.
    write(
        claude.home().join(".claude/settings.json"),
        r#"{"enabledPlugins": {"hello@fakemkt": true, "sneaky@fakemkt": true}}"#,
    );
    let agent_yaml = claude.env.workspace().join("agent.yaml");
    write(
        agent_yaml.clone(),
        "claude:\n  marketplaces:\n    fakemkt: {source: github, repo: acme/mkt}\n",
    );

    // Without the grant the fetch gets the fake's 401, and says which grant helps.
    let out = moat(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains(
            "cannot fetch plugin marketplace `fakemkt` from https://github.com/acme/mkt.git"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("the `github` grant"), "{out:?}");
    assert!(claude.env.list().is_empty(), "no run was made: {out:?}");

    let out = Out::from(
        claude
            .moat()
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .args(["grant", "github", "--no-validate"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    write(
        agent_yaml.clone(),
        "grants: [github]\nclaude:\n  marketplaces:\n    fakemkt: {source: github, repo: acme/mkt}\n",
    );
    let out = moat(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Fetched in."), "{out:?}");
    assert!(
        out.stderr.contains(
            "moat: fetching plugin marketplace `fakemkt` from https://github.com/acme/mkt.git"
        ),
        "{out:?}"
    );
    let marker = claude.env.workspace().join("plugin-hook-ran");
    let ran = std::fs::read_to_string(&marker)
        .unwrap_or_else(|e| panic!("the fetched plugin's hook did not run ({e}): {out:?}"));
    assert!(ran.contains("hook of /run/moat/seed/"), "{ran}");
    assert!(
        out.stderr.contains(
            "plugin `sneaky@fakemkt` of the marketplace `fakemkt`: its source `outside` is not a directory inside the marketplace's files"
        ),
        "{out:?}"
    );
    let fetches = github.requests().len();
    assert!(fetches > 0);
    // Nothing of the fetch's credential or clone is in what the run got.
    let id = claude.env.list()[0]["id"].as_str().unwrap().to_owned();
    let seed = claude.env.moat_home().join("runs").join(&id).join("seed");
    assert!(
        seed.join("marketplaces/fakemkt/.claude-plugin/marketplace.json")
            .exists()
    );
    assert!(
        !seed.join("marketplaces/fakemkt/.git").exists(),
        "no clone metadata"
    );
    assert!(
        !seed.join("cache/fakemkt/sneaky").exists(),
        "nothing from outside"
    );
    assert!(
        std::fs::symlink_metadata(seed.join("marketplaces/fakemkt/outside"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "a link stays a link (to the container's own /etc)"
    );
    let grep = Command::new("grep")
        .args(["-rlsF", GITHUB_TOKEN])
        .arg(&seed)
        .arg(claude.env.moat_home().join("plugins"))
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "the token was written: {grep:?}");

    // `plugins list` shows both sources and the pinned commit.
    let out = moat(&["claude", "plugins", "list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let hello = &listed["plugins"][0];
    assert_eq!(hello["id"], "hello@fakemkt", "{listed}");
    assert_eq!(hello["enabled"], true, "{listed}");
    assert_eq!(hello["commit"], commit.as_str(), "{listed}");
    assert_eq!(hello["settings"][0]["origin"], "host", "{listed}");
    assert_eq!(
        listed["marketplaces"][0]["origin"], "agent.yaml",
        "{listed}"
    );

    // The next run finds it fetched: not one request to the upstream.
    std::fs::remove_file(&marker).unwrap();
    let out = moat(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(marker.exists(), "the cached plugin ran: {out:?}");
    assert!(
        !out.stderr.contains("fetching plugin marketplace"),
        "{out:?}"
    );
    assert_eq!(github.requests().len(), fetches, "nothing fetched again");

    // `--rebuild` fetches again.
    let out = moat(&["claude", "--trust", "--rebuild", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        github.requests().len() > fetches,
        "--rebuild fetched again: {out:?}"
    );

    // agent.yaml's `claude.plugins` overrides the host's setting.
    write(
        agent_yaml,
        "grants: [github]\nclaude:\n  marketplaces:\n    fakemkt: {source: github, repo: acme/mkt}\n  plugins:\n    \"hello@fakemkt\": false\n",
    );
    std::fs::remove_file(&marker).unwrap();
    let out = moat(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!marker.exists(), "disabled by claude.plugins: {out:?}");
    let out = moat(&["claude", "plugins", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("host=on agent.yaml=off")
            && out
                .stdout
                .contains("not enabled: disabled by `claude.plugins`"),
        "{out:?}"
    );
}
