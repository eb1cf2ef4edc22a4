//! Records the git commit the binary is built from, for `moat version` and `--version`:
//! `MOAT_VERSION` is always set (the package version, then the commit and its date when
//! the source is a git checkout with git installed; the version alone otherwise, as from
//! a source tarball).

#![allow(clippy::disallowed_methods)] // a build script reads what cargo gives it

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let date = git(&["log", "-1", "--format=%cs", "HEAD"]);
    match &commit {
        Some(commit) => {
            println!("cargo:rustc-env=MOAT_GIT_COMMIT={commit}");
            if let Some(date) = &date {
                println!("cargo:rustc-env=MOAT_GIT_DATE={date}");
            }
            let line = match &date {
                Some(date) => format!("{version} ({commit} {date})"),
                None => format!("{version} ({commit})"),
            };
            println!("cargo:rustc-env=MOAT_VERSION={line}");
        }
        None => println!("cargo:rustc-env=MOAT_VERSION={version}"),
    }
    // Build again when HEAD moves: a commit or a checkout. (A worktree has its HEAD in
    // its own git dir and the branches in the common one.)
    if let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) {
        let (dir, common) = (std::path::Path::new(&dir), std::path::Path::new(&common));
        let mut watched = vec![dir.join("HEAD"), common.join("packed-refs")];
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(common.join(head));
        }
        // A path that does not exist would make cargo run this script on every build.
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
