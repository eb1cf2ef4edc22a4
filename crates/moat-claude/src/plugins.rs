//! Which Claude Code plugins a workspace's runs would have, and why: the host's choices
//! (`~/.claude/settings.json` `enabledPlugins`, the marketplaces of
//! `~/.claude/plugins/known_marketplaces.json`, the versions and commits of
//! `~/.claude/plugins/installed_plugins.json`), then the workspace's
//! `.claude/settings.json`, then `claude.plugins` and `claude.marketplaces` of the
//! workspace file, each overriding the one before.
//!
//! Pure: the CLI reads the files (bounded) and hands their bytes in. A file that is not
//! what Claude Code writes is a warning naming it, never an error: the host's settings
//! are the user's, and a run must not fail over them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Where a plugin setting or a marketplace came from, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `~/.claude/settings.json`, `~/.claude/plugins/known_marketplaces.json`.
    Host,
    /// The workspace's `.claude/settings.json`.
    Workspace,
    /// `claude.plugins` / `claude.marketplaces` of `moat.yaml` or `agent.yaml`.
    #[serde(rename = "agent.yaml")]
    AgentYaml,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Host => "host",
            Origin::Workspace => "workspace",
            Origin::AgentYaml => "agent.yaml",
        }
    }

    fn place(self) -> &'static str {
        match self {
            Origin::Host => "`~/.claude/settings.json`",
            Origin::Workspace => "the workspace's `.claude/settings.json`",
            Origin::AgentYaml => "`claude.plugins`",
        }
    }
}

/// The files and settings the answer is made of. `None`: the file does not exist.
#[derive(Debug, Default)]
pub struct PluginInputs<'a> {
    pub host_settings: Option<&'a [u8]>,
    pub host_known_marketplaces: Option<&'a [u8]>,
    pub host_installed_plugins: Option<&'a [u8]>,
    pub workspace_settings: Option<&'a [u8]>,
    /// `claude.plugins`: `"plugin@marketplace"` → enabled.
    pub plugins: &'a [(String, bool)],
    /// `claude.marketplaces`: name → its source as the user reads it (`github owner/repo`).
    pub marketplaces: &'a [(String, String)],
    /// The workspace's host path: a plugin installed for one project (`scope: project` or
    /// `local`, with its `projectPath`) counts only for that project.
    pub workspace_path: Option<&'a str>,
}

/// One setting of one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginSetting {
    pub origin: Origin,
    pub enabled: bool,
    /// Versions the host pinned (`enabledPlugins` values may be a list of versions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// A plugin as a run would see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginRow {
    /// `name@marketplace`.
    pub id: String,
    pub name: String,
    pub marketplace: String,
    /// Where the marketplace is, if any source knows it.
    pub marketplace_source: Option<String>,
    /// The version the host installed, and its git commit where the host records one.
    pub version: Option<String>,
    pub commit: Option<String>,
    pub enabled: bool,
    /// Why not, when not enabled.
    pub reason: Option<String>,
    /// Every source that says something of it, weakest first.
    pub settings: Vec<PluginSetting>,
    /// Where the host installed it (`installPath` in `installed_plugins.json`).
    #[serde(skip)]
    pub install_path: Option<String>,
    /// Its directory in a `directory` marketplace, relative to the marketplace's root, by
    /// the marketplace's listing (where Claude Code loads such a plugin from).
    #[serde(skip)]
    pub listed_dir: Option<String>,
}

/// A marketplace a run would know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketplaceRow {
    pub name: String,
    pub source: String,
    pub origin: Origin,
    /// Where the host keeps it (`installLocation` in `known_marketplaces.json`), for a
    /// marketplace the host added.
    #[serde(skip)]
    pub install_location: Option<String>,
    /// When the host last updated it (`lastUpdated`).
    #[serde(skip)]
    pub last_updated: Option<String>,
    /// Its source as Claude Code records it (`{"source": "github", "repo": ...}`).
    #[serde(skip)]
    pub source_json: Value,
}

