//! The workspace file (`agent.yaml`, or the newer name `moat.yaml`): finding it, its schema,
//! and checking every value, with each problem reported at its line and column.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use moat_home::lexically_normal;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{ConfigError, ConfigErrors, Problems, SourceLocation};
use crate::network::{HostPattern, NetworkPolicy};
use crate::settings::{
    ClaudeFile, Command, ContainerLimits, DependencySpec, EnvVars, Hooks, LocalMcpServer,
    Marketplace, MarketplaceSource, McpAuth, Mount, NetworkSection, RemoteMcpServer,
    SnapshotSettings,
};
use crate::suggest;
use crate::values::{self, Invalid};
use crate::yaml::{self, Entries, FieldNotes, NumberOrString, StringOrList, shown};

/// The names the workspace file may have, oldest first. Both present is an error.
pub const WORKSPACE_FILE_NAMES: [&str; 2] = ["agent.yaml", "moat.yaml"];

/// Everything the workspace file says, checked. Unset fields are `None` or empty so the
/// resolver can tell "not said" from "said".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspaceConfig {
    /// The file this came from.
    pub path: PathBuf,
    pub name: Option<String>,
    pub dependencies: Vec<DependencySpec>,
    /// Deduplicated, in file order.
    pub grants: Vec<String>,
    pub env: EnvVars,
    pub mounts: Vec<Mount>,
    pub command: Option<Command>,
    pub interactive: Option<bool>,
    pub network: NetworkSection,
    /// Endpoint name → container port.
    pub ports: BTreeMap<String, u16>,
    pub snapshots: SnapshotSettings,
    pub hooks: Hooks,
    pub container: ContainerLimits,
    pub claude: ClaudeFile,
    pub mcp: Vec<RemoteMcpServer>,
    /// Paths in the workspace the run may not change, besides moat's defaults (relative,
    /// without `..`).
    pub protect: Vec<String>,
    /// Settings the file sets that this moat does not carry out yet: a run refuses them
    /// (`moat config` shows them), so none is accepted and silently ignored.
    pub not_yet: Vec<ConfigError>,
}

/// The workspace file in `workspace`, if there is one.
///
/// Errors: both names present; a `.yml` spelling that moat would otherwise not read.
pub fn find_workspace_file(workspace: &Path) -> Result<Option<PathBuf>, ConfigError> {
    let present = |name: &str| {
        let path = workspace.join(name);
        // A dangling symlink counts as present: reading it then reports the problem.
        path.symlink_metadata().is_ok().then_some(path)
    };
    let [old, new] = WORKSPACE_FILE_NAMES.map(present);
    match (old, new) {
        (Some(old), Some(new)) => Err(ConfigError::in_file(
            &new,
            format!(
                "both `{}` and `{}` are present",
                old.display(),
                new.display()
            ),
        )
        .with_hint(
            "keep one: merge the settings into `moat.yaml` (the newer name) and delete \
             `agent.yaml`, or the other way round",
        )),
        (Some(path), None) | (None, Some(path)) => Ok(Some(path)),
        (None, None) => {
            for (wrong, right) in [("moat.yml", "moat.yaml"), ("agent.yml", "agent.yaml")] {
                if let Some(path) = present(wrong) {
                    return Err(ConfigError::in_file(
                        &path,
                        format!("moat reads `{right}`, not `{wrong}`"),
                    )
                    .with_hint(format!("rename the file to `{right}`")));
                }
            }
            Ok(None)
        }
    }
}

/// A workspace file as read: where it is, its exact text, and the settings in that text.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceFile {
    pub path: PathBuf,
    pub text: String,
    pub config: WorkspaceConfig,
}

impl WorkspaceFile {
    /// The file's name (`moat.yaml` or `agent.yaml`).
    pub fn name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }
}

/// Find, read and check the workspace file. `Ok(None)` when there is none: defaults apply.
pub fn load_workspace(workspace: &Path) -> Result<Option<WorkspaceConfig>, ConfigErrors> {
    Ok(read_workspace(workspace)?.map(|file| file.config))
}

/// Find, read and check the workspace file, keeping its text. The file must be a regular
/// file: a symbolic link could make the settings change where the link points, out of
/// sight of whoever approved them.
pub fn read_workspace(workspace: &Path) -> Result<Option<WorkspaceFile>, ConfigErrors> {
    let Some(path) = find_workspace_file(workspace)? else {
        return Ok(None);
    };
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(ConfigError::in_file(&path, "the workspace file is a symbolic link")
            .with_hint("moat reads only a regular file here: replace the link with a copy of the file it points to")
            .into());
    }
    let text = crate::read_config_file(&path, moat_home::FileKind::WORKSPACE_FILE)?;
    let config = parse_workspace(&path, &text, workspace)?;
    Ok(Some(WorkspaceFile { path, text, config }))
}

/// Check the text of a workspace file. `path` names it in errors; relative mount sources
/// are resolved against `workspace` and must exist.
pub fn parse_workspace(
    path: &Path,
    text: &str,
    workspace: &Path,
) -> Result<WorkspaceConfig, ConfigErrors> {
    let raw: RawWorkspace = yaml::parse(path, text, &NOTES)?;
    let mut check = Check {
        path,
        workspace,
        problems: Problems::default(),
    };
    let config = check.workspace(raw);
    check.problems.finish(config)
}

const NOTES: FieldNotes = FieldNotes {
    example,
    unsupported,
};

/// Examples shown when a field has the wrong type.
fn example(path: &str) -> Option<&'static str> {
    Some(match path {
        "" | "name" => "name: my-project",
        "dependencies" => "dependencies: [node@22, git]",
        "dependencies[]" => "- node@22",
        "grants" => "grants: [anthropic, github]",
        "grants[]" => "- github",
        "env" => "env: {DEBUG: \"1\"}",
        "mounts" => "mounts: [\"./data:/data:ro\"]",
        "mounts[]" => "- ./data:/data:ro",
        "command" => "command: [npm, test]",
        "interactive" => "interactive: true",
        "network" => "network: {policy: strict, allow: [api.example.com]}",
        "network.policy" => "policy: strict",
        "network.allow" => "allow: [api.example.com, \"*.example.com\"]",
        "network.passthrough" => "passthrough: [\"db.example.com:5432\"]",
        "ports" => "ports: {web: 3000}",
        "snapshots" => "snapshots: {triggers: {disable_pre_run: true}}",
        "snapshots.triggers" => "triggers: {disable_pre_run: true}",
        "snapshots.exclude.additional" => "additional: [\"*.log\"]",
        "hooks" => "hooks: {post_build: npm ci}",
        "container" => "container: {memory: 4g, cpus: 2}",
        "container.memory" => "memory: 4096",
        "container.cpus" => "cpus: 2",
        "container.pids_limit" => "pids_limit: 4096",
        "protect" => "protect: [.vscode, scripts/deploy.sh]",
        "protect[]" => "- scripts/deploy.sh",
        "container.dns" => "dns: [1.1.1.1]",
        "claude" => "claude: {sync_logs: true}",
        "claude.plugins" => "plugins: {\"plugin-name@marketplace\": true}",
        "claude.marketplaces" => "marketplaces: {custom: {source: github, repo: owner/repo}}",
        "claude.mcp" => "mcp: {files: {command: npx, args: [server-files]}}",
        "mcp" => "mcp: [{name: linear, url: \"https://mcp.linear.app/sse\"}]",
        "mcp[].auth" => "auth: {grant: mcp-linear, header: Authorization}",
        p if p.starts_with("hooks.") => "post_build: npm ci",
        p if p.starts_with("claude.plugins.") => "\"plugin-name@marketplace\": true",
        p if p.starts_with("env.") || p.starts_with("claude.mcp.") && p.ends_with(".env") => {
            "DEBUG: \"1\""
        }
        p if p.starts_with("ports.") => "web: 3000",
        p if p.starts_with("snapshots.") || p == "claude.sync_logs" => "disabled: true",
        _ => return None,
    })
}

