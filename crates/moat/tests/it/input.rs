//! Input moat did not choose: files a workspace or a user points it at (FIFOs, devices,
//! huge files, alias bombs) are refused at once with a clear error; a closed stdout or
//! stderr is a quiet exit; colour only on a terminal without `NO_COLOR`; a huge
//! environment is refused before Docker; a lost encryption key is said, never replaced.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Out, TestEnv};
use crate::interactive::Tmux;

/// Far more than any refusal here takes (milliseconds); a hang fails the test instead of
/// blocking it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Run `cmd` to its end, or kill it and fail after [`PATIENCE`].
fn run_within(mut cmd: Command) -> Out {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = Out::from(child.wait_with_output().unwrap());
            panic!("moat hung: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Out::from(child.wait_with_output().unwrap())
}

fn shown(out: &Out) -> String {
    format!("exit {}\n{}", out.code, out.stderr)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_workspace_file_that_is_a_fifo_or_huge_is_refused_at_once() {
    let env = TestEnv::new();
    let file = env.workspace().join("moat.yaml");
    mkfifo(&file);
    let fifo = run_within({
        let mut cmd = env.moat();
        cmd.args(["run", "--", "true"]);
        cmd
    });
    std::fs::remove_file(&file).unwrap();
    // 50 MB, sparse: its size is what is refused, before a byte is read.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(50 * 1000 * 1000)
        .unwrap();
    let huge = run_within({
        let mut cmd = env.moat();
        cmd.args(["run", "--", "true"]);
        cmd
    });
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown(&fifo), @"
        exit 125
        error: [ROOT]/workspace/moat.yaml: the file is a named pipe (FIFO), not a regular file
        hint: moat reads a workspace file only from a regular file, since a pipe or a device may never end or never answer: put a regular file with the content there
        ");
        insta::assert_snapshot!(shown(&huge), @"
        exit 125
        error: [ROOT]/workspace/moat.yaml: the file is too large: 47.7 MiB, where moat reads at most 1 MiB
        hint: a workspace file is at most 1 MiB: check that `[ROOT]/workspace/moat.yaml` is the file you meant
        ");
    });
    assert!(env.run_dirs().is_empty(), "nothing started");
}

#[test]
fn an_extra_ca_file_that_is_a_device_is_refused_at_once() {
    let env = TestEnv::new();
    let out = run_within({
        let mut cmd = env.moat();
        cmd.env("MOAT_EXTRA_CA_CERTS", "/dev/zero")
            .args(["run", "--", "true"]);
        cmd
    });
    insta::assert_snapshot!(shown(&out), @"
    exit 125
    error: `MOAT_EXTRA_CA_CERTS`: cannot use CA file `/dev/zero`: the file is a character device, not a regular file
    hint: moat reads a CA certificate file only from a regular file, since a pipe or a device may never end or never answer: put a regular file with the content there
    ");
    // `moat doctor` reads it the same way.
    let doctor = run_within({
        let mut cmd = env.moat();
        cmd.env("MOAT_EXTRA_CA_CERTS", "/dev/zero").arg("doctor");
        cmd
    });
    assert!(
        doctor
            .stdout
            .contains("is a character device, not a regular file"),
        "{doctor:?}"
    );
}

#[test]
fn a_claude_json_that_is_a_fifo_is_refused_at_once() {
    let env = TestEnv::new();
    mkfifo(&env.workspace().join("../home/.claude.json"));
    let out = run_within({
        let mut cmd = env.moat();
        cmd.args(["claude", "--dry-run", "-p", "hello"]);
        cmd
    });
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown(&out), @"
        exit 125
        error: the Claude Code state file `[ROOT]/home/.claude.json` is a named pipe (FIFO), not a regular file
        hint: moat reads a Claude Code state file only from a regular file, since a pipe or a device may never end or never answer: put a regular file with the content there
        ");
    });
}

