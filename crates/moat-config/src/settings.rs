//! The checked values of the configuration: what the files and flags mean once parsed,
//! shared by the per-file results and the resolved configuration.

pub use moat_home::KeyringMode;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::error::SourceLocation;
use crate::network::{HostPattern, NetworkPolicy};

/// One `dependencies` entry exactly as written, with where it was written, so the crate
/// that understands the dependency grammar can report `agent.yaml:LINE:COL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencySpec {
    pub spec: String,
    pub location: SourceLocation,
}

impl Serialize for DependencySpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.spec)
    }
}

/// Environment variables for the container, sorted by name.
///
/// `Debug` never shows values, and `Serialize` (used to print the resolved settings) hides
/// the values of names that look like they hold a secret (`*TOKEN*`, `*KEY*`, `*SECRET*`,
/// `*PASSWORD*`, ...): a printed configuration ends up in terminals, logs and bug reports.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    pub fn new() -> Self {
        EnvVars::default()
    }

    /// Set a variable, replacing an earlier value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `KEY=VALUE` strings, as a container runtime takes them.
    pub fn to_pairs(&self) -> Vec<String> {
        self.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EnvVars(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<hidden>")))
            .finish()
    }
}

impl Serialize for EnvVars {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            if looks_secret(name) {
                map.serialize_entry(name, "<redacted>")?;
            } else {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// Whether a variable name suggests its value is a credential.
pub fn looks_secret(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
        "COOKIE",
        "SESSION",
    ];
    let upper = name.to_ascii_uppercase();
    WORDS.iter().any(|word| upper.contains(word))
}

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Absolute, with symlinks resolved; it exists.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source.display(), self.target)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

/// The command a run starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Command {
    /// A string in the file: a shell command line, run with `/bin/sh -c`.
    Shell(String),
    /// A list in the file, or the words after `--`: run as is, no shell.
    Exec(Vec<String>),
}

impl Command {
    /// The process arguments.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
            Command::Exec(words) => words.clone(),
        }
    }
}

/// `network` as one file states it; unset fields fall through to the next layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSection {
    pub policy: Option<NetworkPolicy>,
    pub allow: Vec<HostPattern>,
    /// Hosts tunnelled without TLS interception (pinned certificates, non-HTTP TLS).
    pub passthrough: Vec<HostPattern>,
}

/// Workspace snapshots. Defaults: enabled, every trigger on, idle after 30 s, keep 10.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotSettings {
    pub disabled: bool,
    pub triggers: SnapshotTriggers,
    pub exclude: SnapshotExclude,
    pub retention: SnapshotRetention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotTriggers {
    pub disable_pre_run: bool,
    pub disable_git_commits: bool,
    pub disable_builds: bool,
    /// No snapshot after each agent turn (an Anthropic Messages response ending).
    pub disable_agent_turns: bool,
    pub disable_idle: bool,
    pub idle_threshold_seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotExclude {
    /// `false` (the default) means `.gitignore` patterns are applied.
    pub ignore_gitignore: bool,
    /// Extra gitignore-style patterns.
    pub additional: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotRetention {
    pub max_count: u64,
    pub delete_initial: bool,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            disabled: false,
            triggers: SnapshotTriggers {
                disable_pre_run: false,
                disable_git_commits: false,
                disable_builds: false,
                disable_agent_turns: false,
                disable_idle: false,
                idle_threshold_seconds: 30,
            },
            exclude: SnapshotExclude::default(),
            retention: SnapshotRetention {
                max_count: 10,
                delete_initial: false,
            },
        }
    }
}

/// Shell scripts run at fixed points. Each runs with `/bin/sh` in `/workspace`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hooks {
    /// Image build, as root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_build_root: Option<String>,
    /// Image build, as the container user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_build: Option<String>,
    /// Every container start, as the container user, before the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_run: Option<String>,
}

/// Resource limits as a file states them; `None` leaves the default (see
/// [`ContainerSettings`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContainerLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Processes and threads the container may have at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
    /// DNS servers; empty means the runtime's default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
}

/// A run's container limits, defaults applied: a run always has a memory and a process
/// limit, so a runaway or hostile command cannot take the host down with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSettings {
    pub memory_mb: u64,
    /// `None`: no CPU limit (the host's scheduler shares the cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    pub pids_limit: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
}

impl ContainerSettings {
    /// 8 GiB: room for Claude Code, a language server and a build, not for a leak to
    /// swallow the host.
    pub const DEFAULT_MEMORY_MB: u64 = 8192;
    /// Enough for parallel builds (each thread counts), far below what a fork bomb needs.
    pub const DEFAULT_PIDS_LIMIT: u64 = 4096;
}

