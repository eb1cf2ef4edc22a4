//! The crate dependency rules of ARCHITECTURE.md, checked against `cargo metadata`: each
//! library's moat crates are the ones its floor allows, bollard stays in moat-container,
//! terminal crates stay in the binary, and test support never ships. Adding a forbidden
//! edge fails here, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate and the moat crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("moat-text", &[]),
    ("moat-secret", &[]),
    ("moat-hosts", &[]),
    ("moat-home", &[]),
    ("moat-image", &["moat-text"]),
    (
        "moat-config",
        &["moat-home", "moat-hosts", "moat-image", "moat-text"],
    ),
    // moat-text: the trust question's summary shows a stranger's values as text.
    ("moat-trust", &["moat-config", "moat-home", "moat-text"]),
    ("moat-audit", &["moat-home"]),
    // Snapshots drive git on the host; they know nothing of runs or Docker.
    ("moat-snapshot", &["moat-home"]),
    // The run's SSH agent: protocol and keys only, no Docker, no proxy, no store.
    ("moat-ssh", &[]),
    // The proxy never talks to Docker, and knows nothing of the CLI or the store.
    ("moat-proxy", &["moat-home", "moat-hosts", "moat-secret"]),
    // Credentials never depend on the container runtime or the proxy.
    ("moat-credentials", &["moat-home", "moat-secret"]),
    // moat-text: a build's output (a repository's hooks print it) is kept as text only.
    ("moat-container", &["moat-text"]),
    // moat-home for reading `$MOAT_HOME/providers/*.yaml` bounded (`read_bounded`), as every
    // file a user points moat at is; moat-text for the YAML limit errors in plain words.
    (
        "moat-providers",
        &[
            "moat-credentials",
            "moat-home",
            "moat-hosts",
            "moat-proxy",
            "moat-text",
        ],
    ),
    (
        "moat-run",
        &[
            "moat-audit",
            "moat-container",
            "moat-home",
            "moat-image",
            "moat-proxy",
            "moat-snapshot",
            "moat-ssh",
        ],
    ),
    ("moat-claude", &["moat-image", "moat-run"]),
    ("moat-test-support", &[]),
    // The images' entrypoint: std only, because moat-image builds it with rustc alone.
    ("moat-init", &[]),
];

/// Crates that draw on or read the terminal: the binary's business only.
const TERMINAL_CRATES: &[&str] = &[
    "clap",
    "console",
    "crossterm",
    "indicatif",
    "tracing-subscriber",
];

/// Crates that are pure (values in, values out): no async runtime, no Docker, no network.
const PURE: &[&str] = &[
    "moat-text",
    "moat-hosts",
    "moat-image",
    "moat-config",
    "moat-trust",
];
/// What a pure crate must not use.
const IO_CRATES: &[&str] = &["tokio", "bollard", "hyper", "reqwest", "rustls"];
/// Only the credential store decrypts.
const CRYPTO: &[(&str, &str)] = &[("aes-gcm", "moat-credentials")];

/// Normal (not dev, not build) dependencies of every workspace package.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (package["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// What breaks the rules, one line each.
fn violations(deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for (krate, uses) in deps {
        if krate == "moat" {
            continue;
        }
        let Some(may) = allowed.get(krate.as_str()) else {
            problems.push(format!("{krate}: not in ALLOWED; give it a floor"));
            continue;
        };
        for dep in uses {
            if dep == "moat" || dep == "moat-test-support" {
                problems.push(format!("{krate} -> {dep}: never a normal dependency"));
            } else if dep.starts_with("moat-") && !may.contains(&dep.as_str()) {
                problems.push(format!("{krate} -> {dep}: not allowed by its floor"));
            } else if dep == "bollard" && krate != "moat-container" {
                problems.push(format!(
                    "{krate} -> bollard: only moat-container talks to Docker"
                ));
            } else if TERMINAL_CRATES.contains(&dep.as_str()) {
                problems.push(format!(
                    "{krate} -> {dep}: only the binary uses the terminal"
                ));
            } else if PURE.contains(&krate.as_str()) && IO_CRATES.contains(&dep.as_str()) {
                problems.push(format!("{krate} -> {dep}: a pure crate does no I/O"));
            } else if let Some((_, owner)) = CRYPTO.iter().find(|(c, _)| c == dep)
                && krate != owner
            {
                problems.push(format!("{krate} -> {dep}: only {owner} decrypts"));
            }
        }
    }
    problems
}

#[test]
fn crates_depend_only_on_what_their_floor_allows() {
    let deps = dependencies();
    assert!(deps.contains_key("moat-proxy"), "{deps:?}");
    let problems = violations(&deps);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_forbidden_edge_is_named() {
    let mut deps = dependencies();
    deps.get_mut("moat-proxy")
        .unwrap()
        .insert("moat-container".into());
    deps.get_mut("moat-credentials")
        .unwrap()
        .insert("bollard".into());
    deps.get_mut("moat-run").unwrap().insert("clap".into());
    deps.get_mut("moat-image").unwrap().insert("tokio".into());
    deps.get_mut("moat-proxy").unwrap().insert("aes-gcm".into());
    let problems = violations(&deps);
    assert_eq!(
        problems,
        [
            "moat-credentials -> bollard: only moat-container talks to Docker",
            "moat-image -> tokio: a pure crate does no I/O",
            "moat-proxy -> aes-gcm: only moat-credentials decrypts",
            "moat-proxy -> moat-container: not allowed by its floor",
            "moat-run -> clap: only the binary uses the terminal",
        ]
    );
}
