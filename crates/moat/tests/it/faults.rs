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
