//! `agent.yaml` / `moat.yaml`: settings reach the run, flags win over the file, bad input is
//! reported with file, line and column before anything starts, and `moat config` shows it.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{Out, TestEnv};

fn write(env: &TestEnv, name: &str, text: &str) {
    std::fs::write(env.workspace().join(name), text).unwrap();
}

#[test]
fn the_workspace_file_configures_the_run() {
    let env = TestEnv::new();
    let data = env.workspace().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("fixture.txt"), "fixture\n").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    write(
        &env,
        "agent.yaml",
        "name: from-file\n\
         env:\n  GREETING: hello\n  OVERRIDDEN: file\n\
         mounts:\n  - ./data:/data:ro\n\
         command: [sh, -c, 'echo \"$GREETING $OVERRIDDEN\"; cat /data/fixture.txt; touch /data/x 2>/dev/null || echo read-only']\n\
         container:\n  memory: 256m\n",
    );
    let out = env.run(&["run", "--trust", "-e", "OVERRIDDEN=flag"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "hello flag\nfixture\nread-only\n");
    assert_eq!(env.list()[0]["name"], "from-file");
    // The command after `--` and `--name` replace the file's.
    let out = env.run(&[
        "run",
        "--name",
        "flagged",
        "--",
        "sh",
        "-c",
        "echo $GREETING",
    ]);
    assert_eq!(out.stdout, "hello\n", "{out:?}");
    assert_eq!(env.list()[0]["name"], "flagged");
}

