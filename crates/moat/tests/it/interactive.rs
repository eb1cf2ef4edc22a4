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

    /// A tmux format of the session's pane, e.g. `#{alternate_on}` (1 while the terminal
    /// shows its alternate screen) or `#{cursor_flag}` (1 while the cursor shows).
    pub(crate) fn pane(&self, session: &str, format: &str) -> String {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", session, format])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub(crate) fn wait_screen(&self, session: &str, text: &str) -> String {
        self.wait_screen_for(session, &format!("`{text}`"), |screen| {
            screen.contains(text)
        })
    }

    /// Wait until the screen shows what `shows` looks for; on a timeout, the panic shows
    /// the screen as it was last.
    pub(crate) fn wait_screen_for(
        &self,
        session: &str,
        what: &str,
        shows: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_screen_within(session, what, Duration::from_secs(60), shows)
    }

    /// [`Tmux::wait_screen_for`] with a timeout of its own (an image build first).
    pub(crate) fn wait_screen_within(
        &self,
        session: &str,
        what: &str,
        timeout: Duration,
        shows: impl Fn(&str) -> bool,
    ) -> String {
        let mut last = String::new();
        crate::harness::wait_within(timeout, || {
            last = self.screen(session);
            shows(&last).then(|| last.clone())
        })
        .unwrap_or_else(|| {
            panic!("timed out waiting for {what} on the screen, which shows:\n{last}")
        })
    }

    /// Any tmux command on the test's server, its output as text.
    pub(crate) fn command(&self, args: &[&str]) -> String {
        let out = self.tmux().args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
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

/// A full-screen program that hides the cursor, asks for mouse reports and bracketed
/// paste on the alternate screen: a detach gives the user's terminal back as it was,
/// moat's words below, and `moat logs` shows the text that was drawn (`--raw`, the bytes).
#[test]
fn a_detach_from_a_full_screen_program_gives_the_terminal_back() {
    let env = TestEnv::new();
    let tmux = Tmux::new(&env);
    let program = "printf 'before the screen\\n'; \
        printf '\\033[?1049h\\033[?25l\\033[?1000h\\033[?2004h\\033[H\\033[2J'; \
        printf '\\033[5;10H\\033[1;32mDRAWN AT ROW FIVE\\033[0m'; \
        printf '\\033[1;1Hspinner |'; sleep 0.3; printf '\\033[1;1Hspinner /'; \
        printf '\\033[?2004l\\033[?1049l'; printf 'after the screen, cols='; tput cols; \
        printf '\\033[?1049h\\033[?25l\\033[?1000hSTILL DRAWING'; sleep 600";
    tmux.start(
        &env,
        "tui",
        &format!("run -i --name tui -- sh -c \"{program}\""),
    );
    tmux.wait_screen("tui", "STILL DRAWING");
    assert_eq!(tmux.pane("tui", "#{alternate_on}"), "1");
    tmux.escape("tui", "d");
    let screen = tmux.wait_screen("tui", "MOAT-EXIT=");
    assert!(screen.contains("detached from run"), "{screen}");
    assert_eq!(
        (
            tmux.pane("tui", "#{alternate_on}"),
            tmux.pane("tui", "#{cursor_flag}"),
            tmux.pane("tui", "#{mouse_any_flag}#{mouse_standard_flag}"),
        ),
        ("0".into(), "1".into(), "00".into()),
        "the alternate screen, the hidden cursor and mouse reports were switched off: {screen}"
    );

    // The text that was on the screen, not its escape codes.
    let logs = wait_for("the output in the run's log", || {
        let logs = env.run(&["logs", "tui"]);
        logs.stdout.contains("cols=120").then_some(logs)
    });
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(!logs.stdout.contains('\x1b'), "{:?}", logs.stdout);
    assert!(
        logs.stdout
            .starts_with("before the screen\nafter the screen, cols=120\n"),
        "{:?}",
        logs.stdout
    );
    let raw = env.run(&["logs", "--raw", "tui"]);
    assert!(raw.stdout.contains("\x1b[?1049h"), "{:?}", raw.stdout);
    assert!(raw.stdout.contains("DRAWN AT ROW FIVE"), "{:?}", raw.stdout);
    assert_eq!(
        env.run(&["logs", "-n", "1", "tui"]).stdout,
        "after the screen, cols=120\n"
    );
    assert_eq!(env.run(&["stop", "tui"]).code, 0);
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
