//! The test harness: an isolated `MOAT_HOME` and workspace per test, the built `moat`
//! binary, and the local images the tests need (nothing can be pulled here).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/bin/docker";
/// The owner of every test workspace, so the UID mapping is visible (tests run as root).
pub const OWNER: u32 = 1234;

/// One test's world: its own `MOAT_HOME`, `HOME` and workspace, all removed at the end.
pub struct TestEnv {
    root: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        ensure_base_images();
        let root = tempfile::Builder::new()
            .prefix("moat-it-")
            .tempdir()
            .unwrap();
        for dir in ["moat-home", "home", "workspace"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        let env = TestEnv { root };
        chown(&env.workspace(), OWNER, OWNER);
        env
    }

    pub fn moat_home(&self) -> PathBuf {
        self.root.path().join("moat-home")
    }

    pub fn workspace(&self) -> PathBuf {
        self.root.path().join("workspace")
    }

    /// A `moat` command with a clean environment: only what the test gives it.
    pub fn moat(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.path().join("home"))
            .env("MOAT_HOME", self.moat_home())
            .current_dir(self.workspace())
            .stdin(Stdio::null());
        cmd
    }

    /// [`TestEnv::moat`] with the credential key in a file, never the OS keyring.
    pub fn moat_file_keyring(&self) -> Command {
        let mut cmd = self.moat();
        cmd.env("MOAT_KEYRING", "file");
        cmd
    }

    /// Run `moat ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Out {
        Out::from(self.moat().args(args).output().unwrap())
    }

    /// Run `moat ARGS` with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut child = self
            .moat()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        Out::from(child.wait_with_output().unwrap())
    }

    /// Start `moat run -d ...` and return the run id it prints.
    pub fn run_detached(&self, extra: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(extra);
        args.push("--");
        args.extend_from_slice(command);
        let out = self.run(&args);
        assert_eq!(out.code, 0, "{out:?}");
        let id = out.stdout.trim().to_owned();
        assert!(id.starts_with("run_") && id.len() == 16, "{out:?}");
        id
    }

    /// `moat list --json`, parsed.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["list", "--json"]);
        assert_eq!(out.code, 0, "{out:?}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    pub fn run_json(&self, id: &str) -> serde_json::Value {
        self.list()
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed"))
    }

    /// Wait until the run's state is `state` (as `moat list` reports it).
    pub fn wait_for_state(&self, id: &str, state: &str) -> serde_json::Value {
        wait_for(&format!("{id} to be {state}"), || {
            let run = self.run_json(id);
            (run["state"] == state).then_some(run)
        })
    }

    pub fn logs_jsonl(&self, id: &str) -> Vec<serde_json::Value> {
        let text =
            std::fs::read_to_string(self.moat_home().join("runs").join(id).join("logs.jsonl"))
                .unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn run_dirs(&self) -> Vec<String> {
        match std::fs::read_dir(self.moat_home().join("runs")) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => vec![],
        }
    }
}

impl Drop for TestEnv {
    /// A failing test must not leave containers running: stop whatever this test started.
    /// (The images its runs built are removed after the suite, by
    /// `scripts/clean-test-images.sh`: removing them here, while other tests build, could
    /// delete an intermediate image another build is using as its cache.)
    fn drop(&mut self) {
        let _ = self.moat().args(["stop", "--all"]).output();
    }
}

/// What a finished `moat` printed and returned.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl TestEnv {
    /// insta settings that make this test's output stable: its temporary root, run IDs,
    /// random run names, ages, hashes and timings are replaced by placeholders.
    pub fn snapshot_settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        let root = self.root.path().display().to_string();
        settings.add_filter(&regex_escape(&root), "[ROOT]");
        settings.add_filter(r"run_[0-9a-f]{12}", "run_[ID]");
        settings.add_filter(r"sha256:[0-9a-f]{12,64}", "sha256:[HASH]");
        settings.add_filter(r"moat/run:[0-9a-f]{16}", "moat/run:[TAG]");
        settings.add_filter(r"\b\d+(s|m|h|d) ago\b", "[AGE] ago");
        // The AGE column of `moat list`.
        settings.add_filter(r"(?m)\b\d+[smhd]$", "[AGE]");
        settings.add_filter(r"\b\d+\.\d+s\b", "[SECONDS]s");
        settings.add_filter(r"\b[a-z]+-[a-z]+ (run_\[ID\])", "[NAME] $1");
        settings.add_filter(r"\(([a-z]+-[a-z]+)\)", "([NAME])");
        settings
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Poll `check` until it returns `Some`, for at most 60 s.
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_within(Duration::from_secs(60), check)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// `check` every 100 ms until it gives a value, or `None` once `timeout` has passed.
pub fn wait_within<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn docker(args: &[&str]) -> Out {
    Out::from(Command::new(DOCKER).args(args).output().unwrap())
}

/// Whether a container with this name exists (in any state).
pub fn container_exists(name: &str) -> bool {
    let out = docker(&["ps", "-a", "-q", "--filter", &format!("name=^/{name}$")]);
    !out.stdout.trim().is_empty()
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// A `FROM scratch` image holding only busybox: a base without `useradd`, to make image
/// builds fail on purpose.
pub const BUSYBOX_IMAGE: &str = "moat-test/busybox:1";
/// A Debian base whose `getent` hangs, to interrupt a build in its middle.
pub const SLOW_BUILD_IMAGE: &str = "moat-test/slow-getent:1";

/// Build the images tests rely on, once per test process.
fn ensure_base_images() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let status = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert_eq!(
            status.code, 0,
            "the tests need a running Docker daemon (see README: `bash .ci/run` sets one up): {status:?}"
        );
        if docker(&["image", "inspect", "debian:bookworm-slim"]).code != 0 {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/base-images.sh");
            let ok = Command::new("bash").arg(script).status().unwrap().success();
            assert!(ok, "scripts/base-images.sh failed");
        }
        if docker(&["image", "inspect", BUSYBOX_IMAGE]).code != 0 {
            build_image(
                BUSYBOX_IMAGE,
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"/bin/sh\"]\n",
                &[("busybox", &std::fs::read("/bin/busybox").expect("busybox-static is installed"))],
            );
        }
        if docker(&["image", "inspect", SLOW_BUILD_IMAGE]).code != 0 {
            build_image(
                SLOW_BUILD_IMAGE,
                "FROM debian:bookworm-slim\nRUN printf '#!/bin/sh\\nsleep 3117\\n' > /usr/local/bin/getent && chmod +x /usr/local/bin/getent\n",
                &[],
            );
        }
    });
}

/// Build `dockerfile` with `files` (mode 0755) beside it as `tag`.
pub fn build_image(tag: &str, dockerfile: &str, files: &[(&str, &[u8])]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, bytes) in files {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = docker(&["build", "-q", "-t", tag, dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "building {tag}: {out:?}");
}