/// The answer: plugins by ID, marketplaces by name, and what could not be read.
#[derive(Debug, Default, Serialize)]
pub struct PluginReport {
    pub plugins: Vec<PluginRow>,
    pub marketplaces: Vec<MarketplaceRow>,
    pub warnings: Vec<String>,
}

/// Resolve every plugin of every source.
pub fn resolve_plugins(inputs: &PluginInputs<'_>) -> PluginReport {
    let mut report = PluginReport::default();
    let mut marketplaces: BTreeMap<String, MarketplaceRow> = BTreeMap::new();
    let mut settings: BTreeMap<String, Vec<PluginSetting>> = BTreeMap::new();

    let host_settings = object(
        inputs.host_settings,
        "~/.claude/settings.json",
        &mut report.warnings,
    );
    let known = object(
        inputs.host_known_marketplaces,
        "~/.claude/plugins/known_marketplaces.json",
        &mut report.warnings,
    );
    let installed = object(
        inputs.host_installed_plugins,
        "~/.claude/plugins/installed_plugins.json",
        &mut report.warnings,
    );
    let workspace = object(
        inputs.workspace_settings,
        ".claude/settings.json",
        &mut report.warnings,
    );

    if let Some(known) = &known {
        for (name, entry) in known {
            add_marketplace(&mut marketplaces, name, &entry["source"], Origin::Host);
            if let Some(row) = marketplaces.get_mut(name) {
                let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
                row.install_location = text("installLocation");
                row.last_updated = text("lastUpdated");
            }
        }
    }
    for (origin, file) in [
        (Origin::Host, &host_settings),
        (Origin::Workspace, &workspace),
    ] {
        let Some(file) = file else { continue };
        if let Some(extra) = file
            .get("extraKnownMarketplaces")
            .and_then(Value::as_object)
        {
            for (name, entry) in extra {
                add_marketplace(&mut marketplaces, name, &entry["source"], origin);
            }
        }
        if let Some(enabled) = file.get("enabledPlugins").and_then(Value::as_object) {
            for (id, value) in enabled {
                let setting = match value {
                    Value::Bool(on) => PluginSetting {
                        origin,
                        enabled: *on,
                        versions: Vec::new(),
                    },
                    Value::Array(items) => PluginSetting {
                        origin,
                        enabled: !items.is_empty(),
                        versions: items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                    },
                    _ => {
                        report.warnings.push(format!(
                            "{}: `enabledPlugins.{id}` is neither true, false nor a list of \
                             versions; ignored",
                            file_name(origin)
                        ));
                        continue;
                    }
                };
                settings.entry(id.clone()).or_default().push(setting);
            }
        }
    }
    for (name, source) in inputs.marketplaces {
        marketplaces.insert(
            name.clone(),
            MarketplaceRow {
                name: name.clone(),
                source: source.clone(),
                origin: Origin::AgentYaml,
                install_location: None,
                last_updated: None,
                source_json: Value::Null,
            },
        );
    }
    for (id, enabled) in inputs.plugins {
        settings.entry(id.clone()).or_default().push(PluginSetting {
            origin: Origin::AgentYaml,
            enabled: *enabled,
            versions: Vec::new(),
        });
    }

    for (id, settings) in settings {
        let (name, marketplace) = match id.rsplit_once('@') {
            Some((name, marketplace)) => (name.to_owned(), marketplace.to_owned()),
            None => (id.clone(), String::new()),
        };
        let last = settings.last().expect("at least one setting");
        let marketplace_row = marketplaces.get(&marketplace);
        let (version, commit, install_path) = installed
            .as_ref()
            .and_then(|i| i.get("plugins"))
            .and_then(|p| p.get(&id))
            .and_then(Value::as_array)
            .and_then(|entries| {
                entries
                    .iter()
                    .find(|entry| match entry.get("scope").and_then(Value::as_str) {
                        None | Some("user") => true,
                        Some(_) => {
                            inputs.workspace_path.is_some()
                                && entry.get("projectPath").and_then(Value::as_str)
                                    == inputs.workspace_path
                        }
                    })
            })
            .map(|entry| {
                let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
                (text("version"), text("gitCommitSha"), text("installPath"))
            })
            .unwrap_or_default();
        // The workspace's `.claude/settings.json` comes with the repository and no trust
        // question: it may not turn on what the user turned off (`claude.plugins`, which
        // is trusted, may).
        let host_off = settings
            .iter()
            .any(|s| s.origin == Origin::Host && !s.enabled);
        let reason = if !last.enabled {
            Some(format!("disabled by {}", last.origin.place()))
        } else if last.origin == Origin::Workspace && host_off {
            Some(
                "disabled by `~/.claude/settings.json` (the workspace's `.claude/settings.json` \
                 cannot turn on what you turned off; `claude.plugins` can)"
                    .to_owned(),
            )
        } else if marketplace.is_empty() {
            Some("no marketplace: plugins are named `plugin@marketplace`".to_owned())
        } else if marketplace_row.is_none() {
            Some(format!(
                "marketplace `{marketplace}` is not known: add it under `claude.marketplaces`"
            ))
        } else {
            None
        };
        report.plugins.push(PluginRow {
            id: id.clone(),
            name,
            marketplace,
            marketplace_source: marketplace_row.map(|m| m.source.clone()),
            version,
            commit,
            enabled: reason.is_none(),
            reason,
            settings,
            install_path,
            listed_dir: None,
        });
    }
    report.marketplaces = marketplaces.into_values().collect();
    report
}

