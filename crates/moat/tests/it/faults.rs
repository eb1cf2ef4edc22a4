//! Faults from outside the run: concurrent runs fighting over a name or an image, a full
//! disk under MOAT_HOME, a damaged record. Each ends with a clear message, the command's
//! true exit code, and nothing left that `moat list` cannot see or `moat destroy` cannot
//! remove.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{Out, TestEnv};

/// A `post_build` hook with a word of its own, so the image is built cold by this test.
fn cold_image(env: &TestEnv) {
    let word = env.moat_home().display().to_string().replace('/', "-");
    std::fs::write(
        env.workspace().join("moat.yaml"),
        format!("hooks:\n  post_build: echo cold{word} > /tmp/cold\n"),
    )
    .unwrap();
}

#[test]
fn two_runs_asking_for_one_name_at_once_start_exactly_one() {
    let env = TestEnv::new();
    cold_image(&env);
    assert_eq!(env.run(&["trust"]).code, 0);
    let spawn = || {
        env.moat()
            .args(["run", "-d", "--name", "same", "--", "sleep", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [
        Out::from(a.wait_with_output().unwrap()),
        Out::from(b.wait_with_output().unwrap()),
    ];
    let started: Vec<&Out> = outs.iter().filter(|o| o.code == 0).collect();
    assert_eq!(started.len(), 1, "{outs:#?}");
    let refused = outs.iter().find(|o| o.code != 0).unwrap();
    assert_eq!(refused.code, 125, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("a running run is already named `same`"),
        "{refused:?}"
    );
    // One image build between them: the second waited for the first.
    let builds = outs
        .iter()
        .filter(|o| o.stderr.contains("moat: building image"))
        .count();
    assert_eq!(builds, 1, "{outs:#?}");
    let named: Vec<_> = env
        .list()
        .into_iter()
        .filter(|r| r["name"] == "same")
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(env.run(&["stop", "same"]).code, 0);
}

/// A tmpfs of `size` mounted at `dir` for as long as it lives (tests run as root).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs at {}", dir.display());
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_under_moat_home_is_a_clear_error_and_the_record_recovers() {
    let env = TestEnv::new();
    // The image first, on a roomy MOAT_HOME: the CA it trusts lives there.
    assert_eq!(env.run(&["run", "--", "true"]).code, 0);
    let home = env.moat_home();
    let keep = home.parent().unwrap().join("home-before");
    std::fs::rename(&home, &keep).unwrap();
    let disk = Tmpfs::mount(&home, "512k");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(keep.join("proxy-ca"))
        .arg(&home)
        .status()
        .unwrap();
    assert!(copied.success());

    // The disk fills up while the command runs; then the command ends well.
    let moat = env
        .moat()
        .args(["run", "--", "sh", "-c", "sleep 4; echo done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::harness::wait_for("the run to start", || {
        env.list()
            .first()
            .filter(|r| r["state"] == "running")
            .cloned()
    });
    // Full to the last byte: big blocks first, then single bytes for what is left.
    let filler = home.join("filler");
    for (block, tail) in [("bs=64k", "filler"), ("bs=1", "filler-tail")] {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", block])
            .arg(format!("of={}", home.join(tail).display()))
            .stderr(Stdio::null())
            .status();
    }
    let out = Out::from(moat.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "the command's own exit code: {}", out.stderr);
    assert_eq!(out.stdout, "done\n");
    assert!(
        out.stderr.contains("could not be written") && out.stderr.contains("hint: free space"),
        "{}",
        out.stderr
    );
    // Every record still parses, and `moat list` works (the run as last recorded).
    let run = &env.list()[0];
    let id = run["id"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(home.join("runs").join(&id).join("metadata.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap();

    // A run started on the full disk: a clear error, and no half-made directory.
    let before = env.run_dirs().len();
    let out = env.run(&["run", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("hint: the disk holding MOAT_HOME is full"),
        "{out:?}"
    );
    assert_eq!(env.run_dirs().len(), before, "nothing half-made is left");

    // Room again: the record tells the truth without anyone doing anything.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(home.join("filler-tail")).unwrap();
    disk.resize("64m");
    let run = env.run_json(&id);
    assert_eq!(run["state"], "exited", "{run}");
    assert_eq!(run["exit_code"], 0, "{run}");
    drop(disk);
    let _ = std::fs::remove_dir_all(&home);
    std::fs::rename(&keep, &home).unwrap();
}

#[test]
fn a_damaged_record_is_listed_and_destroy_force_removes_it() {
    let env = TestEnv::new();
    let id = env.run_detached(&["--keep"], &["true"]);
    env.wait_for_state(&id, "exited");
    let dir = env.moat_home().join("runs").join(&id);
    std::fs::write(dir.join("metadata.json"), b"{ half a record").unwrap();

    let out = env.run(&["list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!("{id}  damaged: "))
            && out.stdout.contains(&format!("moat destroy --force {id}")),
        "{out:?}"
    );
    let listed = env.list();
    assert!(
        listed
            .iter()
            .any(|r| r["id"] == id && r["state"] == "damaged"),
        "{listed:?}"
    );
    let out = env.run(&["destroy", &id]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is damaged"), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("hint: `moat destroy --force {id}`")),
        "{out:?}"
    );
    let out = env.run(&["destroy", "--force", &id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!dir.exists());
    assert!(
        !crate::harness::container_exists(&id),
        "its kept container is gone too"
    );
}

/// A Docker daemon of the test's own: its own containerd, data-root, exec-root, socket and
/// bridge, so that killing and restarting it touches nothing of the machine's daemon.
struct OwnDaemon {
    dir: tempfile::TempDir,
    bridge: String,
    dockerd: Option<std::process::Child>,
    containerd: std::process::Child,
}

impl OwnDaemon {
    fn start() -> OwnDaemon {
        let dir = tempfile::Builder::new()
            .prefix("moat-dd")
            .tempdir_in("/tmp")
            .unwrap();
        let n = std::process::id() % 250;
        let bridge = format!("moat-t{n}");
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("10.231.{n}.1/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let containerd = Command::new("containerd")
            .arg("--root")
            .arg(dir.path().join("ctd-root"))
            .arg("--state")
            .arg(dir.path().join("ctd-state"))
            .arg("--address")
            .arg(dir.path().join("containerd.sock"))
            .stdout(log("containerd.log"))
            .stderr(log("containerd.err"))
            .spawn()
            .unwrap();
        let mut daemon = OwnDaemon {
            dir,
            bridge,
            dockerd: None,
            containerd,
        };
        crate::harness::wait_for("containerd's socket", || {
            daemon
                .dir
                .path()
                .join("containerd.sock")
                .exists()
                .then_some(())
        });
        daemon.start_dockerd();
        daemon
    }

    fn socket(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    fn start_dockerd(&mut self) {
        let p = |name: &str| self.dir.path().join(name);
        let _ = std::fs::remove_file(p("docker.pid"));
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--containerd")
            .arg(p("containerd.sock"))
            .arg("--data-root")
            .arg(p("data"))
            .arg("--exec-root")
            .arg(p("exec"))
            .arg("--pidfile")
            .arg(p("docker.pid"))
            .args(["-H", &self.socket()])
            .args(["--bridge", &self.bridge])
            .args(["--iptables=false", "--ip-masq=false"])
            .stdout(std::fs::File::create(p("dockerd.log")).unwrap())
            .stderr(std::fs::File::create(p("dockerd.err")).unwrap())
            .spawn()
            .unwrap();
        self.dockerd = Some(child);
        crate::harness::wait_for("the test's dockerd", || {
            self.docker(&["info"]).status.success().then_some(())
        });
    }

    fn kill_dockerd(&mut self) {
        if let Some(mut child) = self.dockerd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("/usr/bin/docker")
            .args(["-H", &self.socket()])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        self.kill_dockerd();
        let _ = self.containerd.kill();
        let _ = self.containerd.wait();
        // The shims of containers that outlived their containerd, and the mounts left.
        let dir = self.dir.path().display().to_string();
        let _ = Command::new("pkill").args(["-9", "-f", &dir]).status();
        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
            let mut inside: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|m| m.starts_with(&dir))
                .collect();
            inside.sort_by(|a, b| b.cmp(a));
            for mount in inside {
                let _ = Command::new("umount").args(["-l", mount]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// `kill -9` of the Docker daemon mid-run, then the daemon back: the supervisor waits it
/// out instead of recording a failure while the command runs; the restarted daemon (no
/// live-restore) stops the container, and the run is recorded with that true end, its
/// output kept, its container removed.
#[test]
fn a_docker_daemon_killed_and_restarted_mid_run_is_waited_out() {
    let env = TestEnv::new();
    // The run's image, built by the machine's daemon, given to the test's own.
    let built = env.run(&["run", "--", "true"]);
    assert_eq!(built.code, 0, "{built:?}");
    let image = env.list()[0]["image"].as_str().unwrap().to_owned();
    let mut daemon = OwnDaemon::start();
    let saved = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "/usr/bin/docker save {image} | /usr/bin/docker -H {} load",
            daemon.socket()
        ))
        .output()
        .unwrap();
    assert!(saved.status.success(), "{saved:?}");

    let socket = daemon.socket();
    let moat = |args: &[&str]| {
        Out::from(
            env.moat()
                .env("DOCKER_HOST", &socket)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let started = moat(&[
        "run",
        "-d",
        "--name",
        "restarted",
        "--",
        "sh",
        "-c",
        "echo before; sleep 60; echo after",
    ]);
    assert_eq!(started.code, 0, "{started:?}");
    let id = started.stdout.trim().to_owned();
    crate::harness::wait_for("the first line", || {
        (!env.logs_jsonl(&id).is_empty()).then_some(())
    });
    let record = || -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(env.moat_home().join("runs").join(&id).join("metadata.json"))
                .unwrap(),
        )
        .unwrap()
    };

    daemon.kill_dockerd();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        record()["state"],
        "running",
        "not failed while Docker is away"
    );
    daemon.start_dockerd();

    let ended = crate::harness::wait_for("the run's end", || {
        let r = record();
        (r["state"] != "running").then_some(r)
    });
    assert_eq!(
        (ended["state"].as_str(), ended["exit_code"].as_i64()),
        (Some("exited"), Some(143)),
        "the daemon's restart stopped it: {ended}"
    );
    let supervisor_log = || {
        std::fs::read_to_string(
            env.moat_home()
                .join("runs")
                .join(&id)
                .join("supervisor.log"),
        )
        .unwrap_or_default()
    };
    assert!(ended["error"].is_null(), "{ended}");
    assert_eq!(
        ended["logs_complete"],
        true,
        "the log was copied to Docker's end: {ended}\n{}",
        supervisor_log()
    );
    assert_eq!(moat(&["logs", &id]).stdout, "before\n");
    // The end is recorded first (a removal that fails must not lose it); the container
    // goes right after.
    crate::harness::wait_for("the container's removal", || {
        let left = daemon.docker(&["ps", "-aq"]);
        String::from_utf8_lossy(&left.stdout)
            .trim()
            .is_empty()
            .then_some(())
    });
}
