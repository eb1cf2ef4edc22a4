//! What snapshots cost on generated workspaces, next to `tar czf` and `git add -A && git
//! commit` of the same tree in the same run: first snapshot, a snapshot with nothing
//! changed, one with one file changed, the store's size, and a restore of the first
//! snapshot after a change. `cargo bench -p moat-snapshot --bench snapshots [-- SIZES]`
//! where SIZES are file counts (default `1000 20000 100000`) and `big` adds one 1 GiB file.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // a program run by hand: its output is the point

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use moat_snapshot::{Rules, SnapshotStore, Trigger};

/// A workspace of `files` files of 1-8 KiB in directories of 100, with some of them
/// executable, a symlink and an empty directory; or one 1 GiB file (`files == 0`).
fn generate(root: &Path, files: usize) {
    fs_err::create_dir_all(root).unwrap();
    if files == 0 {
        let mut file = fs_err::File::create(root.join("big.bin")).unwrap();
        let block: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for i in 0..1024u32 {
            let mut chunk = block.clone();
            chunk[..4].copy_from_slice(&i.to_le_bytes());
            std::io::Write::write_all(&mut file, &chunk).unwrap();
        }
        return;
    }
    for i in 0..files {
        let dir = root.join(format!("d{:04}", i / 100));
        if i % 100 == 0 {
            fs_err::create_dir_all(&dir).unwrap();
        }
        let size = 1024 + (i * 7919) % 7168;
        let text: String = format!("file {i}\n").repeat(size / 7 + 1);
        let path = dir.join(format!("f{i}.txt"));
        fs_err::write(&path, &text.as_bytes()[..size]).unwrap();
        if i % 50 == 0 {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    fs_err::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("d0000/f0.txt", root.join("link")).unwrap();
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

fn sh(dir: &Path, script: &str) -> Duration {
    timed(|| {
        let status = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    })
    .1
}

fn size_of(path: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

fn bench(scratch: &Path, files: usize) {
    let name = if files == 0 {
        "1 GiB file".to_owned()
    } else {
        format!("{files} files")
    };
    let workspace = scratch.join(format!("ws-{files}"));
    generate(&workspace, files);
    let changed: PathBuf = if files == 0 {
        workspace.join("big.bin")
    } else {
        workspace.join("d0000/f1.txt")
    };
    let store_dir = scratch.join(format!("store-{files}"));
    let store = SnapshotStore::open(
        &store_dir,
        &workspace,
        Rules {
            respect_gitignore: true,
            exclude: vec![],
            kept_out_of_restores: vec![],
        },
    )
    .unwrap();

    let (first, first_t) = timed(|| store.take("bench", Trigger::PreRun, None).unwrap());
    let (_, same_t) = timed(|| store.take("bench", Trigger::Manual, None).unwrap());
    if files == 0 {
        let file = fs_err::OpenOptions::new()
            .write(true)
            .open(&changed)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(file.file(), b"changed", 4096).unwrap();
    } else {
        fs_err::write(&changed, "changed\n").unwrap();
    }
    let (_, one_t) = timed(|| store.take("bench", Trigger::Manual, None).unwrap());
    let store_size = size_of(&store_dir);
    let (_, restore_t) = timed(|| store.restore("bench", &first, None, &mut |_| {}).unwrap());

    // The same tree, the same run: tar czf, then a plain git repository.
    let tar_t = sh(
        scratch,
        &format!("tar czf tree-{files}.tgz -C {} .", workspace.display()),
    );
    let tar_size = size_of(&scratch.join(format!("tree-{files}.tgz")));
    let git_t = sh(
        &workspace,
        "git init -q . && git add -A && git -c user.name=b -c user.email=b@b commit -qm bench",
    );
    let git_size = size_of(&workspace.join(".git"));

    println!("{name}:");
    println!(
        "  first snapshot      {:>9}   tar czf {:>9} ({})   git add+commit {:>9} ({})",
        ms(first_t),
        ms(tar_t),
        ratio(first_t, tar_t),
        ms(git_t),
        ratio(first_t, git_t)
    );
    println!(
        "  nothing changed     {:>9}   ({} of tar czf)",
        ms(same_t),
        ratio(same_t, tar_t)
    );
    println!(
        "  one file changed    {:>9}   ({} of tar czf)",
        ms(one_t),
        ratio(one_t, tar_t)
    );
    println!("  restore first       {:>9}", ms(restore_t));
    println!(
        "  store size          {:>9} KB   tar {:>9} KB   git {:>9} KB",
        store_size / 1024,
        tar_size / 1024,
        git_size / 1024
    );
}

fn main() {
    let mut sizes: Vec<usize> = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bench" => {}
            "big" => sizes.push(0),
            n => sizes.extend(n.parse::<usize>().ok()),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1000, 20_000, 100_000];
    }
    let scratch = tempfile::tempdir().unwrap();
    for files in sizes {
        bench(scratch.path(), files);
    }
}