/// Fields moat's Go original had that this moat refuses rather than ignores.
fn unsupported(path: &str) -> Option<&'static str> {
    Some(match path {
        "secrets" => {
            "`secrets` (1Password and AWS SSM references) is not supported; remove it and grant \
             credentials with `moat grant` instead"
        }
        "volumes" => "`volumes` is not supported; use `mounts` with a host directory instead",
        "services" => "`services` (database sidecars) is not supported yet; remove it",
        "runtime" => "`runtime` is not supported: moat runs on Docker; remove it",
        "sandbox" => "`sandbox` is not supported; remove it",
        "tracing" => "`tracing` is not supported; remove it",
        "agent" | "version" => "this field is not used by moat; remove it",
        "codex" | "gemini" => "only the `claude` agent section is supported; remove it",
        _ => return None,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    name: Option<Spanned<String>>,
    dependencies: Option<Vec<Spanned<String>>>,
    grants: Option<Vec<Spanned<String>>>,
    env: Option<Entries<Spanned<String>>>,
    mounts: Option<Vec<Spanned<String>>>,
    command: Option<Spanned<StringOrList>>,
    interactive: Option<bool>,
    network: Option<RawNetwork>,
    ports: Option<Entries<Spanned<u64>>>,
    snapshots: Option<RawSnapshots>,
    hooks: Option<RawHooks>,
    container: Option<RawContainer>,
    claude: Option<RawClaude>,
    mcp: Option<Vec<RawRemoteMcp>>,
    protect: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub policy: Option<Spanned<String>>,
    pub allow: Option<Vec<Spanned<String>>>,
    pub passthrough: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshots {
    disabled: Option<bool>,
    triggers: Option<RawTriggers>,
    exclude: Option<RawExclude>,
    retention: Option<RawRetention>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    disable_pre_run: Option<bool>,
    disable_git_commits: Option<bool>,
    disable_builds: Option<bool>,
    disable_idle: Option<bool>,
    disable_agent_turns: Option<bool>,
    idle_threshold_seconds: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclude {
    ignore_gitignore: Option<bool>,
    additional: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    max_count: Option<Spanned<u64>>,
    delete_initial: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    post_build_root: Option<Spanned<String>>,
    post_build: Option<Spanned<String>>,
    pre_run: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    memory: Option<Spanned<NumberOrString>>,
    cpus: Option<Spanned<f64>>,
    pids_limit: Option<Spanned<u64>>,
    dns: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaude {
    plugins: Option<Entries<bool>>,
    marketplaces: Option<Entries<RawMarketplace>>,
    sync_logs: Option<bool>,
    mcp: Option<Entries<RawLocalMcp>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarketplace {
    source: Spanned<String>,
    repo: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    #[serde(rename = "ref")]
    git_ref: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalMcp {
    command: Spanned<String>,
    args: Option<Vec<String>>,
    env: Option<Entries<Spanned<String>>>,
    grant: Option<Spanned<String>>,
    cwd: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteMcp {
    name: Spanned<String>,
    url: Spanned<String>,
    auth: Option<RawMcpAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpAuth {
    grant: Spanned<String>,
    header: Spanned<String>,
}

/// Checks values of one file, collecting every problem.
pub(crate) struct Check<'a> {
    pub path: &'a Path,
    pub workspace: &'a Path,
    pub problems: Problems,
}

impl Check<'_> {
    pub(crate) fn at<T>(&self, spanned: &Spanned<T>) -> SourceLocation {
        yaml::location(self.path, spanned)
    }

    pub(crate) fn report(&mut self, spanned_at: SourceLocation, invalid: Invalid) {
        self.problems.push(invalid.at(&spanned_at));
    }

    /// `Some(value)` when `rule` accepts it, else the problem is recorded.
    pub(crate) fn accept<T, U>(
        &mut self,
        spanned: &Spanned<T>,
        rule: impl FnOnce(&T) -> Result<U, Invalid>,
    ) -> Option<U> {
        match rule(&spanned.value) {
            Ok(value) => Some(value),
            Err(invalid) => {
                let at = self.at(spanned);
                self.report(at, invalid);
                None
            }
        }
    }

    fn workspace(&mut self, raw: RawWorkspace) -> WorkspaceConfig {
        let not_yet = self.not_yet(&raw);
        let name = raw
            .name
            .and_then(|name| self.accept(&name, |n| values::check_run_name(n).map(|_| n.clone())));
        let dependencies = raw
            .dependencies
            .unwrap_or_default()
            .into_iter()
            .filter_map(|dep| {
                let location = self.at(&dep);
                self.accept(&dep, |spec| {
                    if spec.trim().is_empty() {
                        Err(Invalid::new("a dependency is empty")
                            .with_hint("write a dependency such as `node@22`, or remove the entry"))
                    } else {
                        Ok(DependencySpec {
                            spec: spec.clone(),
                            location,
                        })
                    }
                })
            })
            .collect();
        let grants = self.grants(raw.grants.unwrap_or_default());
        let env = self.env(raw.env.unwrap_or_default());
        let mounts = self.mounts(raw.mounts.unwrap_or_default());
        let command = raw.command.and_then(|c| self.command(&c));
        let network = self.network(raw.network.unwrap_or_default());
        let ports = self.ports(raw.ports.unwrap_or_default());
        let snapshots = self.snapshots(raw.snapshots.unwrap_or_default());
        let hooks = self.hooks(raw.hooks.unwrap_or_default());
        let container = self.container(raw.container.unwrap_or_default());
        let claude = self.claude(raw.claude.unwrap_or_default());
        let mcp = self.remote_mcp(raw.mcp.unwrap_or_default());
        let protect = self.protect(raw.protect.unwrap_or_default());
        WorkspaceConfig {
            path: self.path.to_owned(),
            name,
            dependencies,
            grants,
            env,
            mounts,
            command,
            interactive: raw.interactive,
            network,
            ports,
            snapshots,
            hooks,
            container,
            claude,
            mcp,
            protect,
            not_yet,
        }
    }

    /// The settings of `raw` that no run carries out yet, each with what is missing.
    fn not_yet(&self, raw: &RawWorkspace) -> Vec<ConfigError> {
        let claude = raw.claude.as_ref();
        let marketplaces = claude
            .and_then(|c| c.marketplaces.as_ref())
            .into_iter()
            .flat_map(|m| m.0.iter().map(|(_, raw)| raw));
        let set = [
            (
                raw.ports.is_some(),
                "ports",
                "moat does not route to services in a run's container yet",
            ),
            (
                raw.snapshots
                    .as_ref()
                    .and_then(|s| s.triggers.as_ref())
                    .is_some_and(|t| t.disable_builds.is_some()),
                "snapshots.triggers.disable_builds",
                "moat takes no snapshots on builds (it takes them after each agent turn: \
                 `disable_agent_turns`)",
            ),
            (
                marketplaces.clone().any(|m| {
                    m.source.value == "git"
                        && m.url
                            .as_ref()
                            .is_some_and(|u| !u.value.starts_with("https://"))
                }),
                "claude.marketplaces",
                "moat claude fetches `git` marketplaces over `https://` only (through the \
                 run's proxy and grants); use the repository's https URL",
            ),
            (
                claude.is_some_and(|c| c.sync_logs.is_some()),
                "claude.sync_logs",
                "moat claude always keeps the workspace's conversations in `~/.claude/projects`",
            ),
            (
                raw.container.as_ref().is_some_and(|c| c.dns.is_some()),
                "container.dns",
                "a run has no network of its own; its proxy resolves names on the host",
            ),
        ];
        set.into_iter()
            .filter(|(present, ..)| *present)
            .map(|(_, field, why)| not_supported(self.path, field, why))
            .collect()
    }

    /// `protect`: workspace-relative paths, each once.
    pub(crate) fn protect(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        for entry in raw {
            if let Some(path) = self.accept(&entry, |p| values::check_protected_path(p))
                && !paths.contains(&path)
            {
                paths.push(path);
            }
        }
        paths
    }

    fn grants(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut grants: Vec<String> = Vec::new();
        for grant in raw {
            if let Some(grant) = self.accept(&grant, |g| values::check_grant(g).map(|_| g.clone()))
                && !grants.contains(&grant)
            {
                grants.push(grant);
            }
        }
        grants
    }

    fn env(&mut self, raw: Entries<Spanned<String>>) -> EnvVars {
        let mut env = EnvVars::new();
        for (name, value) in raw.0 {
            let name_ok = self.accept(&name, |n| values::check_env_name(n)).is_some();
            let value_ok = self
                .accept(&value, |v| values::check_env_value(&name.value, v))
                .is_some();
            if name_ok && value_ok {
                env.insert(name.value, value.value);
            }
        }
        env
    }

    fn mounts(&mut self, raw: Vec<Spanned<String>>) -> Vec<Mount> {
        let mut mounts: Vec<Mount> = Vec::new();
        for spec in raw {
            let workspace = self.workspace;
            let Some(mount) = self.accept(&spec, |s| resolve_mount(workspace, s)) else {
                continue;
            };
            if mounts.iter().any(|m| m.target == mount.target) {
                let at = self.at(&spec);
                self.report(
                    at,
                    Invalid::new(format!(
                        "two mounts have the target `{}`",
                        shown(&mount.target)
                    ))
                    .with_hint("give each mount its own target path"),
                );
                continue;
            }
            mounts.push(mount);
        }
        mounts
    }

    fn command(&mut self, raw: &Spanned<StringOrList>) -> Option<Command> {
        self.accept(raw, |command| match command {
            StringOrList::One(line) if line.trim().is_empty() => {
                Err(Invalid::new("`command` is empty")
                    .with_hint("write a command such as `command: npm test`, or remove the field"))
            }
            StringOrList::One(line) => Ok(Command::Shell(line.clone())),
            StringOrList::List(words) if words.first().is_none_or(|w| w.trim().is_empty()) => {
                Err(Invalid::new("`command` has no program to run")
                    .with_hint("the first list item is the program, e.g. `command: [npm, test]`"))
            }
            StringOrList::List(words) => Ok(Command::Exec(words.clone())),
            StringOrList::Wrong(found) => Err(Invalid::new(format!(
                "`command` must be a string or a list of strings, not {found}"
            ))
            .with_hint("for example `command: npm test` or `command: [npm, test]`")),
        })
    }

    pub(crate) fn network(&mut self, raw: RawNetwork) -> NetworkSection {
        let policy = raw.policy.and_then(|policy| {
            self.accept(&policy, |word| {
                NetworkPolicy::parse(word)
                    .ok_or_else(|| choice_error("network policy", word, NetworkPolicy::WORDS))
            })
        });
        let allow = self.patterns(raw.allow.unwrap_or_default());
        let passthrough = self.patterns(raw.passthrough.unwrap_or_default());
        NetworkSection {
            policy,
            allow,
            passthrough,
        }
    }

    /// Host patterns, each checked at its position, without repeats.
    fn patterns(&mut self, raw: Vec<Spanned<String>>) -> Vec<HostPattern> {
        let mut patterns: Vec<HostPattern> = Vec::new();
        for pattern in raw {
            if let Some(pattern) = self.accept(&pattern, |p| Ok(HostPattern::parse(p)?))
                && !patterns.contains(&pattern)
            {
                patterns.push(pattern);
            }
        }
        patterns
    }

    fn ports(&mut self, raw: Entries<Spanned<u64>>) -> BTreeMap<String, u16> {
        let mut ports = BTreeMap::new();
        for (name, port) in raw.0 {
            let name_ok = self
                .accept(&name, |n| values::check_endpoint_name(n))
                .is_some();
            let port = self.accept(&port, |&p| {
                u16::try_from(p).ok().filter(|&p| p > 0).ok_or_else(|| {
                    Invalid::new(format!("`{p}` is not a port (1 to 65535)"))
                        .with_hint("give the port the service listens on inside the container")
                })
            });
            if let (true, Some(port)) = (name_ok, port) {
                ports.insert(name.value, port);
            }
        }
        ports
    }

    fn snapshots(&mut self, raw: RawSnapshots) -> SnapshotSettings {
        let mut settings = SnapshotSettings::default();
        if let Some(disabled) = raw.disabled {
            settings.disabled = disabled;
        }
        let triggers = raw.triggers.unwrap_or_default();
        let t = &mut settings.triggers;
        t.disable_pre_run = triggers.disable_pre_run.unwrap_or(t.disable_pre_run);
        t.disable_git_commits = triggers
            .disable_git_commits
            .unwrap_or(t.disable_git_commits);
        t.disable_builds = triggers.disable_builds.unwrap_or(t.disable_builds);
        t.disable_idle = triggers.disable_idle.unwrap_or(t.disable_idle);
        t.disable_agent_turns = triggers
            .disable_agent_turns
            .unwrap_or(t.disable_agent_turns);
        if let Some(seconds) = triggers.idle_threshold_seconds
            && let Some(seconds) = self.accept(&seconds, |&s| {
                positive("snapshots.triggers.idle_threshold_seconds", s)
            })
        {
            settings.triggers.idle_threshold_seconds = seconds;
        }
        let exclude = raw.exclude.unwrap_or_default();
        if let Some(ignore) = exclude.ignore_gitignore {
            settings.exclude.ignore_gitignore = ignore;
        }
        for pattern in exclude.additional.unwrap_or_default() {
            if let Some(pattern) = self.accept(&pattern, |p| {
                if p.trim().is_empty() {
                    Err(Invalid::new("an exclude pattern is empty")
                        .with_hint("write a gitignore-style pattern such as `*.log`, or remove it"))
                } else {
                    Ok(p.clone())
                }
            }) {
                settings.exclude.additional.push(pattern);
            }
        }
        let retention = raw.retention.unwrap_or_default();
        if let Some(count) = retention.max_count
            && let Some(count) =
                self.accept(&count, |&c| positive("snapshots.retention.max_count", c))
        {
            settings.retention.max_count = count;
        }
        if let Some(delete) = retention.delete_initial {
            settings.retention.delete_initial = delete;
        }
        settings
    }

    fn hooks(&mut self, raw: RawHooks) -> Hooks {
        let mut script = |name: &str, raw: Option<Spanned<String>>| {
            raw.and_then(|script| {
                self.accept(&script, |s| {
                    if s.trim().is_empty() {
                        Err(Invalid::new(format!("`hooks.{name}` is empty"))
                            .with_hint("write the commands to run, or remove the field"))
                    } else {
                        Ok(s.clone())
                    }
                })
            })
        };
        Hooks {
            post_build_root: script("post_build_root", raw.post_build_root),
            post_build: script("post_build", raw.post_build),
            pre_run: script("pre_run", raw.pre_run),
        }
    }

    fn container(&mut self, raw: RawContainer) -> ContainerLimits {
        let memory_mb = raw.memory.and_then(|memory| {
            self.accept(&memory, |m| match m {
                NumberOrString::Number(mb) => values::check_memory(*mb).map(|_| *mb),
                NumberOrString::Text(text) => values::parse_memory(text),
                NumberOrString::Wrong(found) => Err(Invalid::new(format!(
                    "`container.memory` must be megabytes or a size such as `4g`, not {found}"
                ))
                .with_hint("write `memory: 4096` (megabytes) or `memory: 4g`")),
            })
        });
        let cpus = raw.cpus.and_then(|cpus| {
            self.accept(&cpus, |&c| {
                if c.is_finite() && c > 0.0 {
                    Ok(c)
                } else {
                    Err(
                        Invalid::new(format!("`container.cpus` must be more than 0, not {c}"))
                            .with_hint(
                                "for example `cpus: 2` or `cpus: 0.5`; remove it for no limit",
                            ),
                    )
                }
            })
        });
        let dns = raw
            .dns
            .unwrap_or_default()
            .into_iter()
            .filter_map(|server| {
                self.accept(&server, |s| {
                    s.parse::<IpAddr>().map_err(|_| {
                        Invalid::new(format!("`{}` is not an IP address", shown(s)))
                            .with_hint("list DNS servers by address, e.g. `1.1.1.1`")
                    })
                })
            })
            .collect();
        let pids_limit = raw.pids_limit.and_then(|pids| {
            self.accept(&pids, |&p| {
                if p < 16 {
                    Err(Invalid::new(format!(
                        "`container.pids_limit` must be at least 16, not {p}"
                    ))
                    .with_hint(
                        "it bounds the processes and threads of a run, e.g. `pids_limit: 4096`",
                    ))
                } else {
                    Ok(p)
                }
            })
        });
        ContainerLimits {
            memory_mb,
            cpus,
            pids_limit,
            dns,
        }
    }

    fn claude(&mut self, raw: RawClaude) -> ClaudeFile {
        let mut plugins = BTreeMap::new();
        for (key, enabled) in raw.plugins.unwrap_or_default().0 {
            if self.accept(&key, |k| check_plugin_key(k)).is_some() {
                plugins.insert(key.value, enabled);
            }
        }
        let mut marketplaces = BTreeMap::new();
        for (name, raw) in raw.marketplaces.unwrap_or_default().0 {
            let name_ok = self
                .accept(&name, |n| values::check_simple_name("marketplace", n))
                .is_some();
            if let (true, Some(marketplace)) = (name_ok, self.marketplace(raw)) {
                marketplaces.insert(name.value, marketplace);
            }
        }
        let mut mcp = BTreeMap::new();
        for (name, raw) in raw.mcp.unwrap_or_default().0 {
            let name_ok = self
                .accept(&name, |n| values::check_simple_name("MCP server", n))
                .is_some();
            if let (true, Some(server)) = (name_ok, self.local_mcp(raw)) {
                mcp.insert(name.value, server);
            }
        }
        ClaudeFile {
            plugins,
            marketplaces,
            sync_logs: raw.sync_logs,
            mcp,
        }
    }

    fn marketplace(&mut self, raw: RawMarketplace) -> Option<Marketplace> {
        let source_at = self.at(&raw.source);
        let kind = raw.source.value.as_str();
        // Which of repo/url/path each source takes; the others are refused, not ignored.
        let (needed, needed_example) = match kind {
            "github" => ("repo", "repo: owner/repo"),
            "git" => ("url", "url: https://git.example.com/plugins.git"),
            "directory" => ("path", "path: ./plugins"),
            other => {
                self.report(
                    source_at,
                    choice_error("marketplace source", other, MarketplaceSource::WORDS),
                );
                return None;
            }
        };
        let mut ok = true;
        for (field, value) in [("repo", &raw.repo), ("url", &raw.url), ("path", &raw.path)] {
            if field != needed
                && let Some(value) = value
            {
                let at = self.at(value);
                self.report(
                    at,
                    Invalid::new(format!(
                        "a `{kind}` marketplace takes `{needed}`, not `{field}`"
                    ))
                    .with_hint(format!("remove `{field}`")),
                );
                ok = false;
            }
        }
        if kind == "directory"
            && let Some(git_ref) = &raw.git_ref
        {
            let at = self.at(git_ref);
            self.report(
                at,
                Invalid::new("`ref` applies to `github` and `git` marketplaces only")
                    .with_hint("remove `ref`"),
            );
            ok = false;
        }
        let git_ref = raw.git_ref.as_ref().and_then(|r| {
            self.accept(r, |r| {
                if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err(Invalid::new(format!("`{}` is not a git ref", shown(r)))
                        .with_hint("name a branch, tag or commit, e.g. `ref: main`"))
                } else {
                    Ok(r.clone())
                }
            })
        });
        let value = match kind {
            "github" => raw.repo.as_ref(),
            "git" => raw.url.as_ref(),
            _ => raw.path.as_ref(),
        };
        let Some(value) = value else {
            self.report(
                source_at,
                Invalid::new(format!("a `{kind}` marketplace needs `{needed}`"))
                    .with_hint(format!("add `{needed_example}`")),
            );
            return None;
        };
        let workspace = self.workspace;
        let source = self.accept(value, |v| match kind {
            "github" => check_github_repo(v).map(|_| MarketplaceSource::Github { repo: v.clone() }),
            "git" => check_git_url(v).map(|_| MarketplaceSource::Git { url: v.clone() }),
            _ => existing_path(workspace, v, "marketplace directory", true)
                .and_then(|path| link_free(workspace, v, path))
                .map(|path| MarketplaceSource::Directory { path }),
        })?;
        ok.then_some(Marketplace { source, git_ref })
    }

    fn local_mcp(&mut self, raw: RawLocalMcp) -> Option<LocalMcpServer> {
        let command = self.accept(&raw.command, |c| {
            if c.trim().is_empty() {
                Err(Invalid::new("the MCP server `command` is empty")
                    .with_hint("name the program that starts the server, e.g. `command: npx`"))
            } else {
                Ok(c.clone())
            }
        });
        let env = self.env(raw.env.unwrap_or_default());
        // A problem anywhere fails the whole file, so a dropped value is never used.
        let grant = raw
            .grant
            .and_then(|g| self.accept(&g, |g| values::check_grant(g).map(|_| g.clone())));
        let cwd = raw.cwd.and_then(|cwd| {
            self.accept(&cwd, |c| {
                if c.starts_with('/') {
                    Ok(c.clone())
                } else {
                    Err(
                        Invalid::new(format!("`cwd` `{}` is not an absolute path", shown(c)))
                            .with_hint("`cwd` is a path inside the container, e.g. `/workspace`"),
                    )
                }
            })
        });
        Some(LocalMcpServer {
            command: command?,
            args: raw.args.unwrap_or_default(),
            env,
            grant,
            cwd,
        })
    }

    fn remote_mcp(&mut self, raw: Vec<RawRemoteMcp>) -> Vec<RemoteMcpServer> {
        let mut servers = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for server in raw {
            if names.contains(&server.name.value) {
                let at = self.at(&server.name);
                self.report(
                    at,
                    Invalid::new(format!(
                        "two MCP servers are named `{}`",
                        shown(&server.name.value)
                    ))
                    .with_hint("give each server its own name"),
                );
            }
            names.push(server.name.value.clone());
            let name = self.accept(&server.name, |n| {
                values::check_simple_name("MCP server", n).map(|_| n.clone())
            });
            let url = self.accept(&server.url, |u| values::check_mcp_url(u));
            let auth = match server.auth {
                None => Some(None),
                Some(auth) => {
                    let grant =
                        self.accept(&auth.grant, |g| values::check_grant(g).map(|_| g.clone()));
                    let header = self.accept(&auth.header, |h| {
                        values::check_header_name(h).map(|_| h.clone())
                    });
                    grant
                        .zip(header)
                        .map(|(grant, header)| Some(McpAuth { grant, header }))
                }
            };
            if let (Some(name), Some(url), Some(auth)) = (name, url, auth) {
                servers.push(RemoteMcpServer { name, url, auth });
            }
        }
        servers
    }
}

/// `field` is set in `path` but not carried out: said so, with how to go on.
pub(crate) fn not_supported(path: &Path, field: &str, why: &str) -> ConfigError {
    ConfigError::in_file(path, format!("`{field}` is not supported yet: {why}")).with_hint(format!(
        "remove `{field}` from the file; moat would not act on it"
    ))
}

/// An unknown word where one of a few is expected, with the nearest as a suggestion.
pub(crate) fn choice_error(what: &str, word: &str, words: &[&str]) -> Invalid {
    let invalid = Invalid::new(format!(
        "unknown {what} `{}`: expected {}",
        shown(word),
        suggest::one_of(words)
    ));
    match suggest::closest(word, words) {
        Some(close) => invalid.with_hint(format!("did you mean `{close}`?")),
        None => invalid.with_hint(format!("use {}", suggest::one_of(words))),
    }
}

fn positive(field: &str, value: u64) -> Result<u64, Invalid> {
    if value == 0 {
        Err(Invalid::new(format!("`{field}` must be at least 1")))
    } else {
        Ok(value)
    }
}

/// Parse a mount spec and resolve its source against the workspace; it must exist.
pub(crate) fn resolve_mount(workspace: &Path, spec: &str) -> Result<Mount, Invalid> {
    let parsed = values::parse_mount(spec)?;
    let source = existing_path(workspace, parsed.source, "mount source", false)?;
    let source = mount_link_free(workspace, parsed.source, source)?;
    Ok(Mount {
        source,
        target: parsed.target.trim_end_matches('/').to_owned(),
        read_only: parsed.read_only,
    })
}

/// `resolved` (what `path`, against `base`, resolves to) when no link is on the way from
/// `base`: a marketplace directory is copied into runs, and a link in its path (which an
/// agent could put in place of a workspace directory) would make that another directory
/// of this machine.
fn link_free(base: &Path, path: &str, resolved: PathBuf) -> Result<PathBuf, Invalid> {
    let start = if Path::new(path).is_absolute() {
        PathBuf::from("/")
    } else {
        fs_err::canonicalize(base).unwrap_or_else(|_| base.to_owned())
    };
    let written = lexically_normal(&start.join(path));
    if written == resolved {
        Ok(resolved)
    } else {
        Err(Invalid::new(format!(
            "marketplace directory `{}` is reached through a symbolic link (to `{}`)",
            written.display(),
            resolved.display()
        ))
        .with_hint(
            "name the directory by its real path: moat copies a directory marketplace \
             into runs only where no link could send it elsewhere",
        ))
    }
}

/// `resolved` (what mount source `path` resolves to) unless a link is on the way and the
/// source is in the workspace, as written or resolved: a run can put a link in place of any
/// directory of the workspace, and a trusted `./data` would then mount, at the next run,
/// whatever that link points at (`~/.ssh`), the file's text unchanged.
fn mount_link_free(workspace: &Path, path: &str, resolved: PathBuf) -> Result<PathBuf, Invalid> {
    let root = fs_err::canonicalize(workspace).unwrap_or_else(|_| workspace.to_owned());
    let start = if Path::new(path).is_absolute() {
        PathBuf::from("/")
    } else {
        root.clone()
    };
    let written = lexically_normal(&start.join(path));
    if written == resolved || !(written.starts_with(&root) || resolved.starts_with(&root)) {
        return Ok(resolved);
    }
    Err(Invalid::new(format!(
        "mount source `{}` is reached through a symbolic link (to `{}`)",
        written.display(),
        resolved.display()
    ))
    .with_hint(
        "a link in the workspace can be changed by a run, and the mount would follow it: \
         name the directory by its real path, or make it a directory",
    ))
}

/// `path` (relative ones against `base`) made absolute with symlinks resolved; it must
/// exist, and be a directory when `directory` is set.
pub(crate) fn existing_path(
    base: &Path,
    path: &str,
    what: &str,
    directory: bool,
) -> Result<PathBuf, Invalid> {
    // `components()` drops the `.` parts, so `./data` shows as `<base>/data`.
    let joined: PathBuf = base.join(path).components().collect();
    match fs_err::canonicalize(&joined) {
        Ok(resolved) if directory && !resolved.is_dir() => Err(Invalid::new(format!(
            "{what} `{}` is not a directory",
            joined.display()
        ))),
        Ok(resolved) => Ok(resolved),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let hint = if Path::new(path).is_relative() {
                format!(
                    "create it, or fix the path (relative paths start at `{}`)",
                    base.display()
                )
            } else {
                "create it, or fix the path".to_owned()
            };
            Err(
                Invalid::new(format!("{what} `{}` does not exist", joined.display()))
                    .with_hint(hint),
            )
        }
        Err(error) => Err(Invalid::new(format!(
            "cannot use {what} `{}`: {error}",
            joined.display()
        ))),
    }
}

/// `plugin@marketplace`, each part letters, digits, `-` and `_`.
fn check_plugin_key(key: &str) -> Result<(), Invalid> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match key.split_once('@') {
        Some((plugin, marketplace)) if part_ok(plugin) && part_ok(marketplace) => Ok(()),
        _ => Err(
            Invalid::new(format!("`{}` is not a plugin name", shown(key))).with_hint(
                "name plugins as `plugin@marketplace`, e.g. `\"code-review@claude-plugins\": true`",
            ),
        ),
    }
}

fn check_github_repo(repo: &str) -> Result<(), Invalid> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok(()),
        _ => Err(
            Invalid::new(format!("`{}` is not a GitHub repository", shown(repo)))
                .with_hint("write it as `owner/repo`"),
        ),
    }
}

fn check_git_url(url: &str) -> Result<(), Invalid> {
    let scheme_ok = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme));
    // scp-like `git@host:path`
    let scp_ok = url
        .split_once(':')
        .is_some_and(|(host, path)| host.contains('@') && !host.contains('/') && !path.is_empty());
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
    if authority.is_some_and(|a| a.contains('@')) && !url.starts_with("ssh://") {
        // The URL itself is not repeated: it holds the secret.
        return Err(Invalid::new(
            "this git URL carries a user or password (`user:token@`), which would be written into the run's files",
        )
        .with_hint(
            "write the URL without `user:token@`; the run's grant for the host adds the credential (e.g. `grants: [github]`)",
        ));
    }
    if (scheme_ok || scp_ok) && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("`{}` is not a git URL", shown(url))).with_hint(
                "for example `https://git.example.com/plugins.git` or `git@host:org/repo.git`",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace with a `data/` directory and a `notes.txt` file for mounts.
    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("data")).unwrap();
        fs_err::write(dir.path().join("notes.txt"), "hi").unwrap();
        dir
    }

    fn parse(text: &str) -> Result<WorkspaceConfig, ConfigErrors> {
        let dir = workspace();
        parse_workspace(Path::new("agent.yaml"), text, dir.path())
    }

    fn parse_ok(text: &str) -> WorkspaceConfig {
        match parse(text) {
            Ok(config) => config,
            Err(errors) => panic!("{errors}"),
        }
    }

    #[test]
    fn settings_no_run_carries_out_yet_are_listed_not_ignored() {
        let config = parse_ok(
            "ports: {web: 3000}\nsnapshots: {disabled: true}\nmcp: []\n\
             claude: {marketplaces: {m: {source: github, repo: a/b}, s: {source: git, url: \"git@h:o/r\"}}, sync_logs: true}\ncontainer: {dns: [1.1.1.1]}\n",
        );
        let listed: Vec<String> = config.not_yet.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(listed.join("\n"), @"
        agent.yaml: `ports` is not supported yet: moat does not route to services in a run's container yet
        agent.yaml: `claude.marketplaces` is not supported yet: moat claude fetches `git` marketplaces over `https://` only (through the run's proxy and grants); use the repository's https URL
        agent.yaml: `claude.sync_logs` is not supported yet: moat claude always keeps the workspace's conversations in `~/.claude/projects`
        agent.yaml: `container.dns` is not supported yet: a run has no network of its own; its proxy resolves names on the host
        ");
        assert!(config.not_yet[0].hint().unwrap().contains("remove `ports`"));
        assert!(parse_ok("name: plain\n").not_yet.is_empty());
    }

    /// Every problem with its hint, the temporary workspace path replaced by `<ws>`.
    fn errors(text: &str) -> String {
        let dir = workspace();
        let result = parse_workspace(Path::new("agent.yaml"), text, dir.path());
        let errors = result.expect_err("the file should be refused");
        let root = fs_err::canonicalize(dir.path()).unwrap();
        errors
            .iter()
            .map(|e| match e.hint() {
                Some(hint) => format!("{e}\nhint: {hint}"),
                None => e.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace(&root.display().to_string(), "<ws>")
            .replace(&dir.path().display().to_string(), "<ws>")
    }

    /// A directory marketplace reached through a link is refused (an agent could have put
    /// the link in place of a workspace directory); `..` and real paths are fine.
    #[test]
    fn a_marketplace_directory_behind_a_link_is_refused() {
        let dir = workspace();
        std::os::unix::fs::symlink("/etc", dir.path().join("mkt")).unwrap();
        let text = |path: &str| {
            format!("claude:\n  marketplaces:\n    m: {{source: directory, path: {path}}}\n")
        };
        let parse = |path: &str| parse_workspace(Path::new("agent.yaml"), &text(path), dir.path());
        let refused = parse("./mkt").expect_err("a link is refused").to_string();
        assert!(
            refused.contains("is reached through a symbolic link (to `/etc`)"),
            "{refused}"
        );
        assert!(parse("mkt/ssl").is_err());
        assert!(parse("./data").is_ok());
        assert!(parse("data/../data").is_ok());
        assert!(
            parse("/etc").is_ok() || fs_err::canonicalize("/etc").unwrap() != Path::new("/etc")
        );
    }

    // The `agent.yaml` examples of the spec ("Running Claude Code"), verbatim.

    #[test]
    fn spec_example_grants() {
        let config = parse_ok("name: my-claude-project\n\ngrants:\n  - anthropic\n  - github\n");
        assert_eq!(config.name.as_deref(), Some("my-claude-project"));
        assert_eq!(config.grants, ["anthropic", "github"]);
    }

    #[test]
    fn spec_example_plugins() {
        let config = parse_ok("claude:\n  plugins:\n    \"plugin-name@marketplace\": true\n");
        assert_eq!(
            config.claude.plugins,
            BTreeMap::from([("plugin-name@marketplace".to_owned(), true)])
        );
    }

    #[test]
    fn spec_example_marketplaces() {
        let config = parse_ok(
            "claude:\n  marketplaces:\n    custom:\n      source: github\n      repo: owner/repo\n      ref: main\n",
        );
        assert_eq!(
            config.claude.marketplaces["custom"],
            Marketplace {
                source: MarketplaceSource::Github {
                    repo: "owner/repo".into()
                },
                git_ref: Some("main".into()),
            }
        );
    }

    #[test]
    fn spec_example_code_review() {
        let config = parse_ok(
            "name: code-review\n\ngrants:\n  - anthropic\n  - github\n\nsnapshots:\n  triggers:\n    disable_pre_run: false\n",
        );
        assert_eq!(config.name.as_deref(), Some("code-review"));
        assert!(!config.snapshots.triggers.disable_pre_run);
        assert_eq!(config.snapshots, SnapshotSettings::default());
    }

    #[test]
    fn spec_example_ssh_grant() {
        let config = parse_ok("grants:\n  - anthropic\n  - ssh:github.com\n");
        assert_eq!(config.grants, ["anthropic", "ssh:github.com"]);
    }

    #[test]
    fn empty_and_comment_only_files_are_defaults() {
        let path = PathBuf::from("agent.yaml");
        for text in ["", "# nothing yet\n", "---\n", "\n\n"] {
            let config = parse_ok(text);
            assert_eq!(
                config,
                WorkspaceConfig {
                    path: path.clone(),
                    ..WorkspaceConfig::default()
                },
                "{text:?}"
            );
        }
    }

    #[test]
    fn empty_sections_are_accepted_as_unset() {
        let config = parse_ok("env:\ngrants:\nnetwork:\nclaude:\n");
        assert!(config.env.is_empty());
        assert!(config.grants.is_empty());
    }

    #[test]
    fn every_field_parses() {
        let dir = workspace();
        let text = r#"
name: demo
dependencies:
  - node@22
  - npm:typescript@5
  - git
grants: [anthropic, github, ssh:github.com, github]
env:
  DEBUG: 1
  NODE_ENV: production
  FLAG: true
mounts:
  - ./data:/data:ro
  - notes.txt:/home/moatuser/notes.txt
command: [npm, test]
interactive: yes
network:
  policy: strict
  allow:
    - api.example.com
    - "*.corp.example:8443"
ports:
  web: 3000
  api: 8080
snapshots:
  disabled: false
  triggers:
    disable_pre_run: true
    disable_git_commits: true
    disable_builds: false
    disable_idle: false
    idle_threshold_seconds: 60
  exclude:
    ignore_gitignore: true
    additional: ["*.log", tmp/]
  retention:
    max_count: 5
    delete_initial: true
hooks:
  post_build_root: apt-get install -y tree
  post_build: |
    npm ci
    npm run build
  pre_run: echo ready
container:
  memory: 4g
  cpus: 1.5
  dns: [1.1.1.1, "2606:4700:4700::1111"]
claude:
  sync_logs: false
  plugins:
    "code-review@custom": true
    "noisy@custom": false
  marketplaces:
    custom:
      source: github
      repo: owner/repo
      ref: v1
    internal:
      source: git
      url: git@git.corp.example:tools/plugins.git
    local:
      source: directory
      path: data
  mcp:
    files:
      command: npx
      args: [-y, "@modelcontextprotocol/server-filesystem", /workspace]
      env: {LOG_LEVEL: debug}
      grant: github
      cwd: /workspace
mcp:
  - name: linear
    url: https://mcp.linear.app/sse
    auth:
      grant: mcp-linear
      header: Authorization
  - name: public
    url: https://mcp.example.com/
"#;
        let config = parse_workspace(Path::new("agent.yaml"), text, dir.path()).unwrap();
        let root = fs_err::canonicalize(dir.path()).unwrap();
        assert_eq!(config.name.as_deref(), Some("demo"));
        let deps: Vec<(&str, usize, usize)> = config
            .dependencies
            .iter()
            .map(|d| (d.spec.as_str(), d.location.line, d.location.column))
            .collect();
        assert_eq!(
            deps,
            [("node@22", 4, 5), ("npm:typescript@5", 5, 5), ("git", 6, 5)]
        );
        assert_eq!(
            config.dependencies[1].location.to_string(),
            "agent.yaml:5:5"
        );
        assert_eq!(config.grants, ["anthropic", "github", "ssh:github.com"]);
        assert_eq!(
            config.env.to_pairs(),
            ["DEBUG=1", "FLAG=true", "NODE_ENV=production"]
        );
        assert_eq!(
            config.mounts,
            [
                Mount {
                    source: root.join("data"),
                    target: "/data".into(),
                    read_only: true
                },
                Mount {
                    source: root.join("notes.txt"),
                    target: "/home/moatuser/notes.txt".into(),
                    read_only: false
                },
            ]
        );
        assert_eq!(
            config.command,
            Some(Command::Exec(vec!["npm".into(), "test".into()]))
        );
        assert_eq!(config.interactive, Some(true));
        assert_eq!(config.network.policy, Some(NetworkPolicy::Strict));
        let allow: Vec<String> = config.network.allow.iter().map(|p| p.to_string()).collect();
        assert_eq!(allow, ["api.example.com", "*.corp.example:8443"]);
        assert_eq!(
            config.ports,
            BTreeMap::from([("api".to_owned(), 8080), ("web".to_owned(), 3000)])
        );
        let s = &config.snapshots;
        assert!(!s.disabled);
        assert!(s.triggers.disable_pre_run && s.triggers.disable_git_commits);
        assert!(!s.triggers.disable_builds && !s.triggers.disable_idle);
        assert_eq!(s.triggers.idle_threshold_seconds, 60);
        assert!(s.exclude.ignore_gitignore);
        assert_eq!(s.exclude.additional, ["*.log", "tmp/"]);
        assert_eq!(s.retention.max_count, 5);
        assert!(s.retention.delete_initial);
        assert_eq!(
            config.hooks,
            Hooks {
                post_build_root: Some("apt-get install -y tree".into()),
                post_build: Some("npm ci\nnpm run build\n".into()),
                pre_run: Some("echo ready".into()),
            }
        );
        assert_eq!(config.container.memory_mb, Some(4096));
        assert_eq!(config.container.cpus, Some(1.5));
        assert_eq!(config.container.dns.len(), 2);
        let claude = &config.claude;
        assert_eq!(claude.sync_logs, Some(false));
        assert_eq!(claude.plugins.len(), 2);
        assert!(!claude.plugins["noisy@custom"]);
        assert_eq!(
            claude.marketplaces["internal"].source,
            MarketplaceSource::Git {
                url: "git@git.corp.example:tools/plugins.git".into()
            }
        );
        assert_eq!(
            claude.marketplaces["local"].source,
            MarketplaceSource::Directory {
                path: root.join("data")
            }
        );
        let files = &claude.mcp["files"];
        assert_eq!(files.command, "npx");
        assert_eq!(files.args.len(), 3);
        assert_eq!(files.env.get("LOG_LEVEL"), Some("debug"));
        assert_eq!(files.grant.as_deref(), Some("github"));
        assert_eq!(files.cwd.as_deref(), Some("/workspace"));
        assert_eq!(
            config.mcp,
            [
                RemoteMcpServer {
                    name: "linear".into(),
                    url: "https://mcp.linear.app/sse".into(),
                    auth: Some(McpAuth {
                        grant: "mcp-linear".into(),
                        header: "Authorization".into()
                    }),
                },
                RemoteMcpServer {
                    name: "public".into(),
                    url: "https://mcp.example.com".into(),
                    auth: None,
                },
            ]
        );
    }

    #[test]
    fn command_as_a_string_is_a_shell_line() {
        let config = parse_ok("command: npm test && npm run lint\n");
        assert_eq!(
            config.command,
            Some(Command::Shell("npm test && npm run lint".into()))
        );
        // Any scalar is text to a string field.
        assert_eq!(
            parse_ok("command: 42").command,
            Some(Command::Shell("42".into()))
        );
    }

    #[test]
    fn memory_in_megabytes_or_with_a_unit() {
        assert_eq!(
            parse_ok("container: {memory: 2048}").container.memory_mb,
            Some(2048)
        );
        assert_eq!(
            parse_ok("container: {memory: '512'}").container.memory_mb,
            Some(512)
        );
        assert_eq!(
            parse_ok("container: {memory: 768m}").container.memory_mb,
            Some(768)
        );
        assert_eq!(parse_ok("container: {cpus: 2}").container.cpus, Some(2.0));
    }

    #[test]
    fn unknown_field_suggests_the_nearest() {
        insta::assert_snapshot!(errors("name: x\ngrant:\n  - github\n"), @"
        agent.yaml:2:1: unknown field `grant`
        hint: did you mean `grants`?
        ");
    }

    #[test]
    fn unknown_nested_field_names_its_section() {
        insta::assert_snapshot!(errors("network:\n  policy: strict\n  alow: [a.com]\n"), @"
        agent.yaml:3:3: unknown field `alow` in `network`
        hint: did you mean `allow`?
        ");
        insta::assert_snapshot!(errors("mcp:\n  - name: a\n    urll: https://x.com\n"), @"
        agent.yaml:3:5: unknown field `urll` in `mcp[0]`
        hint: did you mean `url`?
        ");
        insta::assert_snapshot!(errors("claude:\n  marketplaces:\n    m:\n      source: github\n      repository: a/b\n"), @"
        agent.yaml:5:7: unknown field `repository` in `claude.marketplaces.m`
        hint: remove it; the fields allowed here are `source`, `repo`, `url`, `ref` or `path`
        ");
    }

    #[test]
    fn unknown_field_without_a_near_one_lists_the_fields() {
        insta::assert_snapshot!(errors("hooks:\n  before_everything: x\n"), @"
        agent.yaml:2:3: unknown field `before_everything` in `hooks`
        hint: remove it; the fields allowed here are `post_build_root`, `post_build` or `pre_run`
        ");
    }

    #[test]
    fn fields_of_the_go_original_say_they_are_unsupported() {
        insta::assert_snapshot!(errors("secrets:\n  TOKEN: op://vault/item\n"), @"
        agent.yaml:1:1: unknown field `secrets`
        hint: `secrets` (1Password and AWS SSM references) is not supported; remove it and grant credentials with `moat grant` instead
        ");
        insta::assert_snapshot!(errors("runtime: docker\n"), @"
        agent.yaml:1:1: unknown field `runtime`
        hint: `runtime` is not supported: moat runs on Docker; remove it
        ");
    }

    #[test]
    fn wrong_types_name_the_field_and_show_an_example() {
        insta::assert_snapshot!(errors("dependencies: node\n"), @"
        agent.yaml:1:15: `dependencies` must be a list
        hint: for example `dependencies: [node@22, git]`
        ");
        insta::assert_snapshot!(errors("interactive: maybe\n"), @"
        agent.yaml:1:14: `interactive` must be `true` or `false`
        hint: for example `interactive: true`
        ");
        insta::assert_snapshot!(errors("env:\n  - DEBUG=1\n"), @r#"
        agent.yaml:2:3: `env` must be a mapping of `key: value` entries
        hint: for example `env: {DEBUG: "1"}`
        "#);
        insta::assert_snapshot!(errors("name: [a, b]\n"), @"
        agent.yaml:1:7: `name` must be a string
        hint: for example `name: my-project`
        ");
        insta::assert_snapshot!(errors("ports:\n  web: http\n"), @"
        agent.yaml:2:8: `ports.web` must be a whole number
        hint: for example `web: 3000`
        ");
        insta::assert_snapshot!(errors("command: {run: x}\n"), @"
        agent.yaml:1:10: `command` must be a string or a list of strings, not a mapping
        hint: for example `command: npm test` or `command: [npm, test]`
        ");
        insta::assert_snapshot!(errors("command: [npm, [test]]\n"), @"
        agent.yaml:1:16: `command[1]` must be a string
        hint: write a string here
        ");
        insta::assert_snapshot!(errors("container:\n  memory: true\n"), @"
        agent.yaml:2:11: `container.memory` must be megabytes or a size such as `4g`, not a boolean
        hint: write `memory: 4096` (megabytes) or `memory: 4g`
        ");
        insta::assert_snapshot!(errors("grants:\n  github: true\n"), @"
        agent.yaml:2:3: `grants` must be a list
        hint: for example `grants: [anthropic, github]`
        ");
        insta::assert_snapshot!(errors("container:\n  cpus: many\n"), @"
        agent.yaml:2:9: `container.cpus` must be a number
        hint: for example `cpus: 2`
        ");
        insta::assert_snapshot!(errors("env:\n  TOKEN:\n"), @"
        agent.yaml:2:8: `env.TOKEN` has no value
        hint: write a value after the colon, or remove the entry
        ");
        insta::assert_snapshot!(errors("- name\n"), @"
        agent.yaml:1:1: the file must hold `key: value` settings
        hint: for example `name: my-project`
        ");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        insta::assert_snapshot!(errors("name: a\ngrants: [github]\nname: b\n"), @"
        agent.yaml:3:1: duplicate key `name`
        hint: `name` is already set on line 1; keep one of them
        ");
        insta::assert_snapshot!(errors("env:\n  A: 1\n  A: 2\n"), @"
        agent.yaml:3:3: duplicate key `A` in `env`
        hint: `A` is already set on line 2; keep one of them
        ");
    }

    #[test]
    fn network_allow_takes_address_ranges() {
        let config = parse_ok(
            "network:\n  allow: [\"10.0.0.0/8\", \"172.18.0.0/16:8000\", \"[fd00::/8]:443\"]\n",
        );
        let allow: Vec<String> = config.network.allow.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            allow,
            ["10.0.0.0/8", "172.18.0.0/16:8000", "[fd00::/8]:443"]
        );
        insta::assert_snapshot!(errors("network:\n  allow: [\"10.1.2.3/8\"]\n"), @"
        agent.yaml:2:11: invalid host pattern `10.1.2.3/8`: `10.1.2.3` is not the first address of a /8 range
        hint: write `10.0.0.0/8` for the /8 range that holds it, or `10.1.2.3` for that address alone
        ");
    }

    #[test]
    fn invalid_values_are_all_reported_at_their_place() {
        let text = "\
env:
  1FOO: x
  GOOD: y
  BAD-NAME: z
grants: [GitHub, ssh]
network:
  policy: strick
  allow:
    - https://api.example.com
    - \"*.*.example.com\"
mounts:
  - data
  - ./missing:/missing
  - ./data:relative
";
        insta::assert_snapshot!(errors(text), @"
        agent.yaml:2:3: `1FOO` is not a valid variable name
        hint: use letters, digits and `_`, not starting with a digit, e.g. `MY_VAR`
        agent.yaml:4:3: `BAD-NAME` is not a valid variable name
        hint: use letters, digits and `_`, not starting with a digit, e.g. `MY_VAR`
        agent.yaml:5:10: invalid grant `GitHub`: `GitHub` is not a provider name
        hint: provider names are lowercase: `github`
        agent.yaml:5:18: invalid grant `ssh`: `ssh` needs a host
        hint: name the host the key is for, e.g. `ssh:github.com`
        agent.yaml:7:11: unknown network policy `strick`: expected `permissive` or `strict`
        hint: did you mean `strict`?
        agent.yaml:9:7: invalid host pattern `https://api.example.com`: it is a URL, not a host
        hint: write only the host, for example `api.example.com`
        agent.yaml:10:7: invalid host pattern `*.*.example.com`: only a leading `*.` is allowed as a wildcard
        hint: `*.example.com` already matches subdomains at every depth, such as `a.b.example.com`
        agent.yaml:12:5: invalid mount `data`: the target is missing
        hint: write `SOURCE:TARGET` or `SOURCE:TARGET:ro`, e.g. `./data:/data:ro`
        agent.yaml:13:5: mount source `<ws>/missing` does not exist
        hint: create it, or fix the path (relative paths start at `<ws>`)
        agent.yaml:14:5: invalid mount `./data:relative`: the target `relative` is not an absolute path
        hint: the target is a path inside the container, e.g. `/data`
        ");
    }

    /// A run can replace a workspace directory with a link; the trusted `./data` mount
    /// must not follow it out of the workspace.
    #[test]
    fn a_mount_source_reached_through_a_link_is_refused() {
        let dir = workspace();
        let outside = tempfile::tempdir().unwrap();
        fs_err::remove_dir(dir.path().join("data")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("data")).unwrap();
        std::os::unix::fs::symlink("notes.txt", dir.path().join("notes-link")).unwrap();
        for spec in ["./data:/d", "./notes-link:/n"] {
            let text = format!("mounts: [\"{spec}\"]\n");
            let errors = parse_workspace(Path::new("agent.yaml"), &text, dir.path())
                .expect_err("a link on the way is refused");
            let error = errors.first();
            assert!(
                error
                    .to_string()
                    .contains("is reached through a symbolic link"),
                "{error}"
            );
            assert!(error.hint().unwrap().contains("real path"));
        }
        // A source outside the workspace may be reached through the user's own links.
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), elsewhere.path().join("l")).unwrap();
        let text = format!(
            "mounts: [\"{}:/o\"]\n",
            elsewhere.path().join("l").display()
        );
        parse_workspace(Path::new("agent.yaml"), &text, dir.path()).unwrap();
    }

    #[test]
    fn mount_problems() {
        insta::assert_snapshot!(errors("mounts: [\"/definitely/not/here:/x\"]\n"), @"
        agent.yaml:1:10: mount source `/definitely/not/here` does not exist
        hint: create it, or fix the path
        ");
        insta::assert_snapshot!(errors("mounts: [\"./data:/d\", \"./notes.txt:/d/\"]\n"), @"
        agent.yaml:1:23: two mounts have the target `/d`
        hint: give each mount its own target path
        ");
        insta::assert_snapshot!(errors("mounts: [\"./data:/d:readonly\"]\n"), @"
        agent.yaml:1:10: invalid mount `./data:/d:readonly`: unknown mode `readonly`
        hint: the mode is `ro` (read-only) or `rw` (read-write, the default)
        ");
    }

    #[test]
    fn section_value_problems() {
        insta::assert_snapshot!(errors("ports:\n  Web: 3000\n  api: 70000\n"), @"
        agent.yaml:2:3: `Web` is not a valid endpoint name
        hint: endpoint names become host names: lowercase letters, digits and `-`, e.g. `web`
        agent.yaml:3:8: `70000` is not a port (1 to 65535)
        hint: give the port the service listens on inside the container
        ");
        insta::assert_snapshot!(errors("container:\n  memory: 64\n  cpus: 0\n  dns: [dns.google]\n"), @"
        agent.yaml:2:11: memory limit 64 MB is below the minimum of 128 MB
        hint: remove `memory` for no limit, or give at least 128 (megabytes)
        agent.yaml:3:9: `container.cpus` must be more than 0, not 0
        hint: for example `cpus: 2` or `cpus: 0.5`; remove it for no limit
        agent.yaml:4:9: `dns.google` is not an IP address
        hint: list DNS servers by address, e.g. `1.1.1.1`
        ");
        insta::assert_snapshot!(errors("hooks:\n  pre_run: \"  \"\n"), @"
        agent.yaml:2:12: `hooks.pre_run` is empty
        hint: write the commands to run, or remove the field
        ");
        insta::assert_snapshot!(errors("command: []\n"), @"
        agent.yaml:1:10: `command` has no program to run
        hint: the first list item is the program, e.g. `command: [npm, test]`
        ");
        insta::assert_snapshot!(errors("name: run_1\n"), @"
        agent.yaml:1:7: `run_1` is not a valid run name: names starting with `run_` would be mistaken for run ids
        hint: choose a name without the `run_` prefix
        ");
        insta::assert_snapshot!(errors("dependencies: [\"\"]\n"), @"
        agent.yaml:1:16: a dependency is empty
        hint: write a dependency such as `node@22`, or remove the entry
        ");
        insta::assert_snapshot!(errors("snapshots:\n  retention:\n    max_count: 0\n"), @"agent.yaml:3:16: `snapshots.retention.max_count` must be at least 1");
    }

    #[test]
    fn claude_problems() {
        let text = "\
claude:
  plugins:
    just-a-name: true
  marketplaces:
    a:
      source: gihub
    b:
      source: github
    c:
      source: github
      repo: not-a-repo
      url: https://x.com/r.git
    d:
      source: directory
      path: ./nowhere
      ref: main
  mcp:
    srv:
      command: \"\"
      cwd: relative
";
        insta::assert_snapshot!(errors(text), @r#"
        agent.yaml:3:5: `just-a-name` is not a plugin name
        hint: name plugins as `plugin@marketplace`, e.g. `"code-review@claude-plugins": true`
        agent.yaml:6:15: unknown marketplace source `gihub`: expected `github`, `git` or `directory`
        hint: did you mean `github`?
        agent.yaml:8:15: a `github` marketplace needs `repo`
        hint: add `repo: owner/repo`
        agent.yaml:11:13: `not-a-repo` is not a GitHub repository
        hint: write it as `owner/repo`
        agent.yaml:12:12: a `github` marketplace takes `repo`, not `url`
        hint: remove `url`
        agent.yaml:15:13: marketplace directory `<ws>/nowhere` does not exist
        hint: create it, or fix the path (relative paths start at `<ws>`)
        agent.yaml:16:12: `ref` applies to `github` and `git` marketplaces only
        hint: remove `ref`
        agent.yaml:19:16: the MCP server `command` is empty
        hint: name the program that starts the server, e.g. `command: npx`
        agent.yaml:20:12: `cwd` `relative` is not an absolute path
        hint: `cwd` is a path inside the container, e.g. `/workspace`
        "#);
    }

    #[test]
    fn remote_mcp_problems() {
        let text = "\
mcp:
  - name: a
    url: http://insecure.example.com
  - name: a
    url: https://x.example.com
  - name: c d
    url: https://x.example.com
    auth:
      grant: MCP
      header: Bad Header
";
        insta::assert_snapshot!(errors(text), @"
        agent.yaml:3:10: `http://insecure.example.com` is neither an `https://` URL nor `http://` to this machine
        hint: use `https://`; plain HTTP only reaches a server on this machine, e.g. `http://localhost:8080/mcp`
        agent.yaml:4:11: two MCP servers are named `a`
        hint: give each server its own name
        agent.yaml:6:11: `c d` is not a valid MCP server name
        hint: use letters, digits, `-` and `_`
        agent.yaml:9:14: invalid grant `MCP`: `MCP` is not a provider name
        hint: provider names are lowercase: `mcp`
        agent.yaml:10:15: `Bad Header` is not a valid HTTP header name
        hint: for example `Authorization` or `X-API-Key`
        ");
    }

    #[test]
    fn missing_required_fields_name_the_entry() {
        let text =
            "mcp:\n  - name: b\n    url: https://x.example.com\n    auth:\n      grant: mcp-b\n";
        insta::assert_snapshot!(errors(text), @"
        agent.yaml:5:7: `mcp[0].auth` is missing the field `header`
        hint: add `header:` with a value
        ");
        insta::assert_snapshot!(errors("mcp:\n  - url: https://x.example.com\n"), @"
        agent.yaml:2:5: `mcp[0]` is missing the field `name`
        hint: add `name:` with a value
        ");
        insta::assert_snapshot!(errors("claude:\n  mcp:\n    files:\n      args: [x]\n"), @"
        agent.yaml:4:7: `claude.mcp.files` is missing the field `command`
        hint: add `command:` with a value
        ");
    }

    #[test]
    fn yaml_problems() {
        insta::assert_snapshot!(errors("name: a\n---\nname: b\n"), @"
        agent.yaml:3:1: the file holds more than one YAML document
        hint: remove the `---` separator: moat reads a single document
        ");
        insta::assert_snapshot!(errors("name:\ta\n\tgrants: []\n"), @"
        agent.yaml:1:7: invalid YAML: while scanning a plain scalar, found a tab
        hint: check the indentation and quoting at this spot
        ");
        insta::assert_snapshot!(errors("name: !custom a\n"), @"
        agent.yaml:1:15: unsupported YAML tag `!custom`
        hint: remove the tag; moat reads plain YAML values
        ");
        insta::assert_snapshot!(errors("grants: [github\n"), @"
        agent.yaml:1:9: invalid YAML: unclosed bracket '['
        hint: check the indentation and quoting at this spot
        ");
    }

    #[test]
    fn finds_either_name_and_refuses_both() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_workspace_file(dir.path()), Ok(None));
        fs_err::write(dir.path().join("agent.yaml"), "").unwrap();
        assert_eq!(
            find_workspace_file(dir.path()),
            Ok(Some(dir.path().join("agent.yaml")))
        );
        fs_err::write(dir.path().join("moat.yaml"), "").unwrap();
        let error = find_workspace_file(dir.path()).unwrap_err();
        let shown = format!("{error}\nhint: {}", error.hint().unwrap())
            .replace(&dir.path().display().to_string(), "<ws>");
        insta::assert_snapshot!(shown, @"
        <ws>/moat.yaml: both `<ws>/agent.yaml` and `<ws>/moat.yaml` are present
        hint: keep one: merge the settings into `moat.yaml` (the newer name) and delete `agent.yaml`, or the other way round
        ");
        fs_err::remove_file(dir.path().join("agent.yaml")).unwrap();
        assert_eq!(
            find_workspace_file(dir.path()),
            Ok(Some(dir.path().join("moat.yaml")))
        );
    }

    #[test]
    fn a_yml_spelling_is_not_silently_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("moat.yml"), "name: x\n").unwrap();
        let error = find_workspace_file(dir.path()).unwrap_err();
        let shown = format!("{error}\nhint: {}", error.hint().unwrap())
            .replace(&dir.path().display().to_string(), "<ws>");
        insta::assert_snapshot!(shown, @"
        <ws>/moat.yml: moat reads `moat.yaml`, not `moat.yml`
        hint: rename the file to `moat.yaml`
        ");
    }

    #[test]
    fn load_reads_the_file_and_reports_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_workspace(dir.path()), Ok(None));
        fs_err::write(dir.path().join("moat.yaml"), "name: ok\nmcp: {}\n").unwrap();
        let errors = load_workspace(dir.path()).unwrap_err();
        assert_eq!(
            errors.first().path.as_deref(),
            Some(dir.path().join("moat.yaml").as_path())
        );
        assert_eq!(
            (errors.first().line, errors.first().column),
            (Some(2), Some(6))
        );
        fs_err::write(dir.path().join("moat.yaml"), "name: ok\n").unwrap();
        let config = load_workspace(dir.path()).unwrap().unwrap();
        assert_eq!(config.name.as_deref(), Some("ok"));
        assert_eq!(config.path, dir.path().join("moat.yaml"));
    }

    #[test]
    fn unreadable_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("agent.yaml"), [0xff, 0xfe, 0x00]).unwrap();
        let errors = load_workspace(dir.path()).unwrap_err();
        assert_eq!(errors.first().message, "the file is not valid UTF-8");
        fs_err::remove_file(dir.path().join("agent.yaml")).unwrap();
        fs_err::create_dir(dir.path().join("agent.yaml")).unwrap();
        let errors = load_workspace(dir.path()).unwrap_err();
        assert_eq!(
            errors.first().message,
            "the file is a directory, not a regular file"
        );
    }

    /// A hostile repository's file is read bounded: a FIFO does not hang the load, a
    /// huge file is not read, an alias bomb is said in words.
    #[test]
    fn files_that_would_hang_or_swell_moat_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let errors = load_workspace(dir.path()).unwrap_err();
        assert_eq!(
            errors.first().message,
            "the file is a named pipe (FIFO), not a regular file"
        );
        assert!(errors.hint().unwrap().contains("only from a regular file"));

        fs_err::remove_file(&path).unwrap();
        fs_err::File::create(&path)
            .unwrap()
            .set_len(50 * 1024 * 1024)
            .unwrap();
        let errors = load_workspace(dir.path()).unwrap_err();
        assert_eq!(
            errors.first().message,
            "the file is too large: 50 MiB, where moat reads at most 1 MiB"
        );

        let bomb = format!("name: &a x\nprotect: [{}]\n", vec!["*a"; 2000].join(", "));
        fs_err::write(&path, bomb).unwrap();
        let errors = load_workspace(dir.path()).unwrap_err();
        assert_eq!(
            errors.first().message,
            "the file uses YAML aliases beyond moat's limit (2000 aliases of 1 anchor)"
        );
        assert!(
            errors
                .hint()
                .unwrap()
                .starts_with("remove the YAML aliases")
        );
    }

    #[test]
    fn a_marketplace_url_with_a_credential_is_refused_without_repeating_it() {
        let shown = errors(
            "claude:\n  marketplaces:\n    m: {source: git, url: \"https://me:glpat-secret@gitlab.example/o/p.git\"}\n",
        );
        assert!(shown.contains("carries a user or password"), "{shown}");
        assert!(shown.contains("grant"), "{shown}");
        assert!(!shown.contains("glpat-secret"), "{shown}");
    }
}