#[test]
fn hooks_run_at_build_and_before_the_command() {
    let env = TestEnv::new();
    write(
        &env,
        "moat.yaml",
        "hooks:\n  post_build_root: echo root-hook > /etc/moat-hook\n  pre_run: echo pre-run > /workspace/pre-run.txt\n",
    );
    let out = env.run(&[
        "run",
        "--trust",
        "--",
        "sh",
        "-c",
        "cat /etc/moat-hook /workspace/pre-run.txt",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "root-hook\npre-run\n");
    // A failing pre_run hook stops the run with its status.
    write(&env, "moat.yaml", "hooks:\n  pre_run: exit 7\n");
    let out = env.run(&["run", "--trust", "--", "echo", "never"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(!out.stdout.contains("never"), "{out:?}");
}

#[test]
fn config_and_dry_run_show_the_plan_without_docker() {
    let env = TestEnv::new();
    write(
        &env,
        "agent.yaml",
        "name: planned\ngrants: [github]\ndependencies: [jq]\nenv:\n  API_TOKEN: s3cr3t-value\n",
    );
    for args in [
        vec!["config", "--grant", "anthropic"],
        vec!["run", "--dry-run", "--grant", "anthropic"],
    ] {
        // No Docker needed: nothing is built or run.
        let out = Out::from(
            env.moat()
                .env("DOCKER_HOST", "unix:///nonexistent.sock")
                .args(&args)
                .output()
                .unwrap(),
        );
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("name: planned"), "{out:?}");
        assert!(
            out.stdout.contains("- github") && out.stdout.contains("- anthropic"),
            "--grant adds: {out:?}"
        );
        assert!(out.stdout.contains("tag: moat/run:"), "{out:?}");
        assert!(out.stdout.contains("FROM debian:bookworm-slim"), "{out:?}");
        assert!(out.stdout.contains("jq"), "{out:?}");
        assert!(
            !out.stdout.contains("s3cr3t-value"),
            "secret-looking values are hidden: {out:?}"
        );
    }
    assert!(env.run_dirs().is_empty());
}

fn assert_config_error(out: &Out, location: &str, message: &str, hint: &str) {
    assert_eq!(out.code, 125, "{out:?}");
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        error.contains(location) && error.contains(message),
        "{out:?}"
    );
    assert!(out.stderr.contains(&format!("hint: {hint}")), "{out:?}");
}

#[test]
fn bad_files_are_reported_with_their_position_and_a_fix() {
    let env = TestEnv::new();
    write(&env, "agent.yaml", "name: x\ngrant: [github]\n");
    let out = env.run(&["run", "--", "true"]);
    assert_config_error(
        &out,
        "agent.yaml:2:1",
        "unknown field `grant`",
        "did you mean `grants`?",
    );

    write(&env, "agent.yaml", "dependencies:\n  - nod@22\n");
    let out = env.run(&["run", "--", "true"]);
    assert_config_error(&out, "agent.yaml:2:5", "nod", "did you mean `node`?");

    write(&env, "agent.yaml", "mounts:\n  - ./missing:/data\n");
    let out = env.run(&["run", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("agent.yaml:2:5"), "{out:?}");
    assert!(out.stderr.contains("missing"), "{out:?}");

    write(&env, "agent.yaml", "env:\n  A: 1\n  A: 2\n");
    let out = env.run(&["run", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("agent.yaml:3:"), "{out:?}");
    assert!(out.stderr.to_lowercase().contains("duplicate"), "{out:?}");

    write(&env, "moat.yaml", "name: y\n");
    let out = env.run(&["run", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("agent.yaml") && out.stderr.contains("moat.yaml"),
        "{out:?}"
    );
    assert!(env.run_dirs().is_empty(), "nothing started");
}

#[test]
fn deps_list_and_info() {
    let env = TestEnv::new();
    let out = env.run(&["deps", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    for name in [
        "node",
        "python",
        "claude-code",
        "ripgrep",
        "postgresql-client",
        "gh",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name} "))),
            "{name}: {out:?}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["deps", "list", "--json"]).stdout).unwrap();
    let names: Vec<&str> = json["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"node") && names.contains(&"uv"),
        "{names:?}"
    );
    let info = env.run(&["deps", "info", "node"]);
    assert_eq!(info.code, 0, "{info:?}");
    assert!(info.stdout.contains("22"), "{info:?}");
    let claude = env.run(&["deps", "info", "claude-code"]);
    assert!(
        claude.stdout.contains("node") && claude.stdout.contains("git"),
        "implied: {claude:?}"
    );
    let unknown = env.run(&["deps", "info", "nodee"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("hint: "), "{unknown:?}");
}

/// `moat deps info` names the mirror settings an install downloads through, with the URL
/// in effect: the global file's, or upstream's marked as the default.
#[test]
fn deps_info_shows_the_mirrors_in_effect() {
    let env = TestEnv::new();
    let info = env.run(&["deps", "info", "claude-code"]);
    assert_eq!(info.code, 0, "{info:?}");
    assert!(
        info.stdout.contains(
            "mirrors:  mirrors.npm = https://registry.npmjs.org (default): the package and its dependencies"
        ),
        "{info:?}"
    );
    std::fs::write(
        env.moat_home().join("config.yaml"),
        "mirrors:\n  npm: https://npm.corp.example/\n  github: https://gh.corp.example\n",
    )
    .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["deps", "info", "claude-code", "--json"]).stdout).unwrap();
    assert_eq!(
        json["mirrors"],
        serde_json::json!([{
            "setting": "mirrors.npm",
            "fetches": "the package and its dependencies",
            "url": "https://npm.corp.example",
            "default": false,
        }])
    );
    let python = env.run(&["deps", "info", "python"]);
    assert!(
        python.stdout.contains(
            "mirrors.python = https://gh.corp.example/astral-sh/python-build-standalone/releases/download:"
        ) && python.stdout.contains("mirrors.pypi = https://pypi.org/simple (default)"),
        "{python:?}"
    );
    // A broken global file is reported, not skipped.
    std::fs::write(
        env.moat_home().join("config.yaml"),
        "mirrors:\n  npm: npm.corp\n",
    )
    .unwrap();
    let bad = env.run(&["deps", "info", "claude-code"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("config.yaml:2:8"), "{bad:?}");
}

#[test]
fn a_setting_no_run_carries_out_yet_is_refused_not_ignored() {
    let env = TestEnv::new();
    write(
        &env,
        "moat.yaml",
        "ports:\n  web: 3000\ncontainer:\n  dns: [1.1.1.1]\n",
    );
    let out = env.run(&["run", "--trust", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("`ports` is not supported yet")
            && out.stderr.contains("`container.dns` is not supported yet"),
        "{out:?}"
    );
    assert!(out.stderr.contains("hint: remove `ports`"), "{out:?}");
    assert!(env.run_dirs().is_empty(), "nothing started");
    // `moat config` shows the settings and names what a run would refuse.
    let out = env.run(&["config"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("# warning: ") && out.stdout.contains("`ports` is not supported yet"),
        "{out:?}"
    );
}
