//! Builds `moat-init` (crates/moat-init, std only) with rustc alone, statically linked,
//! into `$OUT_DIR/moat-init`, which `lib.rs` embeds and every image's build context carries.
//!
//! Why here and so: the image tag is the hash of the build context, so the bytes must be
//! the same on every build of the same source with the same compiler. rustc is
//! deterministic given the same inputs; this build gives it no input that varies: fixed
//! flags (not the user's RUSTFLAGS), no debug information, symbols stripped, and the
//! source directory remapped (panic locations would otherwise name this checkout's path).
//! A new compiler may give new bytes and so new tags: images then rebuild only their last
//! layer (`COPY moat-init`), which Docker's cache keeps everything before. Static glibc
//! (`+crt-static` on the gnu target) runs in any glibc or musl image, and in one without
//! a libc at all.
// A build script runs on the developer's machine, reads what cargo hands it in its
// environment and prints its instructions to cargo on stdout: that is its interface.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let source = manifest.join("../moat-init/src");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("moat-init");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("set by cargo");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut command = Command::new(rustc);
    command
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--crate-name",
            "moat_init",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=3",
            "-C",
            "codegen-units=1",
            "-C",
            "panic=abort",
        ])
        .args(["-C", "debuginfo=0", "-C", "strip=symbols"])
        .args(["-C", "target-feature=+crt-static"])
        .arg(format!(
            "--remap-path-prefix={}=moat-init",
            source.display()
        ))
        .arg("-o")
        .arg(&out)
        .arg(source.join("main.rs"))
        // Nothing of the user's configuration may change the bytes.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        command.arg("-C").arg({
            let mut arg = std::ffi::OsString::from("linker=");
            arg.push(linker);
            arg
        });
    }
    let output = command.output().expect("running rustc for moat-init");
    if !output.status.success() {
        panic!(
            "building moat-init (static, {target}) failed; a static build needs the C \
             library's static archive (Debian: libc6-dev):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