#[test]
fn a_yaml_alias_bomb_is_said_in_words() {
    let env = TestEnv::new();
    let aliases = vec!["*a"; 5000].join(", ");
    std::fs::write(
        env.workspace().join("moat.yaml"),
        format!("name: &a lol\nprotect: [{aliases}]\n"),
    )
    .unwrap();
    let out = run_within({
        let mut cmd = env.moat();
        cmd.args(["run", "--", "true"]);
        cmd
    });
    assert_eq!(out.code, 125, "{out:?}");
    let error = out.stderr.lines().next().unwrap_or_default();
    assert!(
        error
            .ends_with("the file uses YAML aliases beyond moat's limit (5000 aliases of 1 anchor)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "\nhint: remove the YAML aliases (`*name`) and anchors (`&name`) and write the values out"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("AliasAnchorRatio"), "{out:?}");
}

/// `VARS moat ARGS | READER` in bash; what the reader printed and moat's own exit status.
fn piped(env: &TestEnv, vars: &str, args: &str, reader: &str) -> (String, i32) {
    let script = format!(
        "{vars} '{}' {args} | {reader}; echo \"moat-status=${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_moat")
    );
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.workspace().join("../home"))
        .env("MOAT_HOME", env.moat_home())
        .current_dir(env.workspace())
        .stdin(Stdio::null());
    let out = run_within(bash);
    let status = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("moat-status="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    (out.stdout, status)
}

#[test]
fn a_closed_stdout_or_stderr_is_a_quiet_exit() {
    let env = TestEnv::new();
    // The error's first line reaches `head`; the hint after it meets a closed pipe.
    let (shown, status) = piped(&env, "", "logs nope 2>&1", "head -1");
    assert!(
        shown.starts_with("error: no run matches `nope`\n"),
        "{shown}"
    );
    assert_eq!(status, 1, "the error's own exit code, not a panic's 101");
    // Every write after the reader is gone: the error, and a debug log (doctor's talk
    // with Docker), whose writer used to report its failure with a panicking `eprintln!`.
    for args in [
        "logs nope 2>&1",
        "-v logs nope 2>&1",
        "doctor 2>&1",
        "doctor 2>/dev/null",
    ] {
        let (_, status) = piped(&env, "RUST_LOG=debug", args, "true");
        assert!(status == 0 || status == 1, "`moat {args}`: exit {status}");
    }
    // A closed stdout is success: what was asked for was shown as far as anyone read.
    let (_, status) = piped(&env, "", "deps list", "head -1");
    assert_eq!(status, 0);
    let (_, status) = piped(&env, "", "deps list --json", "true");
    assert_eq!(status, 0);
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let env = TestEnv::new();
    // Piped: plain text, even for the debug log (doctor's talk with Docker).
    let out = run_within({
        let mut cmd = env.moat();
        cmd.env("RUST_LOG", "debug").arg("doctor");
        cmd
    });
    assert!(out.stderr.contains("DEBUG"), "the log was written: {out:?}");
    assert!(!out.stderr.contains('\u{1b}'), "no escape codes: {out:?}");
    assert!(!out.stdout.contains('\u{1b}'), "no escape codes: {out:?}");

    // At a terminal the log is coloured, unless NO_COLOR says otherwise.
    let tmux = Tmux::new(&env);
    tmux.start_with_env(&env, "colour", "HOME=/nonexistent RUST_LOG=debug", "doctor");
    tmux.wait_screen("colour", "MOAT-EXIT=");
    let coloured = tmux.screen_with_escapes("colour");
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colour: {coloured:?}"
    );
    tmux.start_with_env(
        &env,
        "plain",
        "HOME=/nonexistent RUST_LOG=debug NO_COLOR=1",
        "doctor",
    );
    tmux.wait_screen("plain", "MOAT-EXIT=");
    let plain = tmux.screen_with_escapes("plain");
    assert!(plain.contains("DEBUG"), "{plain:?}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR: {plain:?}");
}