fn file_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Workspace => ".claude/settings.json",
        _ => "~/.claude/settings.json",
    }
}

fn add_marketplace(
    marketplaces: &mut BTreeMap<String, MarketplaceRow>,
    name: &str,
    source: &Value,
    origin: Origin,
) {
    // The host naming a marketplace again (`extraKnownMarketplaces`) keeps where the host
    // installed it; another source's entry replaces the host's and with it the location
    // (a workspace never makes a host directory part of a run).
    let (install_location, last_updated) = match marketplaces.get(name) {
        Some(known) if origin == Origin::Host && known.origin == Origin::Host => {
            (known.install_location.clone(), known.last_updated.clone())
        }
        _ => (None, None),
    };
    marketplaces.insert(
        name.to_owned(),
        MarketplaceRow {
            name: name.to_owned(),
            source: describe_source(source),
            origin,
            install_location,
            last_updated,
            source_json: without_credentials(source),
        },
    );
}

/// A marketplace source with any `user:password@` taken out of its URLs: a git source
/// may carry a token there, and the source goes into the container.
fn without_credentials(source: &Value) -> Value {
    let mut source = source.clone();
    if let Some(object) = source.as_object_mut() {
        for value in object.values_mut() {
            if let Some(text) = value.as_str()
                && let Some((scheme, rest)) = text.split_once("://")
                && let Some((userinfo, host)) = rest.split_once('@')
                && !userinfo.contains('/')
            {
                *value = Value::String(format!("{scheme}://{host}"));
            }
        }
    }
    source
}

/// A marketplace source as Claude Code records it, for reading: `github owner/repo`,
/// `git URL`, `directory PATH`.
pub fn describe_source(source: &Value) -> String {
    let kind = source
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let detail = ["repo", "url", "path", "package"]
        .iter()
        .find_map(|key| source.get(*key).and_then(Value::as_str));
    let mut text = match detail {
        Some(detail) => format!("{kind} {detail}"),
        None => kind.to_owned(),
    };
    if let Some(git_ref) = source.get("ref").and_then(Value::as_str) {
        text.push_str(&format!(" @ {git_ref}"));
    }
    text
}

/// The JSON object in `bytes`; anything else is a warning naming `name`.
fn object(
    bytes: Option<&[u8]>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes?) {
        Ok(Value::Object(map)) => Some(map),
        Ok(_) => {
            warnings.push(format!(
                "{name} is not a JSON object; its plugin settings are ignored"
            ));
            None
        }
        Err(e) => {
            warnings.push(format!(
                "{name} is not valid JSON (line {} column {}); its plugin settings are ignored",
                e.line(),
                e.column()
            ));
            None
        }
    }
}

