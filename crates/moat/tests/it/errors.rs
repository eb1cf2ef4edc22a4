//! What users get wrong and what goes wrong: each gives a message, a hint, a non-zero exit,
//! and leaves nothing behind.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{BUSYBOX_IMAGE, Out, SLOW_BUILD_IMAGE, TestEnv, docker, wait_for};

fn assert_error(out: &Out, code: i32, message: &str) {
    assert_eq!(out.code, code, "{out:?}");
    let error_line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(error_line.contains(message), "{out:?}");
    assert!(
        out.stderr.contains("\nhint: "),
        "every error says what to do: {out:?}"
    );
}

/// The exit code and everything on stderr, for a snapshot: an error says what happened
/// and what to do.
fn shown(out: &Out) -> String {
    format!("exit {}\n{}", out.code, out.stderr)
}

#[test]
fn docker_not_running() {
    let env = TestEnv::new();
    let out = Out::from(
        env.moat()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["run", "--", "true"])
            .output()
            .unwrap(),
    );
    env.snapshot_settings()
        .bind(|| insta::assert_snapshot!(shown(&out), @"
        exit 125
        error: cannot connect to the Docker daemon at `unix:///nonexistent/docker.sock`: the socket `/nonexistent/docker.sock` does not exist
        hint: start Docker (`sudo systemctl start docker`, or `sudo dockerd &`), install it with `sudo apt-get install docker.io` if it is missing, or point DOCKER_HOST at a running daemon
        "));
    assert!(env.run_dirs().is_empty());
}

#[test]
fn workspace_missing_or_not_a_directory() {
    let env = TestEnv::new();
    let missing = env.workspace().join("missing");
    let out = env.run(&["run", missing.to_str().unwrap(), "--", "true"]);
    let file = env.workspace().join("file");
    std::fs::write(&file, b"").unwrap();
    let not_dir = env.run(&["run", file.to_str().unwrap(), "--", "true"]);
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown(&out), @"
        exit 125
        error: workspace `[ROOT]/workspace/missing` does not exist
        hint: give the path of an existing project directory, or leave it out to use the current directory
        ");
        insta::assert_snapshot!(shown(&not_dir), @"
        exit 125
        error: workspace `[ROOT]/workspace/file` is not a directory
        hint: give the path of an existing project directory, or leave it out to use the current directory
        ");
    });
    assert!(env.run_dirs().is_empty());
}

#[test]
fn bad_env_and_bad_names() {
    let env = TestEnv::new();
    let outs = [
        env.run(&["run", "-e", "1X=y", "--", "true"]),
        env.run(&["run", "-e", "NO-EQUALS", "--", "true"]),
        env.run(&["run", "--name", "has space", "--", "true"]),
    ];
    let text: Vec<String> = outs.iter().map(shown).collect();
    insta::assert_snapshot!(text.join("\n"), @"
    exit 125
    error: invalid --env key `1X`: not a valid variable name
    hint: names are letters, digits and `_`, not starting with a digit, e.g. `MY_VAR=1`

    exit 125
    error: invalid --env `NO-…`: expected KEY=VALUE, or a variable's name to pass its value
    hint: for example `-e DEBUG=1`, or `-e DEBUG` for the value DEBUG has here

    exit 125
    error: `--name`: `has space` is not a valid run name: use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit
    hint: for example `--name feature-auth`
    ");
    assert!(env.run_dirs().is_empty());
}

#[test]
fn interactive_without_a_terminal() {
    let env = TestEnv::new();
    insta::assert_snapshot!(shown(&env.run(&["run", "-i", "--", "sh"])), @"
    exit 125
    error: an interactive session needs a terminal
    hint: run it from a terminal, drop `-i` to pipe stdin, or add `-d` and `moat attach` later
    ");
}

#[test]
fn a_failing_build_shows_the_failing_step_and_leaves_no_tag() {
    let env = TestEnv::new();
    let out = Out::from(
        env.moat()
            .env("MOAT_BASE_IMAGE", BUSYBOX_IMAGE)
            .args(["run", "--", "true"])
            .output()
            .unwrap(),
    );
    assert_error(&out, 125, "image build failed at step 3/");
    // The step's own output is shown: busybox has no apt-get.
    assert!(
        out.stderr.contains("output of the failing step:"),
        "{out:?}"
    );
    assert!(out.stderr.contains("apt-get: not found"), "{out:?}");
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no terminal escapes in the output: {out:?}"
    );
    let tag = building_tag(&out.stderr);
    assert_ne!(
        docker(&["image", "inspect", &tag]).code,
        0,
        "no tag left behind"
    );
    assert!(env.run_dirs().is_empty());
}

/// A build that cannot reach the Debian mirror (its network is `none` here) says which
/// setting fixes that, and names the failing command once, in short.
#[test]
fn a_build_that_cannot_download_names_the_mirror_setting() {
    let env = TestEnv::new();
    std::fs::write(env.workspace().join("moat.yaml"), "dependencies:\n  - jq\n").unwrap();
    let out = Out::from(
        env.moat()
            .env("MOAT_BUILD_NETWORK", "none")
            .args(["run", "--trust", "--", "true"])
            .output()
            .unwrap(),
    );
    assert_error(&out, 125, "image build failed at step");
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert!(error.contains("the command exited with code"), "{out:?}");
    assert!(
        !error.contains("The command '/bin/sh -c"),
        "Docker's copy of the script is left out: {out:?}"
    );
    assert!(error.chars().count() < 200, "{error}");
    let hint = out
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap();
    assert!(
        hint.contains("cannot reach deb.debian.org") && hint.contains("`mirrors.debian`"),
        "{out:?}"
    );
    assert!(env.run_dirs().is_empty());
}

#[test]
fn ctrl_c_during_a_build_cancels_it_cleanly() {
    let env = TestEnv::new();
    let child = env
        .moat()
        .env("MOAT_BASE_IMAGE", SLOW_BUILD_IMAGE)
        .args(["run", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the build sits in its slow step.
    wait_for("the build to reach its slow step", || {
        let out = docker(&["ps", "-q", "--filter", "status=running"]);
        out.stdout
            .lines()
            .any(|c| docker(&["top", c]).stdout.contains("sleep 3117"))
            .then_some(())
    });
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let out = Out::from(child.wait_with_output().unwrap());
    assert_eq!(out.code, 130, "{out:?}");
    assert!(out.stderr.contains("cancelled"), "{out:?}");
    let tag = building_tag(&out.stderr);
    assert_ne!(
        docker(&["image", "inspect", &tag]).code,
        0,
        "no tag left behind"
    );
    assert!(env.run_dirs().is_empty());
    // The daemon removes the build's container once it notices the cancel.
    wait_for("the build container to go", || {
        let out = docker(&["ps", "-aq"]);
        (!out.stdout.lines().any(|c| {
            docker(&["inspect", "--format", "{{.Path}} {{.Args}}", c])
                .stdout
                .contains("getent")
        }))
        .then_some(())
    });
    std::thread::sleep(Duration::from_millis(10));
}

/// The tag a build announced on stderr (`building image moat/run:…`).
fn building_tag(stderr: &str) -> String {
    let start = stderr
        .find("building image ")
        .expect("the build was announced")
        + "building image ".len();
    stderr[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
