//! Runs after they start: detach and attach, stop, destroy, list, and the state moat finds
//! when nobody was watching.

use std::process::Stdio;

use crate::harness::{TestEnv, container_exists, docker, wait_for};

#[test]
fn a_detached_run_can_be_attached_and_gives_its_exit_code() {
    let env = TestEnv::new();
    let id = env.run_detached(
        &["--name", "bg"],
        &[
            "sh",
            "-c",
            "echo before; until [ -f /workspace/go ]; do sleep 0.1; done; echo after; exit 6",
        ],
    );
    assert_eq!(env.run_json(&id)["state"], "running");
    let attach = env
        .moat()
        .args(["attach", "bg"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give the attach a moment to connect, then let the command finish.
    std::thread::sleep(std::time::Duration::from_millis(800));
    std::fs::write(env.workspace().join("go"), b"").unwrap();
    let out = crate::harness::Out::from(attach.wait_with_output().unwrap());
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stdout.contains("after\n"), "{out:?}");
    // The supervisor captured everything, attached or not.
    let lines: Vec<_> = env
        .logs_jsonl(&id)
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines, ["before", "after"]);
    assert!(!container_exists(&id));
}

#[test]
fn stop_ends_a_run_as_stopped_and_removes_its_container() {
    let env = TestEnv::new();
    let id = env.run_detached(&["--name", "sleeper"], &["sleep", "300"]);
    let out = env.run(&["stop", "sleeper"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&id) && out.stdout.contains("stopped"),
        "{out:?}"
    );
    let run = env.run_json(&id);
    assert_eq!(run["state"], "stopped");
    assert!(!container_exists(&id));
    // Stopping it again is an error that says what state it is in.
    let again = env.run(&["stop", &id]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("is not running"), "{again:?}");
}

#[test]
fn stop_all_stops_every_running_run() {
    let env = TestEnv::new();
    let a = env.run_detached(&[], &["sleep", "300"]);
    let b = env.run_detached(&[], &["sleep", "300"]);
    let out = env.run(&["stop", "--all"]);
    assert_eq!(out.code, 0, "{out:?}");
    for id in [a, b] {
        assert_eq!(env.run_json(&id)["state"], "stopped");
    }
}

#[test]
fn destroy_refuses_a_running_run_unless_forced_and_removes_everything() {
    let env = TestEnv::new();
    let id = env.run_detached(&[], &["sleep", "300"]);
    let refused = env.run(&["destroy", &id]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("is still running"), "{refused:?}");
    assert!(refused.stderr.contains("hint: "), "{refused:?}");
    assert!(container_exists(&id));
    let forced = env.run(&["destroy", "--force", &id]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(!container_exists(&id));
    assert!(env.run_dirs().is_empty());
}

#[test]
fn list_shows_every_state_as_a_table_and_as_json() {
    let env = TestEnv::new();
    env.run(&["run", "--name", "ok", "--", "true"]);
    env.run(&["run", "--name", "bad", "--", "sh", "-c", "exit 2"]);
    let stopped = env.run_detached(&["--name", "halted"], &["sleep", "300"]);
    env.run(&["stop", &stopped]);
    let running = env.run_detached(&["--name", "busy"], &["sleep", "300"]);

    let table = env.run(&["list"]);
    assert_eq!(table.code, 0, "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "RUN", "ID", "STATE", "SNAPSHOTS", "AGE"]);
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {table:?}"))
            .to_string()
    };
    assert!(
        row("busy").contains(&format!("{running}  running")),
        "{table:?}"
    );
    assert!(row("ok").contains("exited (0)"), "{table:?}");
    assert!(row("bad").contains("exited (2)"), "{table:?}");
    assert!(row("halted").contains("stopped"), "{table:?}");

    let json = env.list();
    let names: Vec<&str> = json.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["busy", "halted", "bad", "ok"], "newest first");
    for run in &json {
        for field in [
            "id",
            "name",
            "state",
            "exit_code",
            "workspace",
            "created_at",
        ] {
            assert!(run.get(field).is_some(), "{field} missing in {run}");
        }
    }
    assert_eq!(json[2]["exit_code"], 2);
    assert!(json[0]["exit_code"].is_null());
    env.run(&["stop", "busy"]);
}

