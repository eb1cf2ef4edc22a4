//! Workspace snapshots with a real run: the pre-run snapshot, a run that modifies,
//! deletes, creates and `chmod`s, and a restore that gives the exact tree back — ignored
//! files left as they are — in place or into another directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use moat_test_support::{FakeUpstream, Reply};

use crate::harness::{OWNER, Out, TestEnv, chown};

/// path → what it is (kind, executable bit, content or link target), `.git` left out.
fn manifest(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if rel == ".git" {
                continue;
            }
            let meta = path.symlink_metadata().unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                format!(
                    "file {:o} {}",
                    meta.permissions().mode() & 0o111,
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap())
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn give_to_owner(dir: &Path) {
    chown(dir, OWNER, OWNER);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.symlink_metadata().unwrap().file_type().is_symlink() {
            if path.is_dir() {
                give_to_owner(&path);
            } else {
                chown(&path, OWNER, OWNER);
            }
        }
    }
}

fn workspace(env: &TestEnv) {
    let w = env.workspace();
    std::fs::write(w.join("a.txt"), "alpha\n").unwrap();
    std::fs::create_dir_all(w.join("src")).unwrap();
    std::fs::write(w.join("src/b.rs"), "fn b() {}\n").unwrap();
    std::fs::write(w.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(w.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a.txt", w.join("link")).unwrap();
    std::fs::create_dir(w.join("empty")).unwrap();
    std::fs::write(w.join(".gitignore"), ".env\n").unwrap();
    std::fs::write(w.join(".env"), "TOKEN=before\n").unwrap();
    give_to_owner(&w);
}

const AGENT: &str = "echo changed > a.txt; rm src/b.rs; echo new > new.txt; chmod -x run.sh; \
                     rm link; echo file > link; rmdir empty; echo TOKEN=after > .env";

#[test]
fn the_pre_run_snapshot_restores_the_exact_tree_and_leaves_ignored_files() {
    let env = TestEnv::new();
    workspace(&env);
    let before = manifest(&env.workspace());
    let out = env.run(&["run", "--", "sh", "-c", AGENT]);
    assert_eq!(out.code, 0, "{out:?}");
    let run = env.list()[0].clone();
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["snapshots"], 1, "the pre-run snapshot: {run}");
    assert!(env.run(&["list"]).stdout.contains("SNAPSHOTS"));

    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["snapshot", "list", &id, "--json"]).stdout).unwrap();
    assert_eq!(list[0]["trigger"], "pre_run", "{list}");
    let snap = list[0]["id"].as_str().unwrap().to_owned();
    let diff = env.run(&["snapshot", "diff", &id, &snap]);
    assert_eq!(
        diff.stdout,
        // `src/` is an empty directory now that its file is gone.
        "M  a.txt\nD  empty/\nT  link\nA  new.txt\nT  run.sh\nA  src/\nD  src/b.rs\n",
        "{diff:?}"
    );

    // Without a terminal a restore asks for --yes; into another directory it needs none.
    let out = env.run(&["snapshot", "restore", &id]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("--yes"), "{out:?}");
    let copy = env.moat_home().parent().unwrap().join("copy");
    let out = env.run(&[
        "snapshot",
        "restore",
        &id,
        &snap,
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(copy.join("a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("a.txt")).unwrap(),
        "changed\n",
        "--to leaves the workspace alone"
    );

    let out = env.run(&["snapshot", "restore", &id, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("To undo: moat snapshot restore"),
        "{out:?}"
    );
    let after = manifest(&env.workspace());
    let expected: Vec<(String, String)> = before
        .into_iter()
        .map(|(p, what)| {
            if p == ".env" {
                (p, "file 0 TOKEN=after\n".into())
            } else {
                (p, what)
            }
        })
        .collect();
    assert_eq!(
        after, expected,
        "the exact tree, the ignored file as the run left it"
    );
}

#[test]
fn no_snapshots_makes_none_and_manual_ones_are_listed_and_pruned() {
    let env = TestEnv::new();
    workspace(&env);
    let out = env.run(&["run", "--no-snapshots", "--", "true"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(env.list()[0]["snapshots"], 0);
    let out = env.run(&["snapshot", "list", &id]);
    assert!(out.stderr.contains("has no snapshots"), "{out:?}");

    for label in ["one", "two", "three"] {
        let out = env.run(&["snapshot", &id, "--label", label]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.starts_with("snap_"), "{out:?}");
    }
    let table = env.run(&["snapshot", "list", &id]);
    assert!(
        table.stdout.contains("manual") && table.stdout.contains("three"),
        "{table:?}"
    );
    let out = env.run(&["snapshot", "prune", &id, "--keep", "1", "--dry-run"]);
    assert_eq!(out.stdout.lines().count(), 2, "{out:?}");
    let out = env.run(&["snapshot", "prune", &id, "--keep", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.run_json(&id)["snapshots"], 1);
    let out = env.run(&["destroy", &id]);
    assert_eq!(out.code, 0, "{out:?}");
}

/// The run's snapshots' triggers, oldest first, and their labels.
fn triggers(env: &TestEnv, id: &str) -> Vec<(String, String)> {
    let out = env.run(&["snapshot", "list", id, "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["trigger"].as_str().unwrap().to_owned(),
                m["label"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_git_commit_inside_the_run_creates_one_snapshot() {
    let env = TestEnv::new();
    workspace(&env);
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [git]\nsnapshots:\n  triggers:\n    disable_idle: true\n",
    )
    .unwrap();
    give_to_owner(&env.workspace());
    // One commit the watcher sees while the run lives, and a second one just before the
    // end, which the supervisor's last look still sees.
    let script = "set -e; git init -q; git add -A; \
                  git -c user.name=t -c user.email=t@example.com commit -qm 'first commit'; \
                  sleep 3; echo more > more.txt; git add more.txt; \
                  git -c user.name=t -c user.email=t@example.com commit -qm 'second commit'";
    let out = env.run(&["run", "--trust", "--", "sh", "-c", script]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let snapshots = triggers(&env, &id);
    let names: Vec<&str> = snapshots.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["pre_run", "git_commit", "git_commit"],
        "{snapshots:?}"
    );
    assert!(snapshots[1].1.ends_with(" first commit"), "{snapshots:?}");
    assert!(snapshots[2].1.ends_with(" second commit"), "{snapshots:?}");
    assert_eq!(env.run_json(&id)["snapshots"], 3);
    // The second commit's snapshot holds the file it committed; the first's does not.
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["snapshot", "list", &id, "--json"]).stdout).unwrap();
    let (first, second) = (
        list[1]["id"].as_str().unwrap(),
        list[2]["id"].as_str().unwrap(),
    );
    let diff = env.run(&["snapshot", "diff", &id, first, second]);
    assert_eq!(diff.stdout, "A  more.txt\n", "{diff:?}");
    // The run's audit log names each snapshot and its tree, and still verifies.
    let audited: serde_json::Value = serde_json::from_str(
        &env.run(&["audit", &id, "--json", "--type", "snapshot_taken"])
            .stdout,
    )
    .unwrap();
    let audited: Vec<(&str, &str)> = audited
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"]["snapshot"].as_str().unwrap(),
                e["data"]["tree"].as_str().unwrap(),
            )
        })
        .collect();
    let listed: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["tree"].as_str().unwrap()))
        .collect();
    assert_eq!(audited, listed);
    let verify = env.run(&["audit", "verify", &id]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn an_idle_period_after_a_change_creates_one_snapshot_and_no_snapshots_none() {
    let env = TestEnv::new();
    workspace(&env);
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "snapshots:\n  triggers:\n    idle_threshold_seconds: 2\n",
    )
    .unwrap();
    give_to_owner(&env.workspace());
    // Quiet without a change first (no snapshot), then a change and a quiet period
    // twice as long as the threshold (one snapshot, not one a poll).
    let script = "sleep 3; echo changed > a.txt; echo new > new.txt; sleep 6";
    let out = env.run(&["run", "--trust", "--", "sh", "-c", script]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let snapshots = triggers(&env, &id);
    let names: Vec<&str> = snapshots.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["pre_run", "idle"], "{snapshots:?}");
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["snapshot", "list", &id, "--json"]).stdout).unwrap();
    assert_eq!(list[1]["changed"], 2, "{list}");

    let out = env.run(&[
        "run",
        "--trust",
        "--no-snapshots",
        "--",
        "sh",
        "-c",
        "echo again > a.txt; sleep 5",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let other = env
        .list()
        .into_iter()
        .find(|r| r["id"] != id.as_str())
        .unwrap();
    assert_eq!(other["snapshots"], 0, "{other}");
    let out = env.run(&["snapshot", "list", other["id"].as_str().unwrap()]);
    assert!(out.stderr.contains("has no snapshots"), "{out:?}");
}

/// Each agent turn ends with a response of the Anthropic Messages API, which the run's
/// proxy sees. Here curl plays the agent (the real Claude Code's turns take a fake API
/// that answers with tool calls): a turn's file change, then its Messages call.
#[test]
fn each_agent_turn_is_a_snapshot_and_restoring_the_first_undoes_the_second() {
    let env = TestEnv::new();
    workspace(&env);
    let upstream = FakeUpstream::start(&["api.anthropic.com"], |_| {
        Reply::json(200, r#"{"type":"message","content":[]}"#)
    });
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [curl]\nsnapshots:\n  triggers:\n    disable_idle: true\n",
    )
    .unwrap();
    give_to_owner(&env.workspace());
    let call = |path: &str| {
        format!("curl -sSf -X POST -d '{{}}' https://api.anthropic.com{path} >/dev/null")
    };
    let script = format!(
        "set -e; echo one > turn.txt; {turn}; sleep 2; echo two > turn.txt; {turn}; sleep 2; \
         {turn}; sleep 2; echo three > turn.txt; {count}",
        turn = call("/v1/messages?beta=true"),
        count = call("/v1/messages/count_tokens"),
    );
    let out = Out::from(
        env.moat()
            .env(
                "MOAT_CONNECT_TO",
                format!("api.anthropic.com:443:127.0.0.1:{}", upstream.port()),
            )
            .env("MOAT_EXTRA_CA_CERTS", upstream.ca_file())
            .args(["run", "--trust", "--", "sh", "-c", &script])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let snapshots = triggers(&env, &id);
    let names: Vec<&str> = snapshots.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["pre_run", "agent_turn", "agent_turn"],
        "a turn that changed nothing is skipped, count_tokens is no turn: {snapshots:?}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["snapshot", "list", &id, "--json"]).stdout).unwrap();
    let first_turn = list[1]["id"].as_str().unwrap();
    let out = env.run(&["snapshot", "restore", &id, first_turn, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("turn.txt")).unwrap(),
        "one\n",
        "the second turn's change is undone"
    );
}

/// The restore journal of the run's workspace store, once a restore has written it.
fn restore_journal(env: &TestEnv) -> Option<std::path::PathBuf> {
    let dir = env.moat_home().join("snapshots");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("restore.json"))
        .find(|path| path.exists())
}

#[test]
fn a_restore_killed_midway_is_finished_by_the_next_command() {
    let env = TestEnv::new();
    let w = env.workspace();
    // Enough files that the restore takes a while to write them all.
    const FILES: usize = 6000;
    std::fs::create_dir(w.join("many")).unwrap();
    for n in 0..FILES {
        std::fs::write(w.join(format!("many/{n}.txt")), format!("before {n}\n")).unwrap();
    }
    give_to_owner(&w);
    let before = manifest(&w);
    let out = env.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "for f in many/*.txt; do echo after > \"$f\"; done; echo new > new.txt",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let after_run = manifest(&w);
    assert_ne!(before, after_run);

    // Kill the restore (SIGKILL: no clean-up of any kind) as soon as its journal exists,
    // that is after its safety snapshot and while it rewrites the workspace.
    let mut restore = env
        .moat()
        .args(["snapshot", "restore", &id, "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let journal = loop {
        if let Some(journal) = restore_journal(&env) {
            break journal;
        }
        assert!(
            restore.try_wait().unwrap().is_none(),
            "the restore ended before it could be killed midway; make FILES larger"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "no restore journal appeared"
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    };
    restore.kill().unwrap();
    restore.wait().unwrap();
    assert!(journal.exists(), "killed while the journal stood");
    let midway = manifest(&w);
    assert!(
        midway != before,
        "the kill came after the restore had finished its work; make FILES larger"
    );

    // Any later command that opens the store finishes the restore.
    let out = env.run(&["snapshot", "list", &id, "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !journal.exists(),
        "the journal is gone once the restore is done"
    );
    assert_eq!(manifest(&w), before, "the pre-run tree, exactly");
    // The safety snapshot of the state before the restore is there, so the restore can
    // itself be undone.
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let triggers: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["pre_run", "safety"], "{list}");
    let safety = list[1]["id"].as_str().unwrap();
    let out = env.run(&["snapshot", "restore", &id, safety, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        manifest(&w),
        after_run,
        "the safety snapshot undoes the restore"
    );
}

/// A snapshot taken during a run holds what the run put at a protected path, which the
/// run's end moved aside: restoring that snapshot brings it back nowhere but `--to DIR`.
#[test]
fn a_restore_does_not_bring_back_what_the_run_end_held_back() {
    let env = TestEnv::new();
    workspace(&env);
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "snapshots:\n  triggers:\n    idle_threshold_seconds: 2\n",
    )
    .unwrap();
    give_to_owner(&env.workspace());
    let script = "mkdir .vscode; echo '{}' > .vscode/tasks.json; echo mid-run > a.txt; sleep 6";
    let out = env.run(&["run", "--trust", "--", "sh", "-c", script]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(".vscode (created)"), "{out:?}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["snapshot", "list", &id, "--json"]).stdout).unwrap();
    let idle = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["trigger"] == "idle")
        .unwrap_or_else(|| panic!("an idle snapshot: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let idle = &idle;
    std::fs::write(env.workspace().join("a.txt"), "later\n").unwrap();
    let out = env.run(&["snapshot", "restore", &id, idle, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("a.txt")).unwrap(),
        "mid-run\n"
    );
    assert!(!env.workspace().join(".vscode").exists(), "{out:?}");
    assert!(
        out.stderr
            .contains("left alone, because moat protects these paths: .vscode/tasks.json")
            && out.stderr.contains("--to DIR"),
        "{out:?}"
    );
    let copy = env.moat_home().parent().unwrap().join("copy");
    let out = env.run(&[
        "snapshot",
        "restore",
        &id,
        idle,
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(copy.join(".vscode/tasks.json").exists());
}

/// Only the restored run's container is paused while a restore writes: with another run
/// live on the same workspace (whose agent could put a link where the restore writes),
/// a restore in place is refused with what to do; `--to DIR` still works.
#[test]
fn a_restore_waits_for_the_other_runs_on_the_workspace() {
    let env = TestEnv::new();
    workspace(&env);
    let out = env.run(&["run", "--", "sh", "-c", "echo changed > a.txt"]);
    assert_eq!(out.code, 0, "{out:?}");
    let first = env.list()[0]["id"].as_str().unwrap().to_owned();
    let live = env.run_detached(&[], &["sleep", "60"]);
    let out = env.run(&["snapshot", "restore", &first, "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!("another run, {live}"))
            && out
                .stderr
                .contains(&format!("hint: stop it first (`moat stop {live}`)")),
        "{out:?}"
    );
    let copy = env.moat_home().parent().unwrap().join("copy");
    let out = env.run(&[
        "snapshot",
        "restore",
        &first,
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = env.run(&["stop", &live]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = env.run(&["snapshot", "restore", &first, "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
}