/// What a run gets of the enabled plugins: copies of what the host installed, laid out
/// as Claude Code's `CLAUDE_CODE_PLUGIN_SEED_DIR` wants (like `~/.claude/plugins`), and
/// why the others cannot come.
///
/// Only a marketplace the host added (`claude plugin marketplace add`, recorded in its
/// `known_marketplaces.json`) and a plugin the host installed (`installed_plugins.json`)
/// are brought in, from where the host keeps them: nothing is fetched, and a workspace
/// file cannot name a host directory to be copied into the container.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PluginSeed {
    /// `known_marketplaces.json` of the seed.
    pub known_marketplaces: Vec<u8>,
    /// Host directories and where their copies go in the seed (`marketplaces/NAME`,
    /// `cache/MARKETPLACE/PLUGIN/VERSION`).
    pub trees: Vec<(String, String)>,
    /// The plugins brought in (`name@marketplace`), for `enabledPlugins`.
    pub enabled: Vec<String>,
    /// Enabled plugins that cannot come, with why; and whether `claude.plugins` (rather
    /// than Claude Code's own settings) enabled each.
    pub missing: Vec<(String, String, bool)>,
}

/// The seed for `report`'s enabled plugins, to be seen by Claude Code at `seed_root`;
/// `copyable` says whether a host directory may be copied (the caller's rule: under
/// `~/.claude/plugins`, and there).
pub fn plugin_seed(
    report: &PluginReport,
    seed_root: &str,
    copyable: impl Fn(&str) -> bool,
) -> PluginSeed {
    let mut seed = PluginSeed::default();
    let mut known = serde_json::Map::new();
    for plugin in report.plugins.iter().filter(|p| p.enabled) {
        let by_agent_yaml = plugin
            .settings
            .last()
            .is_some_and(|s| s.origin == Origin::AgentYaml);
        let marketplace = report
            .marketplaces
            .iter()
            .find(|m| m.name == plugin.marketplace);
        // The host's own marketplaces, and those moat fetched for the run (a trusted
        // `claude.marketplaces` entry, or a host one whose files are not here): never a
        // workspace file's, which comes with the repository unasked.
        let host_marketplace = marketplace
            .filter(|m| m.origin != Origin::Workspace)
            .and_then(|m| m.install_location.as_ref().map(|l| (m, l)));
        let Some((marketplace, location)) = host_marketplace else {
            seed.missing.push((
                plugin.id.clone(),
                format!(
                    "marketplace `{}` is not one this machine's Claude Code added (moat brings in only those: `claude plugin marketplace add` it here)",
                    plugin.marketplace
                ),
                by_agent_yaml,
            ));
            continue;
        };
        let Some(path) = &plugin.install_path else {
            seed.missing.push((
                plugin.id.clone(),
                format!(
                    "it is not installed on this machine (`claude plugin install {}` here, then moat brings it in)",
                    plugin.id
                ),
                by_agent_yaml,
            ));
            continue;
        };
        // A directory marketplace is a directory of this machine, often a repository with
        // more in it than plugins: only its listing and the enabled plugins come, each where
        // the listing puts it (Claude Code loads them from there).
        let directory = marketplace.source_json["source"] == "directory";
        let listed_dir = plugin
            .listed_dir
            .as_deref()
            .filter(|d| d.split('/').all(safe_component) && !d.starts_with(".claude-plugin"));
        if directory && listed_dir.is_none() {
            seed.missing.push((
                plugin.id.clone(),
                format!(
                    "the directory marketplace `{}` does not list it in a directory of its own",
                    plugin.marketplace
                ),
                by_agent_yaml,
            ));
            continue;
        }
        if let Some(source) = [location, path].into_iter().find(|s| !copyable(s.as_str())) {
            seed.missing.push((
                plugin.id.clone(),
                format!(
                    "`{source}` is not a directory under ~/.claude/plugins, the only place moat copies plugins from"
                ),
                by_agent_yaml,
            ));
            continue;
        }
        // The version Claude Code files the plugin under: the one recorded (installed,
        // or named by the fetched marketplace), else the installed directory's name.
        let version = plugin
            .version
            .as_deref()
            .filter(|v| safe_component(v))
            .or_else(|| {
                std::path::Path::new(path)
                    .file_name()
                    .and_then(|v| v.to_str())
                    .filter(|v| safe_component(v))
            })
            .map_or_else(|| "unknown".to_owned(), str::to_owned);
        if !safe_component(&plugin.name) || !safe_component(&plugin.marketplace) {
            seed.missing.push((
                plugin.id.clone(),
                "its name is not a plain file name".into(),
                by_agent_yaml,
            ));
            continue;
        }
        if !known.contains_key(&marketplace.name) {
            let copy = format!("{seed_root}/marketplaces/{}", marketplace.name);
            // A directory marketplace's entry names the copy, not this machine's path.
            let source = if directory {
                serde_json::json!({"source": "directory", "path": copy})
            } else {
                marketplace.source_json.clone()
            };
            // Claude Code 2.1.332 registers a seed's marketplace only with all three
            // fields (without them it skips the entry without a word).
            known.insert(
                marketplace.name.clone(),
                serde_json::json!({
                    "autoUpdate": false,
                    "source": source,
                    "installLocation": copy,
                    "lastUpdated": marketplace.last_updated.as_deref().unwrap_or("1970-01-01T00:00:00.000Z"),
                }),
            );
            seed.trees.push(if directory {
                (
                    format!("{location}/.claude-plugin"),
                    format!("marketplaces/{}/.claude-plugin", marketplace.name),
                )
            } else {
                (
                    location.clone(),
                    format!("marketplaces/{}", marketplace.name),
                )
            });
        }
        seed.trees.push((
            path.clone(),
            format!("cache/{}/{}/{version}", plugin.marketplace, plugin.name),
        ));
        if let (true, Some(dir)) = (directory, listed_dir) {
            seed.trees.push((
                path.clone(),
                format!("marketplaces/{}/{dir}", marketplace.name),
            ));
        }
        seed.enabled.push(plugin.id.clone());
    }
    seed.known_marketplaces =
        serde_json::to_vec_pretty(&Value::Object(known)).expect("JSON serialises");
    seed
}