/// `claude` as the workspace file states it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaudeFile {
    pub plugins: BTreeMap<String, bool>,
    pub marketplaces: BTreeMap<String, Marketplace>,
    pub sync_logs: Option<bool>,
    pub mcp: BTreeMap<String, LocalMcpServer>,
}

/// Claude Code settings for a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClaudeSettings {
    /// `"plugin@marketplace"` → enabled.
    pub plugins: BTreeMap<String, bool>,
    pub marketplaces: BTreeMap<String, Marketplace>,
    /// Share the host's Claude session logs with the container.
    pub sync_logs: bool,
    /// MCP servers that run inside the container.
    pub mcp: BTreeMap<String, LocalMcpServer>,
}

/// A plugin marketplace Claude Code should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marketplace {
    #[serde(flatten)]
    pub source: MarketplaceSource,
    /// Branch, tag or commit for git sources.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum MarketplaceSource {
    /// `owner/repo` on GitHub.
    Github { repo: String },
    /// Any git URL.
    Git { url: String },
    /// A directory on the host (absolute, exists).
    Directory { path: PathBuf },
}

impl MarketplaceSource {
    pub const WORDS: &[&str] = &["github", "git", "directory"];
}

/// An MCP server started inside the container (`claude.mcp.<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalMcpServer {
    pub command: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "EnvVars::is_empty")]
    pub env: EnvVars,
    /// The grant whose credential the server's requests get.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Working directory inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// A remote MCP server reached through moat's proxy (top-level `mcp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteMcpServer {
    pub name: String,
    /// An `https://` URL.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<McpAuth>,
}

/// The proxy puts the `grant`'s credential into `header` on requests to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpAuth {
    pub grant: String,
    pub header: String,
}

/// Download locations that replace the upstream defaults, for networks that can only
/// reach a mirror. Each is a base URL without a trailing `/`; `None` means upstream. Image
/// builds use a mirror only where the image installs what it mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mirrors {
    /// Debian's main archive in the base image's apt sources, replacing
    /// `http://deb.debian.org/debian`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debian: Option<String>,
    /// Debian's security archive in the apt sources, replacing
    /// `http://deb.debian.org/debian-security` (and `http://security.debian.org`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debian_security: Option<String>,
    /// Official Node.js builds, replacing `https://nodejs.org/dist`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Standalone Python builds, for versions Debian does not package; unset, they come
    /// from python-build-standalone's releases under `github`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// Go toolchains, replacing `https://dl.google.com/go`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<String>,
    /// Rust toolchains (rustup), replacing `https://static.rust-lang.org`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rust: Option<String>,
    /// The npm registry, replacing `https://registry.npmjs.org`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub npm: Option<String>,
    /// The Python package index, replacing `https://pypi.org/simple`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pypi: Option<String>,
    /// GitHub release downloads, replacing `https://github.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
}

/// moat's own debug logs in `$MOAT_HOME/debug/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebugSettings {
    /// Days a debug log file is kept.
    pub retention_days: u64,
}

impl Default for DebugSettings {
    fn default() -> Self {
        DebugSettings { retention_days: 14 }
    }
}

/// The host-side routing proxy that serves `ports` endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxySettings {
    pub port: u16,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings { port: 8080 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_debug_hides_every_value() {
        let env: EnvVars = [("DEBUG", "1"), ("GITHUB_TOKEN", "ghp_secret")]
            .into_iter()
            .collect();
        let debug = format!("{env:?}");
        assert_eq!(
            debug,
            r#"{"DEBUG": "<hidden>", "GITHUB_TOKEN": "<hidden>"}"#
        );
    }

    #[test]
    fn env_serialize_hides_secret_looking_values() {
        let env: EnvVars = [
            ("DEBUG", "1"),
            ("GITHUB_TOKEN", "ghp_secret"),
            ("openai_api_key", "sk-x"),
        ]
        .into_iter()
        .collect();
        let yaml = serde_saphyr::to_string(&env).unwrap();
        assert!(!yaml.contains("ghp_secret"), "{yaml}");
        assert!(!yaml.contains("sk-x"), "{yaml}");
        assert!(
            yaml.contains("DEBUG: '1'") || yaml.contains("DEBUG: \"1\""),
            "{yaml}"
        );
    }

    #[test]
    fn shell_commands_run_through_sh() {
        assert_eq!(
            Command::Shell("npm test && echo ok".into()).argv(),
            ["/bin/sh", "-c", "npm test && echo ok"]
        );
        assert_eq!(
            Command::Exec(vec!["npm".into(), "test".into()]).argv(),
            ["npm", "test"]
        );
    }
}