#[test]
fn a_run_that_ended_while_nobody_watched_shows_its_real_end() {
    let env = TestEnv::new();
    let id = env.run_detached(&["--keep"], &["sleep", "300"]);
    // Kill the supervisor, then the container: moat learns of the end only from Docker.
    kill_supervisor(&env, &id);
    assert_eq!(docker(&["kill", &id]).code, 0);
    let run = env.wait_for_state(&id, "exited");
    assert_eq!(run["exit_code"], 137);

    // And one whose container vanished entirely is `failed`, with the reason.
    let gone = env.run_detached(&[], &["sleep", "300"]);
    kill_supervisor(&env, &gone);
    assert_eq!(docker(&["rm", "-f", &gone]).code, 0);
    let run = env.wait_for_state(&gone, "failed");
    assert!(
        run["error"].as_str().unwrap().contains("disappeared"),
        "{run}"
    );
    env.run(&["destroy", &id]);
}

/// SIGKILL a run's supervisor and wait until it is gone.
pub(crate) fn kill_supervisor(env: &TestEnv, id: &str) {
    let pid = env.run_json(id)["supervisor_pid"].as_u64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for("the supervisor to die", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
}

#[test]
fn runs_are_found_by_id_prefix_or_name_and_ambiguity_is_explained() {
    let env = TestEnv::new();
    env.run(&["run", "--name", "twin", "--", "echo", "one"]);
    env.run(&["run", "--name", "other", "--", "echo", "two"]);
    let runs = env.list();
    // A name is unique now, but records an older moat made may share one: rename the
    // newest as such a record would have it.
    let path = env
        .moat_home()
        .join("runs")
        .join(runs[0]["id"].as_str().unwrap())
        .join("metadata.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    record["name"] = "twin".into();
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let runs = env.list();
    let newest = runs[0]["id"].as_str().unwrap();

    let by_prefix = env.run(&["logs", &newest[..10]]);
    assert_eq!(by_prefix.stdout, "two\n", "{by_prefix:?}");
    let latest = env.run(&["logs"]);
    assert_eq!(latest.stdout, "two\n", "no argument: the most recent run");

    let ambiguous = env.run(&["logs", "twin"]);
    assert_eq!(ambiguous.code, 1);
    assert!(
        ambiguous.stderr.contains("`twin` matches 2 runs"),
        "{ambiguous:?}"
    );
    for run in &runs {
        assert!(
            ambiguous.stderr.contains(run["id"].as_str().unwrap()),
            "candidates listed: {ambiguous:?}"
        );
    }
    let unknown = env.run(&["attach", "nope"]);
    assert_eq!(unknown.code, 125);
    assert!(
        unknown.stderr.contains("no run matches `nope`"),
        "{unknown:?}"
    );
    assert!(
        unknown.stderr.contains("twin"),
        "candidates listed: {unknown:?}"
    );
}

#[test]
fn a_name_in_use_by_a_running_run_is_refused() {
    let env = TestEnv::new();
    let id = env.run_detached(&["--name", "solo"], &["sleep", "300"]);
    let out = env.run(&["run", "--name", "solo", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("already named `solo`"), "{out:?}");
    env.run(&["stop", &id]);
    // Stopped, it still holds the name: `--replace` takes it.
    let taken = env.run(&["run", "--name", "solo", "--", "true"]);
    assert_eq!(taken.code, 125, "{taken:?}");
    assert!(taken.stderr.contains("--replace"), "{taken:?}");
    assert_eq!(
        env.run(&["run", "--name", "solo", "--replace", "--", "true"])
            .code,
        0
    );
    assert_eq!(env.list().len(), 1, "the stopped run was replaced");
}
