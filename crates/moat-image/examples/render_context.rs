//! Write the build context of a spec to a directory and print its tag, to build it with
//! `docker build` by hand (see `scripts/verify-image.sh`).
//!
//! `render_context OUT_DIR [--uid N] [--gid N] [--base IMAGE] [--ca PEM_FILE]...
//!  [--node-mirror URL] [--python-mirror URL] [--go-mirror URL] [--rust-mirror URL]
//!  [--debian-mirror URL] [--debian-security-mirror URL] [--npm-registry URL]
//!  [--pypi-index URL] [--github-mirror URL]
//!  [--post-build-root SCRIPT] [--post-build SCRIPT] [--pre-run SCRIPT] DEPENDENCY...`

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // a program run by hand: its output is the point, its settings come from its environment

use std::process::ExitCode;

use moat_image::{ExtraCa, Hooks, ImageSpec, Mirrors, ResolvedDependencies};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(tag) => {
            println!("{tag}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut args = args.into_iter();
    let out = args
        .next()
        .ok_or("usage: render_context OUT_DIR [options] DEPENDENCY...")?;
    let (mut uid, mut gid) = (1000, 1000);
    let mut base = None;
    let mut pem = Vec::new();
    let mut mirrors = Mirrors::default();
    let mut hooks = Hooks::default();
    let mut deps = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("`{arg}` needs a value"));
        match arg.as_str() {
            "--uid" => uid = value()?.parse().map_err(|e| format!("--uid: {e}"))?,
            "--gid" => gid = value()?.parse().map_err(|e| format!("--gid: {e}"))?,
            "--base" => base = Some(value()?),
            "--ca" => {
                let path = value()?;
                let bytes = std::fs::read(&path).map_err(|e| format!("`{path}`: {e}"))?;
                pem.extend(bytes);
                pem.push(b'\n');
            }
            "--node-mirror" => mirrors.node = value()?,
            "--python-mirror" => mirrors.python = Some(value()?),
            "--go-mirror" => mirrors.go = value()?,
            "--rust-mirror" => mirrors.rust = value()?,
            "--debian-mirror" => mirrors.debian = value()?,
            "--debian-security-mirror" => mirrors.debian_security = value()?,
            "--npm-registry" => mirrors.npm = value()?,
            "--pypi-index" => mirrors.pypi = value()?,
            "--github-mirror" => mirrors.github = value()?,
            "--post-build-root" => hooks.post_build_root = Some(value()?),
            "--post-build" => hooks.post_build = Some(value()?),
            "--pre-run" => hooks.pre_run = Some(value()?),
            _ => deps.push(arg),
        }
    }
    let dependencies = ResolvedDependencies::parse_all(&deps)
        .map_err(|e| format!("{e}\nhint: {}", e.hint().unwrap_or_default()))?;
    let extra_ca = if pem.is_empty() {
        None
    } else {
        Some(ExtraCa::from_pem(&pem).map_err(|e| e.to_string())?)
    };
    let mut spec = ImageSpec::new("debian:bookworm-slim", uid, gid)
        .with_dependencies(dependencies)
        .with_extra_ca(extra_ca)
        .with_hooks(hooks)
        .with_mirrors(mirrors);
    if let Some(base) = base {
        spec = spec.with_base_image(base);
    }
    let plan = moat_image::plan(&spec);
    std::fs::create_dir_all(&out).map_err(|e| format!("`{out}`: {e}"))?;
    tar::Archive::new(&plan.context[..])
        .unpack(&out)
        .map_err(|e| format!("unpacking into `{out}`: {e}"))?;
    Ok(plan.tag)
}
