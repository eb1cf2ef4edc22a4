//! `moat claude plugins list`: the plugins of every source, from a fake host `~/.claude`,
//! a workspace `.claude/settings.json` and `agent.yaml`.

use crate::harness::{Out, TestEnv};

fn write(path: std::path::PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn plugins_list_shows_every_source_and_why_a_plugin_is_off() {
    let env = TestEnv::new();
    let home = env.moat_home().join("../home");
    write(
        home.join(".claude/settings.json"),
        r#"{"enabledPlugins": {"review@tools": true, "lint@tools": ["1.2.0"], "stale@gone": true}}"#,
    );
    write(
        home.join(".claude/plugins/known_marketplaces.json"),
        r#"{"tools": {"source": {"source": "github", "repo": "acme/tools"}, "installLocation": "/x", "lastUpdated": "2026-01-01T00:00:00Z"}}"#,
    );
    write(
        home.join(".claude/plugins/installed_plugins.json"),
        r#"{"version": 2, "plugins": {"review@tools": [{"scope": "user", "version": "2.0.1", "gitCommitSha": "0123456789abcdef0123"}]}}"#,
    );
    let workspace = env.workspace();
    write(
        workspace.join(".claude/settings.json"),
        r#"{"enabledPlugins": {"lint@tools": false}}"#,
    );
    write(
        workspace.join("agent.yaml"),
        "claude:\n  plugins:\n    \"review@tools\": false\n    \"mine@custom\": true\n  \
         marketplaces:\n    custom: {source: github, repo: me/custom, ref: main}\n",
    );

    let out = env.run(&["claude", "plugins", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    let line = |id: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id}: {out:?}"))
            .to_owned()
    };
    let review = line("review@tools");
    assert!(review.contains("tools (github acme/tools)"), "{review}");
    assert!(review.contains("2.0.1 (0123456789ab)"), "{review}");
    assert!(review.contains("host=on agent.yaml=off"), "{review}");
    assert!(
        review.contains("not enabled: disabled by `claude.plugins`"),
        "{review}"
    );
    assert!(line("lint@tools").contains("host=on workspace=off"));
    assert!(line("mine@custom").ends_with("enabled"));
    assert!(line("stale@gone").contains("marketplace `gone` is not known"));
    assert!(
        out.stdout
            .contains("custom       github me/custom @ main  agent.yaml"),
        "{out:?}"
    );

    let json = env.run(&["claude", "plugins", "list", ".", "--json"]);
    assert_eq!(json.code, 0, "{json:?}");
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let enabled: Vec<&str> = report["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["enabled"] == true)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(enabled, ["mine@custom"]);

    // A broken host file is a warning naming it; the rest still counts.
    write(home.join(".claude/settings.json"), "{ broken");
    let out: Out = env.run(&["claude", "plugins", "list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("warning: ~/.claude/settings.json is not valid JSON (line 1"),
        "{out:?}"
    );
    assert!(out.stdout.contains("mine@custom"), "{out:?}");
}