/// Where plugin `plugin` lives in a marketplace's repository, by its
/// `.claude-plugin/marketplace.json`: the directory relative to the repository's root
/// (`./plugins/hello` → `plugins/hello`) and the version the entry names. A plugin whose
/// source is elsewhere (another repository, a URL) is an error saying so: moat fetches
/// marketplaces, and brings in the plugins they hold.
pub fn marketplace_plugin(
    marketplace_json: &[u8],
    plugin: &str,
) -> Result<(String, Option<String>), String> {
    let json: Value = serde_json::from_slice(marketplace_json)
        .map_err(|e| format!("its `.claude-plugin/marketplace.json` is not valid JSON: {e}"))?;
    let entry = json
        .get("plugins")
        .and_then(Value::as_array)
        .and_then(|plugins| {
            plugins
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(plugin))
        })
        .ok_or_else(|| {
            format!("its `.claude-plugin/marketplace.json` lists no plugin `{plugin}`")
        })?;
    // It names a directory and is shown: one plain path component, or none.
    let version = entry
        .get("version")
        .and_then(Value::as_str)
        .filter(|v| safe_component(v))
        .map(str::to_owned);
    let root = json
        .pointer("/metadata/pluginRoot")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(source) = entry.get("source").and_then(Value::as_str) else {
        return Err(format!(
            "its source is {}, outside the marketplace's repository: moat brings in plugins the marketplace holds",
            entry
                .get("source")
                .map_or_else(|| "missing".to_owned(), describe_source)
        ));
    };
    let joined = if source.starts_with("./") || root.is_empty() {
        source.to_owned()
    } else {
        format!("{root}/{source}")
    };
    let parts: Vec<&str> = joined
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if joined.starts_with('/') || parts.is_empty() || parts.iter().any(|p| !safe_component(p)) {
        return Err(format!(
            "its source `{source}` is not a directory inside the marketplace's repository"
        ));
    }
    Ok((parts.join("/"), version))
}

