//! The audit log of a real run: what it records (a credential going in, a request refused
//! by a strict policy, the run's start and end), that an untouched log verifies, here and
//! exported to another MOAT_HOME given only the fingerprint, and that attacks on it are
//! named.

use moat_test_support::{FakeUpstream, Reply};

use crate::harness::{Out, TestEnv};

const TOKEN: &str = "ghp_audittesttoken0123456789abcdefghij01";

/// A finished run that used the `github` grant against a fake API and was refused one
/// host by its strict policy; its id.
fn audited_run(env: &TestEnv, upstream: &FakeUpstream) -> String {
    let with_upstream = |cmd: &mut std::process::Command| {
        cmd.env("MOAT_KEYRING", "file")
            .env(
                "MOAT_CONNECT_TO",
                format!("api.github.com:443:127.0.0.1:{}", upstream.port()),
            )
            .env("MOAT_EXTRA_CA_CERTS", upstream.ca_file());
    };
    let mut grant = env.moat();
    with_upstream(&mut grant);
    let out = Out::from(
        grant
            .env("GITHUB_TOKEN", TOKEN)
            .args(["grant", "github", "--no-validate"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "network:\n  policy: strict\n",
    )
    .unwrap();
    let mut run = env.moat();
    with_upstream(&mut run);
    let script = "curl -s -o /dev/null -w '%{http_code}\\n' https://api.github.com/user; \
                  curl -s -o /dev/null -w '%{http_connect}\\n' https://elsewhere.example.test/";
    let out = Out::from(
        run.args([
            "run", "--trust", "--grant", "github", "--", "sh", "-c", script,
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(out.stdout, "200\n403\n", "{out:?}");
    env.list()[0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_run_is_audited_verifies_and_names_every_attack() {
    let env = TestEnv::new();
    let upstream = FakeUpstream::start(&["api.github.com"], |_| Reply::json(200, "{}"));
    let id = audited_run(&env, &upstream);

    // What happened, in order, without the token.
    let out = env.run(&["audit", &id]);
    assert_eq!(out.code, 0, "{out:?}");
    for what in [
        "run started",
        "container started",
        "credential injected",
        "grant=github",
        "host=api.github.com",
        "request refused",
        "host=elsewhere.example.test:443",
        "run ended",
        "checkpoint",
    ] {
        assert!(out.stdout.contains(what), "{what}: {}", out.stdout);
    }
    assert!(!out.stdout.contains(TOKEN));
    let injected: serde_json::Value = serde_json::from_str(
        &env.run(&["audit", &id, "--json", "--type", "credential_injected"])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        injected[0]["data"]["headers"][0], "authorization",
        "{injected}"
    );

    let out = env.run(&["audit", "verify", &id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("verified: the audit log of"),
        "{out:?}"
    );

    // Exported, then checked on another machine with the fingerprint alone.
    let bundle = env.moat_home().parent().unwrap().join("audit-bundle.json");
    let out = env.run(&["audit", "export", &id, "-o", bundle.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    let fingerprint = out
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .to_owned();
    let elsewhere = TestEnv::new();
    let out = elsewhere.run(&["audit", "verify", bundle.to_str().unwrap()]);
    assert_eq!(out.code, 1, "no key to pin there: {out:?}");
    assert!(out.stderr.contains("hint: pass the fingerprint"), "{out:?}");
    let out = elsewhere.run(&[
        "audit",
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        &fingerprint,
    ]);
    assert_eq!(out.code, 0, "{out:?}");

    // Attacks, each named.
    let dir = env.moat_home().join("runs").join(&id);
    let log = dir.join("audit.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let attack = |text: String, expected: &str| {
        std::fs::write(&log, text).unwrap();
        let out = env.run(&["audit", "verify", &id]);
        assert_eq!(out.code, 1, "{expected}: {out:?}");
        assert!(out.stdout.contains(expected), "{expected}: {}", out.stdout);
        std::fs::write(&log, &original).unwrap();
    };
    attack(
        original.replacen("api.github.com", "api.github.co", 1),
        "was altered",
    );
    let lines: Vec<&str> = original.lines().collect();
    let without = |skip: usize| {
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| format!("{l}\n"))
            .collect::<String>()
    };
    attack(without(1), "entries were removed");
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    attack(
        swapped.join("\n") + "\n",
        "entries were removed, added or reordered",
    );
    attack(
        lines[..lines.len() - 1].join("\n") + "\n",
        "does not end with its closing checkpoint",
    );
    let network = dir.join("network.jsonl");
    let trace = std::fs::read_to_string(&network).unwrap();
    std::fs::write(&network, trace.replace("api.github.com", "api.github.co")).unwrap();
    let out = env.run(&["audit", "verify", &id]);
    assert!(out.stdout.contains("network.jsonl was altered"), "{out:?}");
    std::fs::write(&network, trace).unwrap();
    // Signed by another machine's key: not the pinned one.
    let out = env.run(&[
        "audit",
        "verify",
        &id,
        "--key",
        "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("not by the pinned key"), "{out:?}");

    // Destroying keeps nothing unless asked, and says so.
    let out = env.run(&["destroy", &id, "--keep-audit"]);
    assert_eq!(out.code, 0, "{out:?}");
    let kept = env.moat_home().join("audit").join(format!("{id}.json"));
    assert!(kept.exists(), "{out:?}");
    let out = env.run(&["audit", "verify", kept.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
}
