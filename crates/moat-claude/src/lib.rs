//! What running Claude Code in a moat container takes, as values: the command line, the
//! dependencies it implies, the onboarding state carried from the host's `~/.claude.json`,
//! and where its conversation logs live on the host and in the container.
//!
//! No I/O beyond reading what it is given: the CLI reads the host files, this crate decides
//! what the container gets.

pub mod plugins;

use std::path::{Path, PathBuf};

use moat_run::SessionId;
use serde_json::{Map, Value, json};

/// The agent's name in run records (`moat claude sessions` lists these runs).
pub const AGENT: &str = "claude";

/// Dependencies every `moat claude` image has, besides the workspace's own.
pub const IMPLIED_DEPENDENCIES: &[&str] = &["node", "git", "claude-code"];

/// The grant every `moat claude` run has, besides the configuration's and `--grant`s.
pub const IMPLIED_GRANT: &str = "anthropic";

/// The onboarding file in the user's home, host and container alike.
pub const CLAUDE_JSON: &str = ".claude.json";

/// Claude Code's user settings in the container's home (where `enabledPlugins` goes).
pub const CLAUDE_SETTINGS: &str = ".claude/settings.json";

/// Claude Code's own record of the marketplaces it knows, in the container's home.
pub const KNOWN_MARKETPLACES: &str = ".claude/plugins/known_marketplaces.json";

/// The variable that names Claude Code's read-only plugin seed directories (`:`-separated,
/// each laid out like `~/.claude/plugins`; checked with Claude Code 2.1.332).
pub const PLUGIN_SEED_VARIABLE: &str = "CLAUDE_CODE_PLUGIN_SEED_DIR";

/// The container's `~/.claude/settings.json`: the plugins it brings in, enabled.
pub fn container_settings_json(enabled_plugins: &[String]) -> Vec<u8> {
    let enabled: serde_json::Map<String, serde_json::Value> = enabled_plugins
        .iter()
        .map(|id| (id.clone(), serde_json::Value::Bool(true)))
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({ "enabledPlugins": enabled }))
        .expect("JSON serialises")
}

/// Keys of the host's `~/.claude.json` carried into the container: the account and the
/// onboarding progress, so that Claude Code does not greet every run as a first start.
/// Everything else stays on the host: API keys and their approvals (`primaryApiKey`,
/// `customApiKeyResponses`), MCP servers (which may hold tokens), per-project state
/// keyed by host paths, and `installMethod` (a host `native` install would send the
/// container looking for a binary it does not have).
pub const CARRIED_KEYS: &[&str] = &[
    "oauthAccount",
    "userID",
    "anonymousId",
    "firstStartTime",
    "numStartups",
    "lastOnboardingVersion",
    "lastReleaseNotesSeen",
    "theme",
    "hasSeenTasksHint",
    "tipsHistory",
    "sonnet45MigrationComplete",
    "opus45MigrationComplete",
    "opusProMigrationComplete",
    "thinkingMigrationComplete",
    "clientDataCache",
    "cachedGrowthBookFeatures",
];

/// Environment of every `moat claude` container. The image pins the version it was built
/// with; Claude Code's self-updater cannot replace a root-owned global install anyway.
pub const CONTAINER_ENV: &[(&str, &str)] = &[("DISABLE_AUTOUPDATER", "1")];

/// How a stdio server with a `cwd` is started, `/bin/sh -c SCRIPT CWD COMMAND ARGS...`:
/// `$0` is the directory, the rest the command.
pub const STDIO_CWD_SCRIPT: &str = r#"cd "$0" && exec "$@""#;

/// An MCP server as the container's `~/.claude.json` names it (`mcpServers.<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpServer {
    /// A remote server, reached through the run's proxy (Claude Code's MCP client honours
    /// `HTTPS_PROXY`). `headers` hold placeholders only.
    Remote {
        url: String,
        headers: Vec<(String, String)>,
    },
    /// A program Claude Code starts in the container and talks to over stdio.
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
    },
}