/// A name that is one path component: no separators, not `.` or `..`.
fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_holds_what_the_host_installed_and_says_why_the_rest_cannot_come() {
        let host = br#"{"enabledPlugins": {"review@tools": true, "lint@tools": true, "extra@more": true}}"#;
        let known = br#"{"tools": {"source": {"source": "github", "repo": "acme/tools"}, "installLocation": "/h/.claude/plugins/marketplaces/tools"}}"#;
        let installed = br#"{"version": 2, "plugins": {"review@tools": [{"version": "2.0.1", "installPath": "/h/.claude/plugins/cache/tools/review/2.0.1"}]}}"#;
        let workspace = br#"{"extraKnownMarketplaces": {"more": {"source": {"source": "directory", "path": "/home/me/.ssh"}}}}"#;
        let plugins = [("lint@tools".to_owned(), true)];
        let report = resolve_plugins(&PluginInputs {
            host_settings: Some(host),
            host_known_marketplaces: Some(known),
            host_installed_plugins: Some(installed),
            workspace_settings: Some(workspace),
            plugins: &plugins,
            marketplaces: &[],
            workspace_path: None,
        });
        let seed = plugin_seed(&report, "/seed", |p| p.starts_with("/h/.claude/plugins/"));
        assert_eq!(seed.enabled, ["review@tools"]);
        assert_eq!(
            seed.trees,
            [
                (
                    "/h/.claude/plugins/marketplaces/tools".to_owned(),
                    "marketplaces/tools".to_owned()
                ),
                (
                    "/h/.claude/plugins/cache/tools/review/2.0.1".to_owned(),
                    "cache/tools/review/2.0.1".to_owned()
                ),
            ]
        );
        let known: Value = serde_json::from_slice(&seed.known_marketplaces).unwrap();
        assert_eq!(known["tools"]["source"]["repo"], "acme/tools");
        assert_eq!(
            known["tools"]["installLocation"],
            "/seed/marketplaces/tools"
        );
        assert_eq!(known["tools"]["autoUpdate"], false);
        // A workspace's marketplace never makes a host directory part of the run.
        let missing: Vec<_> = seed
            .missing
            .iter()
            .map(|(id, _, by)| (id.as_str(), *by))
            .collect();
        assert_eq!(missing, [("extra@more", false), ("lint@tools", true)]);
        assert!(seed.trees.iter().all(|(from, _)| !from.contains(".ssh")));
        // What the caller may not copy (outside ~/.claude/plugins, or gone) cannot come.
        let seed = plugin_seed(&report, "/seed", |p| p.ends_with("/marketplaces/tools"));
        assert!(seed.enabled.is_empty() && seed.trees.is_empty());
        assert!(seed.missing.iter().any(|(id, why, _)| id == "review@tools"
            && why.contains("/h/.claude/plugins/cache/tools/review/2.0.1")));
    }

    /// A directory marketplace (`claude plugin marketplace add ~/src/my-plugins`) is a
    /// directory of this machine: only its listing and its listed, enabled plugins come,
    /// and the container's entry names the copy.
    #[test]
    fn a_directory_marketplace_brings_its_listing_and_plugins_only() {
        let host = br#"{"enabledPlugins": {"p@local": true}}"#;
        let known = br#"{"local": {"source": {"source": "directory", "path": "/src/my-plugins"}, "installLocation": "/src/my-plugins"}}"#;
        let installed = br#"{"version": 2, "plugins": {"p@local": [{"version": "1.0.0", "installPath": "/h/.claude/plugins/cache/local/p/1.0.0"}]}}"#;
        let report = resolve_plugins(&PluginInputs {
            host_settings: Some(host),
            host_known_marketplaces: Some(known),
            host_installed_plugins: Some(installed),
            ..PluginInputs::default()
        });
        // Not listed (the caller reads the listing): it cannot come.
        let seed = plugin_seed(&report, "/seed", |_| true);
        assert!(seed.enabled.is_empty());
        assert!(seed.missing[0].1.contains("does not list it"), "{seed:?}");
        let mut report = report;
        report.plugins[0].listed_dir = Some("plugins/p".into());
        let seed = plugin_seed(&report, "/seed", |_| true);
        assert_eq!(seed.enabled, ["p@local"]);
        assert_eq!(
            seed.trees,
            [
                (
                    "/src/my-plugins/.claude-plugin".to_owned(),
                    "marketplaces/local/.claude-plugin".to_owned()
                ),
                (
                    "/h/.claude/plugins/cache/local/p/1.0.0".to_owned(),
                    "cache/local/p/1.0.0".to_owned()
                ),
                (
                    "/h/.claude/plugins/cache/local/p/1.0.0".to_owned(),
                    "marketplaces/local/plugins/p".to_owned()
                ),
            ]
        );
        let known: Value = serde_json::from_slice(&seed.known_marketplaces).unwrap();
        assert_eq!(
            known["local"]["source"],
            serde_json::json!({"source": "directory", "path": "/seed/marketplaces/local"})
        );
        assert_eq!(
            known["local"]["installLocation"],
            "/seed/marketplaces/local"
        );
    }

    #[test]
    fn a_plugin_installed_for_another_project_is_not_this_ones() {
        let host = br#"{"enabledPlugins": {"p@m": true}}"#;
        let known = br#"{"m": {"source": {"source": "github", "repo": "a/m"}, "installLocation": "/h/.claude/plugins/marketplaces/m"}}"#;
        let installed = br#"{"version": 2, "plugins": {"p@m": [{"scope": "project", "projectPath": "/src/other", "version": "1", "installPath": "/h/.claude/plugins/cache/m/p/1"}]}}"#;
        let inputs = |workspace| PluginInputs {
            host_settings: Some(host),
            host_known_marketplaces: Some(known),
            host_installed_plugins: Some(installed),
            workspace_path: workspace,
            ..PluginInputs::default()
        };
        assert_eq!(
            resolve_plugins(&inputs(Some("/src/mine"))).plugins[0].install_path,
            None
        );
        assert_eq!(
            resolve_plugins(&inputs(Some("/src/other"))).plugins[0]
                .install_path
                .as_deref(),
            Some("/h/.claude/plugins/cache/m/p/1")
        );
    }

    #[test]
    fn a_workspace_cannot_turn_on_what_the_host_turned_off_and_tokens_stay_out() {
        let host = br#"{"enabledPlugins": {"hooks@tools": false}, "extraKnownMarketplaces": {"tools": {"source": {"source": "git", "url": "https://user:ghp_secret@git.example/tools.git"}}}}"#;
        let known = br#"{"tools": {"source": {"source": "git", "url": "https://user:ghp_secret@git.example/tools.git"}, "installLocation": "/h/.claude/plugins/marketplaces/tools"}}"#;
        let workspace = br#"{"enabledPlugins": {"hooks@tools": true}}"#;
        let report = resolve_plugins(&PluginInputs {
            host_settings: Some(host),
            host_known_marketplaces: Some(known),
            workspace_settings: Some(workspace),
            ..PluginInputs::default()
        });
        let row = &report.plugins[0];
        assert!(!row.enabled, "{row:?}");
        assert!(
            row.reason.as_deref().unwrap().contains("cannot turn on"),
            "{row:?}"
        );
        let tools = &report.marketplaces[0];
        assert_eq!(
            tools.install_location.as_deref(),
            Some("/h/.claude/plugins/marketplaces/tools"),
            "the host naming it again keeps its location"
        );
        assert_eq!(tools.source_json["url"], "https://git.example/tools.git");
        // `claude.plugins` may.
        let plugins = [("hooks@tools".to_owned(), true)];
        let report = resolve_plugins(&PluginInputs {
            host_settings: Some(host),
            host_known_marketplaces: Some(known),
            workspace_settings: Some(workspace),
            plugins: &plugins,
            ..PluginInputs::default()
        });
        assert!(report.plugins[0].enabled);
    }

    #[test]
    fn host_then_workspace_then_agent_yaml() {
        let host = br#"{"enabledPlugins": {"review@tools": true, "lint@tools": ["1.2.0"], "old@gone": true, "off@tools": false}}"#;
        let known = br#"{"tools": {"source": {"source": "github", "repo": "acme/tools"}, "installLocation": "/h/.claude/plugins/marketplaces/tools"}}"#;
        let installed = br#"{"version": 2, "plugins": {"review@tools": [{"version": "2.0.1", "gitCommitSha": "0123abcd"}]}}"#;
        let workspace = br#"{"enabledPlugins": {"lint@tools": false, "extra@more": true}, "extraKnownMarketplaces": {"more": {"source": {"source": "git", "url": "https://git.example/more.git"}}}}"#;
        let plugins = [
            ("review@tools".to_owned(), false),
            ("mine@custom".to_owned(), true),
        ];
        let marketplaces = vec![("custom".to_owned(), "github me/custom @ main".to_owned())];
        let report = resolve_plugins(&PluginInputs {
            host_settings: Some(host),
            host_known_marketplaces: Some(known),
            host_installed_plugins: Some(installed),
            workspace_settings: Some(workspace),
            plugins: &plugins,
            marketplaces: &marketplaces,
            workspace_path: None,
        });
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let row = |id: &str| report.plugins.iter().find(|p| p.id == id).unwrap();

        let review = row("review@tools");
        assert!(!review.enabled);
        assert_eq!(
            review.reason.as_deref(),
            Some("disabled by `claude.plugins`")
        );
        assert_eq!(review.version.as_deref(), Some("2.0.1"));
        assert_eq!(review.commit.as_deref(), Some("0123abcd"));
        assert_eq!(
            review.marketplace_source.as_deref(),
            Some("github acme/tools")
        );
        assert_eq!(
            review.settings.iter().map(|s| s.origin).collect::<Vec<_>>(),
            [Origin::Host, Origin::AgentYaml]
        );

        let lint = row("lint@tools");
        assert!(!lint.enabled);
        assert_eq!(lint.settings[0].versions, ["1.2.0"]);
        assert!(
            lint.reason.as_deref().unwrap().contains("workspace"),
            "{lint:?}"
        );

        assert!(row("extra@more").enabled);
        assert!(row("mine@custom").enabled);
        assert_eq!(
            row("mine@custom").marketplace_source.as_deref(),
            Some("github me/custom @ main")
        );
        let gone = row("old@gone");
        assert!(!gone.enabled);
        assert!(
            gone.reason
                .as_deref()
                .unwrap()
                .contains("`gone` is not known")
        );
        assert_eq!(
            row("off@tools").reason.as_deref(),
            Some("disabled by `~/.claude/settings.json`")
        );
        let names: Vec<&str> = report
            .marketplaces
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["custom", "more", "tools"]);
    }

    #[test]
    fn malformed_host_files_are_warnings_naming_them() {
        let report = resolve_plugins(&PluginInputs {
            host_settings: Some(b"{ not json"),
            host_known_marketplaces: Some(b"[1, 2]"),
            ..PluginInputs::default()
        });
        assert!(report.plugins.is_empty());
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(
            report.warnings[0].starts_with("~/.claude/settings.json is not valid JSON (line 1")
        );
        assert!(report.warnings[1].contains("known_marketplaces.json is not a JSON object"));
    }

    #[test]
    fn a_marketplace_names_where_its_plugins_are() {
        let json = br#"{"name": "m", "plugins": [
            {"name": "hello", "source": "./plugins/hello", "version": "1.2.0"},
            {"name": "bare", "source": "bare"},
            {"name": "away", "source": {"source": "github", "repo": "a/b"}},
            {"name": "up", "source": "../../etc"}],
            "metadata": {"pluginRoot": "./extra"}}"#;
        assert_eq!(
            marketplace_plugin(json, "hello").unwrap(),
            ("plugins/hello".to_owned(), Some("1.2.0".to_owned()))
        );
        assert_eq!(marketplace_plugin(json, "bare").unwrap().0, "extra/bare");
        assert!(
            marketplace_plugin(json, "away")
                .unwrap_err()
                .contains("github a/b")
        );
        assert!(
            marketplace_plugin(json, "up")
                .unwrap_err()
                .contains("not a directory inside")
        );
        assert!(
            marketplace_plugin(json, "none")
                .unwrap_err()
                .contains("lists no plugin")
        );
        assert!(
            marketplace_plugin(b"[", "x")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
