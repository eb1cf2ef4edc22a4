//! What a new user meets in the first hour: the errors of the issue's list, each in moat's
//! words with a hint and the documented exit code (docs/cli.md), `-e NAME` as docker has
//! it, and the conventions: `moat version`, completions, man pages.

use crate::harness::{Out, TestEnv};

/// The exit code, stdout and stderr, for a snapshot, without the image build's lines
/// (whether this test builds depends on what ran before it).
fn shown(out: &Out) -> String {
    let stderr: String = out
        .stderr
        .lines()
        .filter(|l| {
            !["moat: building image", "moat: step ", "moat: built image"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    format!("exit {}\n{}{}", out.code, out.stdout, stderr)
}

#[test]
fn a_bad_name_on_the_command_line_is_explained_for_the_flag() {
    let env = TestEnv::new();
    let out = env.run(&["run", "--name", "bad name", "--", "true"]);
    insta::assert_snapshot!(shown(&out), @"
    exit 125
    error: `--name`: `bad name` is not a valid run name: use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit
    hint: for example `--name feature-auth`
    ");
}

#[test]
fn a_command_missing_from_the_image_is_said_in_moats_words() {
    let env = TestEnv::new();
    let out = env.run(&["run", "--", "nosuchcmd", "--flag"]);
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(shown(&out), @"
        exit 127
        error: `nosuchcmd` is not a command in the container (not found on PATH: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
        hint: check the spelling, or add what provides it to `dependencies:` in moat.yaml (`moat deps list` shows them)
        "));
}

#[test]
fn an_unknown_run_exits_1_for_logs_and_125_for_attach() {
    let env = TestEnv::new();
    env.run(&["run", "--name", "known", "--", "true"]);
    let logs = env.run(&["logs", "nope"]);
    let attach = env.run(&["attach", "nope"]);
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown(&logs), @"
        exit 1
        error: no run matches `nope`
        runs:
        NAME   RUN ID            STATE       SNAPSHOTS  AGE
        known  run_[ID]  exited (0)  1          [AGE]
        hint: use a run id, a unique id prefix or a name from `moat list`
        ");
        insta::assert_snapshot!(shown(&attach), @"
        exit 125
        error: no run matches `nope`
        runs:
        NAME   RUN ID            STATE       SNAPSHOTS  AGE
        known  run_[ID]  exited (0)  1          [AGE]
        hint: use a run id, a unique id prefix or a name from `moat list`
        ");
    });
}

#[test]
fn env_by_name_alone_passes_the_value_it_has_here() {
    let env = TestEnv::new();
    let out = Out::from(
        env.moat()
            .env("FROM_HOST", "host value")
            .args([
                "run",
                "-e",
                "FROM_HOST",
                "-e",
                "NOT_SET_HERE",
                "--",
                "sh",
                "-c",
                "echo \"[$FROM_HOST] [${NOT_SET_HERE-unset}]\"",
            ])
            .output()
            .unwrap(),
    );
    insta::assert_snapshot!(shown(&out), @"
    exit 0
    [host value] [unset]
    warning: `-e NOT_SET_HERE`: NOT_SET_HERE is not set here, so the run does not get it
    ");
}

#[test]
fn claude_errors_name_the_workspace_and_the_credential() {
    let env = TestEnv::new();
    let missing = env.run(&["claude", "/nonexistent"]);
    let yolo = env.run(&["claude", "--yolo", "/nonexistent"]);
    let with_key = Out::from(
        env.moat_file_keyring()
            .env(
                "ANTHROPIC_API_KEY",
                "sk-ant-api03-not-granted-0123456789abcdefghijkl",
            )
            .args(["claude", "-p", "hi"])
            .output()
            .unwrap(),
    );
    let without_key = Out::from(
        env.moat_file_keyring()
            .args(["claude", "-p", "hi"])
            .output()
            .unwrap(),
    );
    insta::assert_snapshot!(shown(&missing), @"
    exit 125
    error: workspace `/nonexistent` does not exist
    hint: give the path of an existing project directory, or leave it out to use the current directory
    ");
    insta::assert_snapshot!(shown(&yolo), @"
    exit 125
    moat: `--yolo` is what moat does already: Claude Code skips its permission prompts, the container is the boundary (`--noyolo` keeps the prompts)
    error: workspace `/nonexistent` does not exist
    hint: give the path of an existing project directory, or leave it out to use the current directory
    ");
    insta::assert_snapshot!(shown(&with_key), @"
    exit 125
    error: no Anthropic credential is granted: ANTHROPIC_API_KEY is set here, but runs use only credentials moat keeps
    hint: run `moat grant anthropic` once: it stores that key for every run
    ");
    insta::assert_snapshot!(shown(&without_key), @r#"
    exit 125
    error: no Anthropic credential: Claude Code needs one to reach the Claude API
    hint: run `moat grant anthropic` (a Claude subscription, an API key, or your Claude Code login), or with an API key: `export ANTHROPIC_API_KEY="sk-ant-..." && moat grant anthropic`
    "#);
}

#[test]
fn a_malformed_anthropic_key_is_saved_with_a_warning() {
    let env = TestEnv::new();
    let out = Out::from(
        env.moat_file_keyring()
            .env("ANTHROPIC_API_KEY", "notakey")
            .args(["grant", "anthropic"])
            .output()
            .unwrap(),
    );
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(shown(&out), @"
        exit 0
        Using ANTHROPIC_API_KEY from the environment.
        Anthropic API key saved to [ROOT]/moat-home/credentials/anthropic.enc
        moat: warning: this does not look like an Anthropic API key: it does not start with `sk-ant-`
        hint: Anthropic API keys start with `sk-ant-`; `moat grant anthropic --validate` checks a key with a request
        "));
}

#[test]
fn version_completions_and_man_pages() {
    let env = TestEnv::new();
    let version = env.run(&["version"]);
    assert_eq!(version.code, 0, "{version:?}");
    let line = version.stdout.trim_end();
    assert!(
        line.starts_with(&format!("moat {} (", env!("CARGO_PKG_VERSION"))),
        "built in a git checkout, the commit is named: {line}"
    );
    assert_eq!(env.run(&["--version"]).stdout, version.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["version", "--json"]).stdout).unwrap();
    assert!(
        json["commit"].as_str().is_some_and(|c| c.len() == 12),
        "{json}"
    );
    assert!(line.contains(json["commit"].as_str().unwrap()));

    for (shell, marker) in [
        ("bash", "complete -F _moat"),
        ("zsh", "#compdef moat"),
        ("fish", "complete -c moat"),
    ] {
        let out = env.run(&["completion", shell]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            out.stdout.contains(marker),
            "{shell}: {}",
            &out.stdout[..200]
        );
        assert!(
            out.stdout.contains("prune"),
            "{shell} completes the commands"
        );
        assert!(
            !out.stdout.contains("__supervise"),
            "{shell}: no hidden commands"
        );
    }
    let bad = env.run(&["completion", "tcsh"]);
    assert_eq!(bad.code, 2, "{bad:?}");

    let man = env.run(&["man"]);
    assert_eq!(man.code, 0, "{man:?}");
    assert!(man.stdout.contains(".TH moat 1"), "{}", &man.stdout[..300]);
    let dir = env.moat_home().join("man1");
    let out = env.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    for page in ["moat.1", "moat-prune.1", "moat-list.1", "moat-grant-list.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH moat"), "{page}");
    }
    let prune = std::fs::read_to_string(dir.join("moat-prune.1")).unwrap();
    assert!(
        prune.contains("older\\-than"),
        "the page lists the flags: {prune}"
    );
}

#[test]
fn resume_with_nothing_to_resume_says_so_and_starts_nothing() {
    let env = TestEnv::new();
    let granted = Out::from(
        env.moat_file_keyring()
            .env(
                "ANTHROPIC_API_KEY",
                "sk-ant-api03-RESUMEkeyVALUE-0123456789abcdefghijklmnopqrstuv",
            )
            .args(["grant", "anthropic"])
            .output()
            .unwrap(),
    );
    assert_eq!(granted.code, 0, "{granted:?}");
    let out = Out::from(
        env.moat_file_keyring()
            .args(["resume", "-p", "go on"])
            .output()
            .unwrap(),
    );
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(shown(&out), @"
        exit 125
        error: no Claude Code conversation to continue in `[ROOT]/workspace`
        hint: `moat claude` starts a new one; `moat claude sessions` lists the ones moat started, `moat claude --resume ID` takes one of them
        "));
    assert!(env.run_dirs().is_empty(), "no run was made");
}

#[test]
fn an_unknown_grant_in_the_file_is_placed_and_corrected() {
    let env = TestEnv::new();
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "name: typo\ngrants: [githb]\n",
    )
    .unwrap();
    let out = env.run(&["run", "--trust", "--", "true"]);
    let plain = env.workspace().join("plain");
    std::fs::create_dir(&plain).unwrap();
    crate::harness::chown(&plain, crate::harness::OWNER, crate::harness::OWNER);
    let flag = env.run(&[
        "run",
        plain.to_str().unwrap(),
        "--grant",
        "opnai",
        "--",
        "true",
    ]);
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown(&out), @"
        exit 125
        moat: trusted `[ROOT]/workspace/moat.yaml` as it is now (sha256:[HASH])
        error: [ROOT]/workspace/moat.yaml:2:10: unknown provider `githb` in `grants`
        hint: did you mean `github`? `moat grant providers` lists the providers moat knows
        ");
        insta::assert_snapshot!(shown(&flag), @"
        exit 125
        error: unknown provider `opnai`
        hint: did you mean `openai`? `moat grant providers` lists the providers moat knows
        ");
    });
    assert!(env.run_dirs().is_empty());
}

/// `moat config --help` lists the flags that change what it shows, not those that only
/// a run that starts would use.
#[test]
fn config_takes_only_the_flags_that_change_what_it_shows() {
    let env = TestEnv::new();
    let help = env.run(&["config", "--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    for shown in [
        "--grant",
        "--env",
        "--mount",
        "--allow-host",
        "--no-snapshots",
        "--interactive",
    ] {
        assert!(help.stdout.contains(shown), "{shown}: {}", help.stdout);
    }
    for dropped in [
        "--rebuild",
        "--detach",
        "--keep",
        "--dry-run",
        "--replace",
        "--name",
        "--trust",
    ] {
        assert!(!help.stdout.contains(dropped), "{dropped}: {}", help.stdout);
    }
    let refused = env.run(&["config", "--rebuild"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("unexpected argument '--rebuild'"),
        "{refused:?}"
    );
}

/// The first hour through a real terminal (tmux), in a fresh `MOAT_HOME` and `HOME`:
/// `moat doctor` on a network where the Node.js base does not answer names
/// `mirrors.node`; with it set, `moat grant anthropic` through its menu (the key typed
/// hidden); `moat claude` shows the image build's progress, then Claude Code's screen;
/// `/exit`, and moat's last line says how to go on with the conversation.
#[test]
fn the_first_run_through_a_terminal() {
    const KEY: &str = "sk-ant-api03-firstRunKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
    let claude = crate::claude::Claude::new("Hello, first-timer.");
    let config = claude.env.moat_home().join("config.yaml");
    let working = std::fs::read_to_string(&config).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        &config,
        format!("mirrors:\n  node: https://127.0.0.1:{closed_port}/dist\n"),
    )
    .unwrap();
    std::fs::create_dir_all(claude.home()).unwrap();
    let tmux = crate::interactive::Tmux::new(&claude.env);
    let envs = claude.terminal_env();

    tmux.start_with_env(&claude.env, "doctor", &envs, "doctor");
    let screen = tmux.wait_screen("doctor", "MOAT-EXIT=");
    let joined = screen.replace('\n', " ");
    assert!(
        joined.contains("build network: Node.js") && joined.contains("`mirrors.node`"),
        "{screen}"
    );
    // The user follows the hint.
    std::fs::write(&config, working).unwrap();

    tmux.start_with_env(&claude.env, "grant", &envs, "grant anthropic");
    tmux.wait_screen("grant", "Enter choice [1, 2, or 3]:");
    tmux.keys("grant", &["2", "Enter"]);
    tmux.wait_screen("grant", "API Key:");
    tmux.keys("grant", &[KEY, "Enter"]);
    tmux.wait_screen("grant", "Validate API key");
    tmux.keys("grant", &["n", "Enter"]);
    let screen = tmux.wait_screen("grant", "MOAT-EXIT=");
    assert!(screen.contains("MOAT-EXIT=0"), "{screen}");
    assert!(!screen.contains(KEY), "the key is typed hidden: {screen}");

    // `--rebuild`: the build's progress shows whatever ran before this test.
    tmux.start_with_env(
        &claude.env,
        "claude",
        &envs,
        "claude --rebuild --name first",
    );
    let saw_progress = std::cell::Cell::new(false);
    let screen = tmux.wait_screen_within(
        "claude",
        "the build's progress, then Claude Code's prompt",
        std::time::Duration::from_secs(1200),
        |screen| {
            if screen.contains("(once: later runs reuse it)") && screen.contains("so far") {
                saw_progress.set(true);
            }
            saw_progress.get()
                && (screen.contains("bypass permissions") || screen.contains("? for shortcuts"))
        },
    );
    assert!(!screen.contains("Select login method"), "{screen}");
    tmux.keys("claude", &["say hello", "Enter"]);
    tmux.wait_screen("claude", "Hello, first-timer.");
    tmux.keys("claude", &["/exit"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    tmux.keys("claude", &["Enter"]);
    let screen = tmux.wait_screen("claude", "MOAT-EXIT=");
    assert!(screen.contains("MOAT-EXIT=0"), "{screen}");
    let joined = screen.replace('\n', "");
    assert!(
        joined.contains("moat: to go on with this conversation: `moat claude --resume "),
        "{screen}"
    );
    assert_eq!(
        claude.fake.main_request().unwrap().header("x-api-key"),
        Some(KEY)
    );
}