impl McpServer {
    /// The transport Claude Code uses for a remote URL: `sse` for a path ending in `/sse`
    /// (the old HTTP+SSE transport's usual endpoint), streamable HTTP otherwise.
    pub fn remote_transport(url: &str) -> &'static str {
        let path = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        if path.ends_with("/sse") {
            "sse"
        } else {
            "http"
        }
    }

    fn to_json(&self) -> Value {
        let pairs = |pairs: &[(String, String)]| -> Value {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        match self {
            McpServer::Remote { url, headers } => {
                let mut out = json!({"type": Self::remote_transport(url), "url": url});
                if !headers.is_empty() {
                    out["headers"] = pairs(headers);
                }
                out
            }
            McpServer::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                // Claude Code starts a stdio server in its own working directory whatever
                // the configuration says (2.1.332 ignores `cwd`): a shell changes to it
                // first, then becomes the server.
                let (command, args) = match cwd {
                    None => (command.clone(), args.clone()),
                    Some(cwd) => (
                        "/bin/sh".to_owned(),
                        ["-c", STDIO_CWD_SCRIPT, cwd, command]
                            .into_iter()
                            .map(ToOwned::to_owned)
                            .chain(args.iter().cloned())
                            .collect(),
                    ),
                };
                json!({
                    "type": "stdio",
                    "command": command,
                    "args": args,
                    "env": pairs(env),
                })
            }
        }
    }
}

/// Which conversation a run holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversation {
    /// A new one, with an ID chosen by moat (so the run knows it from the start).
    New(SessionId),
    /// The most recent one of the workspace (`--continue`).
    Continue,
    /// A given one (`--resume ID`).
    Resume(SessionId),
}

impl Conversation {
    /// The session ID known before the run starts.
    pub fn known_id(&self) -> Option<&SessionId> {
        match self {
            Conversation::New(id) | Conversation::Resume(id) => Some(id),
            Conversation::Continue => None,
        }
    }
}

/// The `claude` command line of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeCommand {
    /// `--dangerously-skip-permissions` (the container is the boundary); off with `--noyolo`.
    pub skip_permissions: bool,
    pub conversation: Conversation,
    /// `-p PROMPT`: answer and exit.
    pub print: Option<String>,
    /// Words after `--`: the first prompt of an interactive session, as one argument.
    pub initial_prompt: Vec<String>,
}

impl ClaudeCommand {
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec!["claude".to_owned()];
        if self.skip_permissions {
            argv.push("--dangerously-skip-permissions".to_owned());
        }
        match &self.conversation {
            Conversation::New(id) => argv.extend(["--session-id".to_owned(), id.to_string()]),
            Conversation::Continue => argv.push("--continue".to_owned()),
            Conversation::Resume(id) => argv.extend(["--resume".to_owned(), id.to_string()]),
        }
        if let Some(prompt) = &self.print {
            argv.extend(["-p".to_owned(), prompt.clone()]);
        }
        if !self.initial_prompt.is_empty() {
            argv.push(self.initial_prompt.join(" "));
        }
        argv
    }

    /// Whether the run needs a terminal: everything but `-p`.
    pub fn interactive(&self) -> bool {
        self.print.is_none()
    }
}

/// Claude Code's directory name for a project: its absolute path with every UTF-16 code
/// unit that is not an ASCII letter or digit replaced by `-` (`/home/u/my.app` →
/// `-home-u-my-app`; `é` → `-`, an emoji → `--`).
///
/// Claude Code cuts names longer than 200 characters and appends a hash of its own; such
/// workspaces still work in moat, but the host's `claude` looks for them elsewhere.
pub fn project_dir_name(path: &Path) -> String {
    let mut name = String::new();
    for c in path.to_string_lossy().chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else {
            name.extend(std::iter::repeat_n('-', c.len_utf16()));
        }
    }
    name
}

/// The host directory with the workspace's conversation logs: `~/.claude/projects/<name>`.
pub fn host_project_dir(home: &Path, workspace: &Path) -> PathBuf {
    home.join(".claude")
        .join("projects")
        .join(project_dir_name(workspace))
}

/// Where the container's Claude Code keeps the logs of `/workspace`.
pub fn container_project_dir() -> String {
    format!(
        "{}/.claude/projects/{}",
        moat_image::CONTAINER_HOME,
        project_dir_name(Path::new(moat_image::WORKSPACE_DIR))
    )
}

/// The host's `~/.claude.json` could not be used; the run goes on with defaults.
#[derive(Debug, thiserror::Error)]
#[error(
    "`~/.claude.json` is not a JSON object ({reason}); starting Claude Code with default settings"
)]
pub struct UnreadableClaudeJson {
    reason: String,
}