#[test]
fn a_huge_environment_is_refused_before_docker_naming_the_variable() {
    let env = TestEnv::new();
    // One variable past the kernel's per-variable limit, from the workspace file (a
    // command line that long could not even start moat).
    let big = "v".repeat(200 * 1024);
    std::fs::write(
        env.workspace().join("moat.yaml"),
        format!("env:\n  BIG: {big}\n"),
    )
    .unwrap();
    let one = run_within({
        let mut cmd = env.moat();
        cmd.env("DOCKER_HOST", "unix:///nonexistent.sock")
            .args(["run", "--trust", "--", "true"]);
        cmd
    });
    std::fs::remove_file(env.workspace().join("moat.yaml")).unwrap();
    // Many variables that are each fine and too much together.
    let value = "w".repeat(120 * 1024);
    let mut cmd = env.moat();
    cmd.env("DOCKER_HOST", "unix:///nonexistent.sock")
        .arg("run");
    for i in 0..9 {
        cmd.args(["-e", &format!("V{i}={value}")]);
    }
    cmd.args(["--", "true"]);
    let many = run_within(cmd);
    env.snapshot_settings().bind(|| insta::assert_snapshot!(format!("{}\n{}", shown(&one), shown(&many)), @"
    exit 125
    moat: trusted `[ROOT]/workspace/moat.yaml` as it is now (sha256:[HASH])
    error: the environment variable `BIG` is too large for a container: 200 KiB, where Linux starts a command only with variables of at most 128 KiB
    hint: pass large data as a file instead: put it in the workspace (or `--mount` it) and give the variable its path

    exit 125
    error: the run's environment is too large: 1.1 MiB in 9 variables (the largest: `V0`, `V1`, `V2`), where moat allows 1 MiB in all
    hint: pass large data as a file instead: put it in the workspace (or `--mount` it) and give the variable its path
    "));
    for out in [&one, &many] {
        assert!(!out.stderr.contains("vvvv") && !out.stderr.contains("wwww"));
    }
    assert!(env.run_dirs().is_empty(), "nothing started");
}

#[test]
fn a_missing_key_with_credentials_stored_is_an_error_not_a_new_key() {
    let env = TestEnv::new();
    let grant = run_within({
        let mut cmd = env.moat_file_keyring();
        cmd.env("OPENAI_API_KEY", "sk-proj-TESTmissingKEY").args([
            "grant",
            "openai",
            "--no-validate",
        ]);
        cmd
    });
    assert_eq!(grant.code, 0, "{grant:?}");
    let key = env.moat_home().join("encryption.key");
    std::fs::remove_file(&key).unwrap();

    let list = run_within({
        let mut cmd = env.moat_file_keyring();
        cmd.args(["grant", "list"]);
        cmd
    });
    let run = run_within({
        let mut cmd = env.moat_file_keyring();
        cmd.env("DOCKER_HOST", "unix:///nonexistent.sock")
            .args(["run", "--grant", "openai", "--", "true"]);
        cmd
    });
    env.snapshot_settings().bind(|| {
        insta::assert_snapshot!(format!("{}\n{}", shown(&list), shown(&run)), @"
        exit 1
        error: the encryption key of the stored credentials is missing (looked in `[ROOT]/moat-home/encryption.key`); the `openai` credential in `[ROOT]/moat-home/credentials` cannot be read without it
        hint: restore the key file `[ROOT]/moat-home/encryption.key` from a backup and retry; or start over: `moat revoke openai`, then grant again with `moat grant <provider>`

        exit 125
        error: the encryption key of the stored credentials is missing (looked in `[ROOT]/moat-home/encryption.key`); the `openai` credential in `[ROOT]/moat-home/credentials` cannot be read without it
        hint: restore the key file `[ROOT]/moat-home/encryption.key` from a backup and retry; or start over: `moat revoke openai`, then grant again with `moat grant <provider>`
        ");
    });
    // `moat doctor` says the same, and makes no key either.
    let doctor = run_within({
        let mut cmd = env.moat_file_keyring();
        cmd.arg("doctor");
        cmd
    });
    assert!(
        doctor
            .stdout
            .contains("the encryption key of the stored credentials is missing")
            && doctor.stdout.contains("`moat revoke openai`"),
        "{doctor:?}"
    );
    assert!(!key.exists(), "no new key was made");
    assert!(env.run_dirs().is_empty(), "nothing started");

    // The way on that the hint gives works.
    let revoke = run_within({
        let mut cmd = env.moat_file_keyring();
        cmd.args(["revoke", "openai"]);
        cmd
    });
    assert_eq!(revoke.code, 0, "{revoke:?}");
    let again = run_within({
        let mut cmd = env.moat_file_keyring();
        cmd.env("OPENAI_API_KEY", "sk-proj-TESTmissingKEY").args([
            "grant",
            "openai",
            "--no-validate",
        ]);
        cmd
    });
    assert_eq!(again.code, 0, "{again:?}");
    assert!(key.exists());
}
