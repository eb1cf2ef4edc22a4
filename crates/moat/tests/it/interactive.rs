//! Interactive sessions driven through a real terminal (tmux): the shell answers, the
//! escape keys detach and stop, `moat attach` returns to the same session.

use std::process::Command;
use std::time::Duration;

use crate::harness::{TestEnv, wait_for};

/// A tmux server of the test's own, so tests never share sessions.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    pub(crate) fn new(env: &TestEnv) -> Self {
        let socket = format!("moat-it-{}", std::process::id())
            + &env.workspace().display().to_string().replace('/', "-");
        Tmux { socket }
    }

    pub(crate) fn start(&self, env: &TestEnv, session: &str, args: &str) {
        self.start_with_env(env, session, "HOME=/nonexistent", args);
    }

    /// `moat ARGS` in a new session, with a clean environment plus `vars` (`K=V ...`).
    pub(crate) fn start_with_env(&self, env: &TestEnv, session: &str, vars: &str, args: &str) {
        let command = format!(
            "env -i PATH=\"$PATH\" TERM=xterm-256color {vars} MOAT_HOME='{}' '{}' {args}; echo MOAT-EXIT=$?; sleep 600",
            env.moat_home().display(),
            env!("CARGO_BIN_EXE_moat"),
        );
        let status = self
            .tmux()
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "30",
                "-c",
            ])
            .arg(env.workspace())
            .arg(command)
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn keys(&self, session: &str, keys: &[&str]) {
        assert!(
            self.tmux()
                .args(["send-keys", "-t", session])
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    pub(crate) fn escape(&self, session: &str, key: &str) {
        assert!(
            self.tmux()
                .args(["send-keys", "-t", session, "-H", "1f"])
                .status()
                .unwrap()
                .success()
        );
        self.keys(session, &[key]);
    }

    pub(crate) fn screen(&self, session: &str) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-t", session, "-S", "-100"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes as escape sequences.
    pub(crate) fn screen_with_escapes(&self, session: &str) -> String {
        let out = self
            .tmux()
            .args([
                "capture-pane",
                "-p",
                "-e",
                "-J",
                "-t",
                session,
                "-S",
                "-100",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of the process the session's shell started (`moat`, while it runs).
    pub(crate) fn moat_pid(&self, session: &str) -> u32 {
        let out = self
            .tmux()
            .args(["list-panes", "-t", session, "-F", "#{pane_pid}"])
            .output()
            .unwrap();
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        wait_for("moat under the session's shell", || {
            let children =
                std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
            children.split_whitespace().next()?.parse().ok()
        })
    }

    pub(crate) fn wait_screen(&self, session: &str, text: &str) -> String {
        wait_for(&format!("`{text}` on the screen"), || {
            let screen = self.screen(session);
            screen.contains(text).then_some(screen)
        })
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

#[test]
fn interactive_shell_detach_attach_and_exit_code() {
    let env = TestEnv::new();
    let tmux = Tmux::new(&env);
    tmux.start(&env, "one", "run -i --name tty -- bash");
    tmux.wait_screen("one", "Escape sequences: Ctrl-/ d (detach)");
    tmux.wait_screen("one", "moatuser@");
    tmux.keys("one", &["echo answer-$((6*7)); tput cols", "Enter"]);
    // `tput cols` answers with the terminal's width: the size reached the container.
    tmux.wait_screen("one", "answer-42\n120\n");

    tmux.escape("one", "d");
    let screen = tmux.wait_screen("one", "MOAT-EXIT=");
    assert!(screen.contains("detached from run"), "{screen}");
    assert!(screen.contains("MOAT-EXIT=0"), "{screen}");
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(env.run_json(&id)["state"], "running");

    tmux.start(&env, "two", "attach tty");
    tmux.wait_screen("two", "attached to run");
    std::thread::sleep(Duration::from_millis(300));
    tmux.keys("two", &["echo still-$((40+2)) && exit 9", "Enter"]);
    tmux.wait_screen("two", "still-42");
    let screen = tmux.wait_screen("two", "MOAT-EXIT=");
    assert!(screen.contains("MOAT-EXIT=9"), "{screen}");
    let run = env.run_json(&id);
    assert_eq!(
        (run["state"].as_str(), run["exit_code"].as_i64()),
        (Some("exited"), Some(9))
    );
    // What happened in the session was recorded.
    let logged: Vec<String> = env
        .logs_jsonl(&id)
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_owned())
        .collect();
    assert!(logged.iter().any(|l| l.contains("answer-42")), "{logged:?}");
}

#[test]
fn escape_k_stops_the_run() {
    let env = TestEnv::new();
    let tmux = Tmux::new(&env);
    tmux.start(&env, "s", "run -i -- bash");
    tmux.wait_screen("s", "moatuser@");
    // A doubled prefix sends one Ctrl-/ to the program and does not end the session.
    tmux.escape("s", "x");
    tmux.keys("s", &["C-u", "echo alive", "Enter"]);
    tmux.wait_screen("s", "\nalive");
    tmux.escape("s", "k");
    let screen = tmux.wait_screen("s", "MOAT-EXIT=");
    assert!(screen.contains("stopping run"), "{screen}");
    let run = &env.list()[0];
    assert_eq!(run["state"], "stopped");
    let code = run["exit_code"].as_i64().unwrap();
    assert!(
        screen.contains(&format!("MOAT-EXIT={code}")),
        "moat exits with the run's code: {screen}"
    );
}

#[test]
fn sigterm_leaves_the_run_going_and_the_terminal_as_it_was() {
    let env = TestEnv::new();
    let tmux = Tmux::new(&env);
    // After moat: its exit code, then the terminal's settings as the shell sees them.
    tmux.start(
        &env,
        "term",
        "run -i --name kept -- bash; echo CODE=$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | sed 's/^/TTY:/'",
    );
    tmux.wait_screen("term", "moatuser@");
    let pid = tmux.moat_pid("term");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let screen = tmux.wait_screen("term", "MOAT-EXIT=");
    assert!(
        screen.contains("moat: SIGTERM: left run run_") && screen.contains("`moat attach run_"),
        "{screen}"
    );
    assert!(screen.contains("CODE=143"), "128 + SIGTERM: {screen}");
    assert!(
        screen.contains("TTY:icanon") && screen.contains("TTY:echo"),
        "the terminal is cooked again: {screen}"
    );
    assert!(
        !screen.contains("TTY:-icanon") && !screen.contains("TTY:-echo"),
        "{screen}"
    );
    let run = &env.list()[0];
    assert_eq!(run["state"], "running", "the run goes on: {run}");

    // And it can be returned to.
    tmux.start(&env, "back", "attach kept");
    tmux.wait_screen("back", "attached to run");
    std::thread::sleep(Duration::from_millis(300));
    tmux.keys("back", &["exit 3", "Enter"]);
    let screen = tmux.wait_screen("back", "MOAT-EXIT=");
    assert!(screen.contains("MOAT-EXIT=3"), "{screen}");
}
