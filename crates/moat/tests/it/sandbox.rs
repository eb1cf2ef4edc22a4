//! The sandbox against its own agent and against a hostile repository: each test is an
//! attack that must fail with a clear message and lose nothing.
//!
//! * The agent rewrites its config, plants git hooks, renames `.git`: refused (read-only);
//!   what it creates at protected paths is moved aside, reported, and `moat accept`able.
//! * A cloned workspace's file (grants, an outside mount, a hook) does nothing until the
//!   user trusts that exact content; a changed line asks again with the diff.
//! * MOAT_HOME and `/` cannot be workspace or mount, trusted or not.
//! * A setuid shell from a trusted hook does not elevate; processes are bounded.
//! * A machine-wide strict policy survives a workspace file saying `permissive`.

use std::path::Path;

use crate::harness::{DOCKER, OWNER, Out, TestEnv, chown, docker};
use crate::interactive::Tmux;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `chown -R OWNER` so the container user may write where the owner may.
fn give_to_owner(dir: &Path) {
    chown(dir, OWNER, OWNER);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.symlink_metadata().unwrap().is_dir() {
            give_to_owner(&path);
        } else {
            chown(&path, OWNER, OWNER);
        }
    }
}

const GIT_CONFIG: &str = "[core]\n\tbare = false\n";

#[test]
fn the_agent_cannot_rewrite_its_config_or_plant_traps_and_what_it_creates_is_held_back() {
    let env = TestEnv::new();
    let ws = env.workspace();
    write(&ws.join("moat.yaml"), "name: guarded\n");
    write(&ws.join(".git/config"), GIT_CONFIG);
    write(&ws.join(".git/hooks/pre-commit.sample"), "#!/bin/sh\n");
    give_to_owner(&ws);
    let attack = "\
        echo 'mounts: [\"/:/host\"]' > moat.yaml || echo refused-config; \
        rm -f moat.yaml || echo refused-delete; \
        printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/pre-commit || echo refused-hook; \
        printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config || echo refused-git-config; \
        mv .git .git-real || echo refused-rename; \
        echo 'gitdir: /tmp' > .git/commondir && echo created-commondir; \
        mkdir -p .vscode && echo '{\"tasks\": []}' > .vscode/tasks.json && echo created-vscode; \
        echo mine > notes.txt";
    let out = env.run(&["run", "--trust", "--", "sh", "-c", attack]);
    assert_eq!(out.code, 0, "{out:?}");
    for line in [
        "refused-config",
        "refused-delete",
        "refused-hook",
        "refused-git-config",
        "refused-rename",
        "created-commondir",
        "created-vscode",
    ] {
        assert!(out.stdout.contains(line), "{line}: {out:?}");
    }
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");

    // On the host: the protected files as they were, nothing planted, ordinary work kept.
    assert_eq!(
        std::fs::read_to_string(ws.join("moat.yaml")).unwrap(),
        "name: guarded\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join(".git/config")).unwrap(),
        GIT_CONFIG
    );
    assert!(!ws.join(".git/hooks/pre-commit").exists());
    assert!(!ws.join(".git/commondir").exists());
    assert!(!ws.join(".vscode").exists());
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "mine\n"
    );

    // What it created is kept in the run's directory and reported everywhere.
    assert!(
        out.stderr.contains(".vscode (created)") && out.stderr.contains("moat accept"),
        "{out:?}"
    );
    let run = &env.list()[0];
    let id = run["id"].as_str().unwrap().to_owned();
    let held: Vec<&str> = run["held_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect();
    assert_eq!(held, [".git/commondir", ".vscode"], "{run}");
    let table = env.run(&["list"]);
    let logs = env.run(&["logs", &id]);
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(table.stdout, @"
        NAME     RUN ID            STATE                    SNAPSHOTS  AGE
        guarded  run_[ID]  exited (0), 2 held back  1          [AGE]
        ");
        insta::assert_snapshot!(logs.stderr, @"
        sh: 1: cannot create moat.yaml: Read-only file system
        rm: cannot remove 'moat.yaml': Device or resource busy
        sh: 1: cannot create .git/hooks/pre-commit: Read-only file system
        sh: 1: cannot create .git/config: Read-only file system
        mv: cannot move '.git' to '.git-real': Device or resource busy
        moat: run run_[ID] (guarded) wrote where moat protects the workspace; moved out of it:
          .git/commondir (created), kept at [ROOT]/moat-home/runs/run_[ID]/held/.git/commondir
          .vscode (created), kept at [ROOT]/moat-home/runs/run_[ID]/held/.vscode
        Look at it there before anything on this machine uses it; `moat accept run_[ID]` puts it back.
        ");
    });
    let kept = env
        .moat_home()
        .join("runs")
        .join(&id)
        .join("held/.vscode/tasks.json");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "{\"tasks\": []}\n");

    // The user looked at it and wants it: `moat accept RUN PATH` puts back that one.
    let out = env.run(&["accept", &id, ".vscode"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(ws.join(".vscode/tasks.json")).unwrap(),
        "{\"tasks\": []}\n"
    );
    assert!(!ws.join(".git/commondir").exists());
    let held = env.run_json(&id)["held_back"].clone();
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    let out = env.run(&["accept", &id, "nothing-here"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("hint: it held back: .git/commondir"),
        "{out:?}"
    );
}

/// Repositories other than the workspace's own: the user's `git status` at the top runs
/// `git status` in each submodule under its own configuration, so what the agent writes
/// into a nested repository's or a submodule's controls is moved aside, as is Claude
/// Code's local settings file; what those repositories held before the run stays.
#[test]
fn what_the_agent_writes_into_nested_repositories_is_held_back() {
    let env = TestEnv::new();
    let ws = env.workspace();
    write(&ws.join(".git/config"), GIT_CONFIG);
    write(&ws.join(".git/modules/lib/config"), GIT_CONFIG);
    write(&ws.join(".git/modules/lib/HEAD"), "ref: refs/heads/main\n");
    write(&ws.join("vendor/old/.git/config"), GIT_CONFIG);
    write(&ws.join(".claude/notes.md"), "mine\n");
    give_to_owner(&ws);
    let attack = "\
        set -e; \
        mkdir -p sub/.git/hooks; echo 'ref: refs/heads/main' > sub/.git/HEAD; \
        printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' > sub/.git/config; \
        printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' > .git/modules/lib/config; \
        mkdir -p .claude; echo '{\"hooks\": {}}' > .claude/settings.local.json; \
        echo work > vendor/old/notes.txt";
    let out = env.run(&["run", "--", "sh", "-c", attack]);
    assert_eq!(out.code, 0, "{out:?}");
    let run = &env.list()[0];
    let mut held: Vec<&str> = run["held_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            ".claude/settings.local.json",
            ".git/modules/lib/config",
            "sub/.git/config"
        ],
        "{run}"
    );
    assert!(!ws.join("sub/.git/config").exists());
    assert!(
        ws.join("sub/.git/HEAD").exists(),
        "only what git runs is moved"
    );
    assert!(!ws.join(".claude/settings.local.json").exists());
    assert_eq!(
        std::fs::read_to_string(ws.join(".git/modules/lib/config")).unwrap_or_default(),
        "",
        "the submodule's written config is out of the workspace"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("vendor/old/.git/config")).unwrap(),
        GIT_CONFIG
    );
    assert!(ws.join("vendor/old/notes.txt").exists());
    assert!(
        out.stderr
            .contains("sub/.git/config (written during the run, in a nested repository"),
        "{out:?}"
    );
}

