//! Cleaning up and names: `moat destroy` of several runs or of every finished one (never
//! of a guessed one), `moat list` filters and templates, `moat prune` of old runs and
//! unused images, and run names that stay unique.

use std::path::PathBuf;

use crate::harness::{Out, TestEnv, chown, docker};

/// The exit code, stdout and stderr, for a snapshot.
fn shown(out: &Out) -> String {
    format!("exit {}\n{}{}", out.code, out.stdout, out.stderr)
}

/// insta settings for these tests: the harness's, and sizes.
fn settings(env: &TestEnv) -> insta::Settings {
    let mut settings = env.snapshot_settings();
    settings.add_filter(r"\b\d+(\.\d)? (B|kB|MB|GB)\b", "[SIZE]");
    // How many images other tests' homes built: whatever ran before.
    settings.add_filter(r"(?m)^moat: \d+ other moat/run image.*\n", "");
    // Tables pad their columns to the widest value, which the filters above replaced:
    // the padding says nothing, one gap of two spaces stands for any.
    settings.add_filter(r"(\S) {2,}", "$1  ");
    settings
}

#[test]
fn a_name_is_unique_and_replace_takes_it_from_a_finished_run() {
    let env = TestEnv::new();
    assert_eq!(env.run(&["run", "--name", "dup", "--", "true"]).code, 0);
    let first = env.list()[0]["id"].as_str().unwrap().to_owned();
    let again = env.run(&["run", "--name", "dup", "--", "true"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&again), @"
        exit 125
        error: the name `dup` belongs to run run_[ID], exited (0)
        hint: `--replace` destroys run_[ID] and gives its name to the new run; or choose another `--name` (`moat destroy run_[ID]` removes it by hand)
        ");
    });
    let busy = env.run_detached(&["--name", "busy"], &["sleep", "300"]);
    let taken = env.run(&["run", "--name", "busy", "--replace", "--", "true"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&taken), @"
        exit 125
        error: a running run is already named `busy` (run_[ID])
        hint: choose another `--name`, or stop the other run (`moat stop busy`) and pass `--replace`
        ");
    });
    let replaced = env.run(&["run", "--name", "dup", "--replace", "--", "true"]);
    assert_eq!(replaced.code, 0, "{replaced:?}");
    let runs = env.list();
    let dups: Vec<&serde_json::Value> = runs.iter().filter(|r| r["name"] == "dup").collect();
    assert_eq!(dups.len(), 1, "{runs:?}");
    assert_ne!(dups[0]["id"], first.as_str(), "the older run is gone");
    assert_eq!(env.run(&["logs", "dup"]).code, 0, "the name names one run");
    env.run(&["stop", &busy]);
}

#[test]
fn destroy_takes_several_runs_or_every_finished_one_but_never_guesses() {
    let env = TestEnv::new();
    let none = env.run(&["destroy"]);
    for name in ["a", "b", "c"] {
        assert_eq!(env.run(&["run", "--name", name, "--", "true"]).code, 0);
    }
    let unnamed = env.run(&["destroy"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&none), @"
        exit 1
        error: `moat destroy` needs the run(s) to destroy
        hint: there are no runs: nothing to destroy
        ");
        insta::assert_snapshot!(shown(&unnamed), @"
        exit 1
        error: `moat destroy` needs the run(s) to destroy
        hint: name them: `moat destroy run_[ID]` destroys the newest (c); `moat destroy --all-stopped` every finished run; `moat list` shows them
        ");
    });
    assert_eq!(env.run_dirs().len(), 3, "nothing was destroyed");

    let two = env.run(&["destroy", "a", "b"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&two), @"
    exit 0
    destroyed run_[ID] (a)
    destroyed run_[ID] (b)
    moat: their 2 audit logs went with them (`--keep-audit` keeps them)
    ")
    });
    let busy = env.run_detached(&["--name", "busy"], &["sleep", "300"]);
    let partly = env.run(&["destroy", "c", "nope"]);
    assert_eq!(partly.code, 1, "{partly:?}");
    assert!(partly.stdout.contains("destroyed run_"), "{partly:?}");
    assert!(
        partly.stderr.contains("no run matches `nope`"),
        "{partly:?}"
    );

    assert_eq!(env.run(&["run", "--name", "d", "--", "true"]).code, 0);
    let stopped = env.run(&["destroy", "--all-stopped"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&stopped), @"
    exit 0
    destroyed run_[ID] (d)
    moat: its audit log went with it (`--keep-audit` keeps it)
    ")
    });
    let left = env.list();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], busy.as_str(), "the running run stays");
    env.run(&["stop", &busy]);
}