/// The container's `~/.claude.json`: the carried keys of the host's (if any), onboarding
/// marked complete, the workspace trusted, and (with `skip_permissions`) the
/// bypass-permissions warning already accepted. `api_key` is the placeholder the container
/// sees as `ANTHROPIC_API_KEY`, pre-approved so Claude Code does not ask about it.
/// `mcp_servers` become `mcpServers` (the host's own never reach the container: they may
/// hold tokens). Returns the file and, if the host's could not be read, why.
pub fn container_claude_json(
    host: Option<&[u8]>,
    skip_permissions: bool,
    api_key: Option<&str>,
    mcp_servers: &[(String, McpServer)],
) -> (Vec<u8>, Option<UnreadableClaudeJson>) {
    let mut problem = None;
    let mut out = Map::new();
    if let Some(bytes) = host {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(host)) => {
                for key in CARRIED_KEYS {
                    if let Some(value) = host.get(*key) {
                        out.insert((*key).to_owned(), value.clone());
                    }
                }
            }
            Ok(_) => {
                problem = Some(UnreadableClaudeJson {
                    reason: "not an object".into(),
                })
            }
            Err(e) => {
                problem = Some(UnreadableClaudeJson {
                    reason: format!("line {} column {}", e.line(), e.column()),
                })
            }
        }
    }
    out.entry("theme").or_insert_with(|| json!("dark"));
    out.insert("hasCompletedOnboarding".into(), json!(true));
    out.insert("autoUpdates".into(), json!(false));
    out.insert(
        "projects".into(),
        json!({
            moat_image::WORKSPACE_DIR: {
                "hasTrustDialogAccepted": true,
                "hasCompletedProjectOnboarding": true,
                "projectOnboardingSeenCount": 1,
            }
        }),
    );
    if skip_permissions {
        out.insert("bypassPermissionsModeAccepted".into(), json!(true));
    }
    if let Some(key) = api_key {
        // Claude Code remembers approved keys by their last 20 characters.
        let tail: String = {
            let chars: Vec<char> = key.chars().collect();
            chars[chars.len().saturating_sub(20)..].iter().collect()
        };
        out.insert(
            "customApiKeyResponses".into(),
            json!({ "approved": [tail], "rejected": [] }),
        );
    }
    if !mcp_servers.is_empty() {
        out.insert(
            "mcpServers".into(),
            Value::Object(
                mcp_servers
                    .iter()
                    .map(|(name, server)| (name.clone(), server.to_json()))
                    .collect(),
            ),
        );
    }
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(out)).expect("JSON values print");
    bytes.push(b'\n');
    (bytes, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::parse("ae150251-d90a-4f85-a9da-2281e8e0518d").unwrap()
    }

    #[test]
    fn command_lines() {
        let mut command = ClaudeCommand {
            skip_permissions: true,
            conversation: Conversation::New(id()),
            print: Some("explain this codebase".into()),
            initial_prompt: vec![],
        };
        assert_eq!(
            command.argv(),
            [
                "claude",
                "--dangerously-skip-permissions",
                "--session-id",
                "ae150251-d90a-4f85-a9da-2281e8e0518d",
                "-p",
                "explain this codebase"
            ]
        );
        assert!(!command.interactive());
        command.skip_permissions = false;
        command.print = None;
        command.conversation = Conversation::Continue;
        command.initial_prompt = vec!["fix".into(), "the tests".into()];
        assert_eq!(command.argv(), ["claude", "--continue", "fix the tests"]);
        assert!(command.interactive());
        command.conversation = Conversation::Resume(id());
        command.initial_prompt.clear();
        assert_eq!(
            command.argv(),
            ["claude", "--resume", "ae150251-d90a-4f85-a9da-2281e8e0518d"]
        );
    }

    #[test]
    fn project_directories_are_named_like_claude_code_names_them() {
        assert_eq!(project_dir_name(Path::new("/workspace")), "-workspace");
        assert_eq!(
            project_dir_name(Path::new("/home/u/my.app_v2/src")),
            "-home-u-my-app-v2-src"
        );
        assert_eq!(
            project_dir_name(Path::new("/a b@c~d/Ab-\u{c9}1")),
            "-a-b-c-d-Ab--1"
        );
        assert_eq!(project_dir_name(Path::new("/x\u{1f600}y")), "-x--y");
        assert_eq!(
            host_project_dir(Path::new("/home/u"), Path::new("/work/p")),
            Path::new("/home/u/.claude/projects/-work-p")
        );
        assert_eq!(
            container_project_dir(),
            "/home/moatuser/.claude/projects/-workspace"
        );
    }

    #[test]
    fn only_carried_keys_reach_the_container() {
        let host = json!({
            "oauthAccount": {"emailAddress": "u@example.com"},
            "userID": "abc",
            "numStartups": 7,
            "theme": "light",
            "primaryApiKey": "sk-ant-api03-SECRET",
            "customApiKeyResponses": {"approved": ["SECRET-TAIL"]},
            "mcpServers": {"x": {"headers": {"Authorization": "Bearer SECRET"}}},
            "installMethod": "native",
            "projects": {"/home/u/secret-project": {}},
        });
        let (bytes, problem) =
            container_claude_json(Some(host.to_string().as_bytes()), true, None, &[]);
        assert!(problem.is_none());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("secret-project"), "{text}");
        assert!(!text.contains("native"), "{text}");
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(out["oauthAccount"]["emailAddress"], "u@example.com");
        assert_eq!(out["numStartups"], 7);
        assert_eq!(out["theme"], "light");
        assert_eq!(out["hasCompletedOnboarding"], true);
        assert_eq!(out["bypassPermissionsModeAccepted"], true);
        assert_eq!(
            out["projects"]["/workspace"]["hasTrustDialogAccepted"],
            true
        );
    }

    #[test]
    fn without_a_host_file_the_defaults_still_skip_onboarding() {
        let key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789AA";
        let (bytes, problem) = container_claude_json(None, false, Some(key), &[]);
        assert!(problem.is_none());
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(out["hasCompletedOnboarding"], true);
        assert_eq!(out["theme"], "dark");
        assert!(out.get("bypassPermissionsModeAccepted").is_none());
        assert_eq!(
            out["customApiKeyResponses"]["approved"][0],
            "qrstuvwxyz0123456789AA"[2..]
        );
    }

    #[test]
    fn a_broken_host_file_is_reported_and_replaced_by_defaults() {
        let (bytes, problem) = container_claude_json(Some(b"{ not json"), true, None, &[]);
        let problem = problem.unwrap().to_string();
        assert!(problem.contains("line 1"), "{problem}");
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(out["hasCompletedOnboarding"], true);
        let (_, problem) = container_claude_json(Some(b"[1]"), true, None, &[]);
        assert!(problem.is_some());
    }

    #[test]
    fn mcp_servers_are_written_with_their_transport() {
        let servers = vec![
            (
                "notes".to_owned(),
                McpServer::Remote {
                    url: "https://notes.example.test/mcp".into(),
                    headers: vec![("X-Key".into(), "moat-mcp-notes-0123".into())],
                },
            ),
            (
                "legacy".to_owned(),
                McpServer::Remote {
                    url: "https://old.example.test/sse".into(),
                    headers: vec![],
                },
            ),
            (
                "files".to_owned(),
                McpServer::Stdio {
                    command: "node".into(),
                    args: vec!["server.js".into()],
                    env: vec![("DEBUG".into(), "1".into())],
                    cwd: Some("/workspace".into()),
                },
            ),
        ];
        let host = json!({"mcpServers": {"host-only": {"url": "https://secret.test"}}});
        let (bytes, _) =
            container_claude_json(Some(host.to_string().as_bytes()), true, None, &servers);
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            out["mcpServers"]["notes"],
            json!({"type": "http", "url": "https://notes.example.test/mcp", "headers": {"X-Key": "moat-mcp-notes-0123"}})
        );
        assert_eq!(out["mcpServers"]["legacy"]["type"], "sse");
        assert!(out["mcpServers"]["legacy"].get("headers").is_none());
        assert_eq!(
            out["mcpServers"]["files"],
            json!({"type": "stdio", "command": "/bin/sh",
                   "args": ["-c", STDIO_CWD_SCRIPT, "/workspace", "node", "server.js"],
                   "env": {"DEBUG": "1"}})
        );
        let plain = McpServer::Stdio {
            command: "srv".into(),
            args: vec!["--x".into()],
            env: vec![],
            cwd: None,
        };
        assert_eq!(
            plain.to_json(),
            json!({"type": "stdio", "command": "srv", "args": ["--x"], "env": {}})
        );
        assert!(out["mcpServers"].get("host-only").is_none());
        assert_eq!(McpServer::remote_transport("https://h/sse/?x=1"), "sse");
        assert_eq!(McpServer::remote_transport("https://h/mcp"), "http");
    }
}