#[test]
fn an_untrusted_workspace_file_does_nothing_until_the_user_trusts_that_content() {
    let env = TestEnv::new();
    let granted = Out::from(
        env.moat_file_keyring()
            .env("GITHUB_TOKEN", "ghp_sandboxtesttoken0123456789abcdef0123")
            .args(["grant", "github", "--no-validate"])
            .output()
            .unwrap(),
    );
    assert_eq!(granted.code, 0, "{granted:?}");
    let outside = env.moat_home().parent().unwrap().join("outside");
    write(&outside.join("secret.txt"), "outside the workspace\n");
    let file = format!(
        "grants: [github]\nmounts: [\"{}:/outside:ro\"]\nhooks:\n  pre_run: echo hook-ran\n",
        outside.display()
    );
    write(&env.workspace().join("moat.yaml"), &file);
    let run = |args: &[&str]| Out::from(env.moat_file_keyring().args(args).output().unwrap());
    let command = [
        "run",
        "--",
        "sh",
        "-c",
        "cat /outside/secret.txt; echo \"gh=${GH_TOKEN:+set}\"",
    ];

    // No terminal: refused, naming the way forward; nothing was made.
    let out = run(&command);
    assert_eq!(out.code, 125, "{out:?}");
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(out.stderr, @"
        error: `[ROOT]/workspace/moat.yaml` is not trusted: a workspace's moat file takes effect only once you trust it
        hint: see what it asks for and trust it with `moat trust [ROOT]/workspace`, or pass `--trust` to trust it as it is now
        "));
    assert!(!out.stdout.contains("outside the workspace"), "{out:?}");
    assert!(env.run_dirs().is_empty(), "nothing started");
    let config = run(&["config"]);
    assert!(
        config.stdout.contains("(not trusted: a run asks first"),
        "{config:?}"
    );

    // `moat trust` shows what the file asks for and approves it.
    let out = run(&["trust"]);
    assert_eq!(out.code, 0, "{out:?}");
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(out.stdout, @"
        moat: `[ROOT]/workspace/moat.yaml` is not trusted yet. A workspace's moat file takes effect only once you trust it, because it may come from someone else's repository. It asks for:
          grants (credentials the proxy injects):
              github
          mounts:
              [ROOT]/outside -> /outside (read-only, OUTSIDE the workspace)
          hook pre_run (every run, before the command):
              echo hook-ran

        Trusted `[ROOT]/workspace/moat.yaml` (sha256:[HASH]). Runs in `[ROOT]/workspace` use it until it changes.
        "));
    let out = run(&command);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout, "hook-ran\noutside the workspace\ngh=set\n",
        "{out:?}"
    );

    // One changed line: not trusted any more, and `moat config` says so.
    write(
        &env.workspace().join("moat.yaml"),
        &format!("{file}env:\n  EXTRA: \"1\"\n"),
    );
    let out = run(&command);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("changed since you trusted it"),
        "{out:?}"
    );
    let config = run(&["config"]);
    assert!(
        config.stdout.contains("changed since it was trusted"),
        "{config:?}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["trust", "--list", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["status"], "changed", "{listed}");

    // `--trust` approves the content as it is; `moat untrust` takes it back.
    let mut trusted = vec!["run", "--trust"];
    trusted.extend(&command[1..]);
    assert_eq!(run(&trusted).code, 0);
    assert_eq!(run(&command).code, 0);
    let out = run(&["untrust"]);
    assert!(out.stdout.contains("No longer trusting"), "{out:?}");
    assert_eq!(run(&command).code, 125);
}

#[test]
fn at_a_terminal_the_question_shows_the_requests_and_a_changed_file_its_diff() {
    let env = TestEnv::new();
    write(
        &env.workspace().join("moat.yaml"),
        "hooks:\n  pre_run: echo hook-ran\n",
    );
    let tmux = Tmux::new(&env);
    tmux.start(&env, "no", "run -- echo ran-$((6*7))");
    let screen = tmux.wait_screen("no", "Trust this file and go on? [y/N]");
    assert!(screen.contains("is not trusted yet"), "{screen}");
    assert!(screen.contains("hook pre_run"), "{screen}");
    tmux.keys("no", &["n", "Enter"]);
    let screen = tmux.wait_screen("no", "MOAT-EXIT=");
    assert!(screen.contains("was not trusted; nothing ran"), "{screen}");
    assert!(screen.contains("MOAT-EXIT=125"), "{screen}");
    assert!(!screen.contains("ran-42"), "{screen}");
    assert!(env.run_dirs().is_empty());

    assert_eq!(env.run(&["trust"]).code, 0);
    write(
        &env.workspace().join("moat.yaml"),
        "hooks:\n  pre_run: echo hook-changed\n",
    );
    tmux.start(&env, "yes", "run -- echo ran-$((6*7))");
    let screen = tmux.wait_screen("yes", "Trust this file and go on? [y/N]");
    assert!(screen.contains("changed since you trusted it"), "{screen}");
    assert!(screen.contains("-  pre_run: echo hook-ran"), "{screen}");
    assert!(screen.contains("+  pre_run: echo hook-changed"), "{screen}");
    tmux.keys("yes", &["y", "Enter"]);
    let screen = tmux.wait_screen("yes", "MOAT-EXIT=");
    assert!(screen.contains("hook-changed"), "{screen}");
    assert!(screen.contains("ran-42"), "{screen}");
    assert!(screen.contains("MOAT-EXIT=0"), "{screen}");
}

#[test]
fn moat_home_and_the_host_root_are_refused_even_when_trusted() {
    let env = TestEnv::new();
    // `cd MOAT_HOME/.. && moat run`: the workspace would hold the credential key.
    let parent = env.moat_home().parent().unwrap().to_owned();
    let out = Out::from(
        env.moat()
            .current_dir(&parent)
            .args(["run", "--", "true"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 125, "{out:?}");
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(out.stderr, @"
        error: moat does not mount `[ROOT]` into a container: the workspace would contain MOAT_HOME (`[ROOT]/moat-home`)
        hint: run moat on the project directory itself (e.g. `cd ~/src/project`), and mount only what the run needs; MOAT_HOME holds the credential key and the run records
        "));

    write(
        &env.workspace().join("moat.yaml"),
        "mounts: [\"/:/host:ro\"]\n",
    );
    let out = env.run(&["run", "--trust", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("the host's whole file system"),
        "{out:?}"
    );
    std::fs::remove_file(env.workspace().join("moat.yaml")).unwrap();

    let home = env.moat_home().display().to_string();
    let runs = format!("{home}/runs");
    std::fs::create_dir_all(&runs).unwrap();
    for mount in [format!("{home}:/m"), format!("{runs}:/m")] {
        let out = env.run(&["run", "--mount", &mount, "--", "true"]);
        assert_eq!(out.code, 125, "{mount}: {out:?}");
        assert!(out.stderr.contains("MOAT_HOME"), "{out:?}");
    }
    assert!(env.run_dirs().is_empty(), "nothing started");
}

#[test]
fn a_setuid_shell_from_a_trusted_hook_does_not_elevate_and_processes_are_bounded() {
    let env = TestEnv::new();
    write(
        &env.workspace().join("moat.yaml"),
        "hooks:\n  post_build_root: cp /bin/sh /usr/local/bin/rootsh && chmod 4755 /usr/local/bin/rootsh\n\
         container:\n  pids_limit: 48\n",
    );
    let script = "ls -l /usr/local/bin/rootsh | cut -c1-10; /usr/local/bin/rootsh -p -c 'echo euid=$(id -u)'; \
                  grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; \
                  i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); echo started=$i; done";
    let out = env.run(&["run", "--trust", "--keep", "--", "sh", "-c", script]);
    assert!(
        out.stdout.starts_with("-rwsr-xr-x\n"),
        "the binary is setuid: {out:?}"
    );
    assert!(out.stdout.contains(&format!("euid={OWNER}\n")), "{out:?}");
    assert!(out.stdout.contains("CapEff:\t0000000000000000"), "{out:?}");
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{out:?}");
    let started: u32 = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("started="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        started < 48,
        "a fork bomb is bounded by the pids limit: {out:?}"
    );
    assert!(out.stderr.contains("Cannot fork"), "{out:?}");

    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let inspect = docker(&[
        "inspect",
        "--format",
        "{{json .HostConfig}}|{{json .Mounts}}",
        &id,
    ]);
    assert_eq!(inspect.code, 0, "{inspect:?}");
    let (host, mounts) = inspect.stdout.trim().split_once('|').unwrap();
    let host: serde_json::Value = serde_json::from_str(host).unwrap();
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert!(host["CapAdd"].is_null(), "{host}");
    assert_eq!(host["PidsLimit"], 48);
    assert_eq!(host["Memory"], 8192_i64 * 1024 * 1024);
    let mounts: serde_json::Value = serde_json::from_str(mounts).unwrap();
    let proxy = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/run/moat/proxy")
        .unwrap();
    assert_eq!(proxy["RW"], false, "{proxy}");
    let config = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/workspace/moat.yaml")
        .unwrap();
    assert_eq!(config["RW"], false, "{config}");
    assert_eq!(env.run(&["destroy", &id]).code, 0);
    assert_eq!(
        std::process::Command::new(DOCKER)
            .args(["inspect", &id])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1),
        "destroyed"
    );
}

#[test]
fn a_machine_wide_strict_policy_survives_a_workspace_file_saying_permissive() {
    let env = TestEnv::new();
    write(
        &env.moat_home().join("config.yaml"),
        "network:\n  policy: strict\n",
    );
    write(
        &env.workspace().join("moat.yaml"),
        "network:\n  policy: permissive\n  allow: [\"*.example.test\"]\n",
    );
    let out = env.run(&[
        "run",
        "--trust",
        "--",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_connect}",
        "https://api.example.test/",
    ]);
    assert_eq!(out.stdout, "403", "blocked by the strict policy: {out:?}");
    assert!(
        out.stderr.contains("warning: ") && out.stderr.contains("the run is strict"),
        "{out:?}"
    );
    assert!(out.stderr.contains("allows *.example.test"), "{out:?}");
    let config = env.run(&["config"]);
    assert!(config.stdout.contains("policy: strict"), "{config:?}");
}