#[test]
fn list_filters_prints_ids_and_fills_templates() {
    let env = TestEnv::new();
    assert_eq!(env.run(&["run", "--name", "feat-ok", "--", "true"]).code, 0);
    env.run(&["run", "--name", "feat-bad", "--", "sh", "-c", "exit 3"]);
    let busy = env.run_detached(&["--name", "busy"], &["sleep", "300"]);

    let running = env.run(&["list", "--running", "-q"]);
    assert_eq!(running.code, 0, "{running:?}");
    assert_eq!(running.stdout, format!("{busy}\n"));
    let all = env.run(&["list", "-q"]);
    assert_eq!(all.stdout.lines().count(), 3, "{all:?}");

    let feat = env.run(&[
        "list",
        "--name",
        "feat-*",
        "--format",
        "{{.Name}}\\t{{.State}}\\t{{.ExitCode}}\\t{{.Status}}",
    ]);
    let none = env.run(&["list", "--name", "nothing"]);
    let bad = env.run(&["list", "--format", "{{.Nope}}"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&feat), @"
        exit 0
        feat-bad	exited	3	exited (3)
        feat-ok	exited	0	exited (0)
        ");
        insta::assert_snapshot!(shown(&none), @"
        exit 0
        No runs match.
        ");
        insta::assert_snapshot!(shown(&bad), @"
        exit 1
        error: `--format`: there is no field `Nope`
        hint: the fields are ID, Name, State, ExitCode, Status, Workspace, Image, Command, Created, Started, Finished, Age, Snapshots
        ");
    });
    let times = env.run(&[
        "list",
        "--running",
        "--format",
        "{{.Created}} {{.Finished}}",
    ]);
    let line = times.stdout.trim_end();
    assert!(
        line.parse::<jiff::Timestamp>().is_ok(),
        "RFC 3339, and nothing when not finished: {times:?}"
    );
    env.run(&["stop", &busy]);
}

/// A workspace of its own, owned by `uid`: runs in it need an image of their own (the
/// image's user has the workspace owner's id), which no other test builds.
fn workspace_of(env: &TestEnv, uid: u32) -> PathBuf {
    let dir = env.workspace().join(format!("ws-{uid}"));
    std::fs::create_dir(&dir).unwrap();
    chown(&dir, uid, uid);
    dir
}

/// Make the run look as if it had ended `days` ago.
fn age_run(env: &TestEnv, id: &str, days: i64) {
    let path = env.moat_home().join("runs").join(id).join("metadata.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let then = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
    record["created_at"] = then.to_string().into();
    record["finished_at"] = then.to_string().into();
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

fn image_exists(tag: &str) -> bool {
    docker(&["image", "inspect", tag]).code == 0
}

#[test]
fn prune_removes_old_runs_and_the_images_no_run_uses() {
    let env = TestEnv::new();
    // Three workspaces, three images (`--rebuild` makes them this home's even if an
    // earlier test run left them); ten runs: four in the first, three in each other.
    let mut tags = Vec::new();
    let mut ids = Vec::new();
    for (uid, count) in [(31_001u32, 4), (31_002, 3), (31_003, 3)] {
        let ws = workspace_of(&env, uid);
        for i in 0..count {
            let name = format!("u{}-{i}", uid - 31_000);
            let mut args = vec!["run", ws.to_str().unwrap(), "--name", &name];
            if i == 0 {
                args.push("--rebuild");
            }
            args.extend(["--", "true"]);
            let out = env.run(&args);
            assert_eq!(out.code, 0, "{out:?}");
            let run = env.list().remove(0);
            ids.push(run["id"].as_str().unwrap().to_owned());
            if i == 0 {
                tags.push(run["image"].as_str().unwrap().to_owned());
            }
        }
    }
    // Every run of the first two workspaces and one of the third ended 8 days ago.
    for id in &ids[..8] {
        age_run(&env, id, 8);
    }
    let dry = env.run(&["prune", "--older-than", "7d", "--dry-run"]);
    assert_eq!(env.run_dirs().len(), 10, "a dry run removes nothing");
    assert!(tags.iter().all(|t| image_exists(t)));
    let refused = env.run(&["prune", "--older-than", "7d"]);
    let old = env.run(&["prune", "--older-than", "7d", "--yes"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&dry), @"
        exit 0
        Would remove 8 run(s), [SIZE]:
          NAME  RUN ID  STATE  ENDED  SIZE
          u3-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-3  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
        Would remove 2 image(s), [SIZE]:
          IMAGE  BUILT  SIZE
          moat/run:[TAG]  [AGE] ago  [SIZE]
          moat/run:[TAG]  [AGE] ago  [SIZE]
        Would free up to [SIZE]. `moat prune --older-than 7d` removes them.
        ");
        insta::assert_snapshot!(shown(&refused), @"
        exit 1
        To remove 8 run(s), [SIZE]:
          NAME  RUN ID  STATE  ENDED  SIZE
          u3-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-3  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
        To remove 2 image(s), [SIZE]:
          IMAGE  BUILT  SIZE
          moat/run:[TAG]  [AGE] ago  [SIZE]
          moat/run:[TAG]  [AGE] ago  [SIZE]
        error: `moat prune` asks before it removes anything
        hint: pass `--yes` to remove the above, or `--dry-run` to only see it
        ");
        insta::assert_snapshot!(shown(&old), @"
        exit 0
        To remove 8 run(s), [SIZE]:
          NAME  RUN ID  STATE  ENDED  SIZE
          u3-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u2-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-3  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u1-0  run_[ID]  exited (0)  [AGE] ago  [SIZE]
        To remove 2 image(s), [SIZE]:
          IMAGE  BUILT  SIZE
          moat/run:[TAG]  [AGE] ago  [SIZE]
          moat/run:[TAG]  [AGE] ago  [SIZE]
        Removed 8 run(s) and 2 image(s): freed up to [SIZE].
        ");
    });
    assert_eq!(env.run_dirs().len(), 2);
    assert!(!image_exists(&tags[0]) && !image_exists(&tags[1]));
    assert!(image_exists(&tags[2]), "two runs still use it");

    let rest = env.run(&["prune", "--yes"]);
    let nothing = env.run(&["prune", "--dry-run"]);
    settings(&env).bind(|| {
        insta::assert_snapshot!(shown(&rest), @"
        exit 0
        To remove 2 run(s), [SIZE]:
          NAME  RUN ID  STATE  ENDED  SIZE
          u3-2  run_[ID]  exited (0)  [AGE] ago  [SIZE]
          u3-1  run_[ID]  exited (0)  [AGE] ago  [SIZE]
        To remove 1 image(s), [SIZE]:
          IMAGE  BUILT  SIZE
          moat/run:[TAG]  [AGE] ago  [SIZE]
        Removed 2 run(s) and 1 image(s): freed up to [SIZE].
        ");
        insta::assert_snapshot!(shown(&nothing), @"
        exit 0
        Nothing to prune: no finished runs, and no image of this MOAT_HOME is unused.
        ");
    });
    assert!(env.run_dirs().is_empty());
    assert!(!image_exists(&tags[2]));
}
