//! What a workspace configuration asks for, in the words a user decides on: the
//! credentials it grants, what it mounts from the host, what it runs and as whom, what it
//! installs, where its runs may connect, and which variables it sets.

use std::fmt::Write as _;
use std::path::Path;

use moat_config::{Command, NetworkPolicy, WorkspaceConfig};

/// One thing the file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryItem {
    /// What kind of thing: `grants`, `mounts`, `hook post_build_root`, ...
    pub what: String,
    /// The values, one per line.
    pub lines: Vec<String>,
}

/// Everything a workspace file asks for, most consequential first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub items: Vec<SummaryItem>,
}

impl Summary {
    /// The summary of `config`, read from a file in `workspace` (absolute, resolved).
    pub fn of(config: &WorkspaceConfig, workspace: &Path) -> Self {
        let mut items = Vec::new();
        let mut add = |what: &str, lines: Vec<String>| {
            if !lines.is_empty() {
                items.push(SummaryItem {
                    what: what.to_owned(),
                    lines,
                });
            }
        };
        // An MCP server's `auth.grant` is a credential going to that server's host: it is
        // listed with the grants, where a reader looks for credentials.
        add(
            "grants (credentials the proxy injects)",
            config
                .grants
                .iter()
                .cloned()
                .chain(config.mcp.iter().filter_map(|m| {
                    let auth = m.auth.as_ref()?;
                    Some(format!(
                        "{} -> `{}` header of requests to MCP server {} ({})",
                        auth.grant, auth.header, m.name, m.url
                    ))
                }))
                .collect(),
        );
        add(
            "mounts",
            config
                .mounts
                .iter()
                .map(|m| {
                    let mode = if m.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    };
                    let place = if m.source.starts_with(workspace) {
                        "in the workspace"
                    } else {
                        "OUTSIDE the workspace"
                    };
                    format!("{} -> {} ({mode}, {place})", m.source.display(), m.target)
                })
                .collect(),
        );
        let hooks = [
            (
                "hook post_build_root (image build, as root, on the build's network: not through the proxy)",
                &config.hooks.post_build_root,
            ),
            (
                "hook post_build (image build, as the container user, on the build's network: not through the proxy)",
                &config.hooks.post_build,
            ),
            (
                "hook pre_run (every run, before the command)",
                &config.hooks.pre_run,
            ),
        ];
        for (what, script) in hooks {
            if let Some(script) = script {
                add(what, script.lines().map(str::to_owned).collect());
            }
        }
        add(
            "dependencies (installed into the image)",
            config.dependencies.iter().map(|d| d.spec.clone()).collect(),
        );
        let mut network = Vec::new();
        if let Some(policy) = config.network.policy {
            network.push(format!(
                "policy: {}",
                match policy {
                    NetworkPolicy::Permissive => "permissive (every public host)",
                    NetworkPolicy::Strict => "strict",
                }
            ));
        }
        if !config.network.allow.is_empty() {
            network.push(format!("allow: {}", join(&config.network.allow)));
        }
        if !config.network.passthrough.is_empty() {
            network.push(format!(
                "passthrough (not inspected): {}",
                join(&config.network.passthrough)
            ));
        }
        add("network", network);
        add(
            "env (names; values are not shown)",
            config.env.iter().map(|(k, _)| k.to_owned()).collect(),
        );
        if let Some(command) = &config.command {
            add(
                "command",
                vec![match command {
                    Command::Shell(line) => line.clone(),
                    Command::Exec(words) => words.join(" "),
                }],
            );
        }
        add(
            "remote MCP servers",
            config
                .mcp
                .iter()
                .map(|m| {
                    let mut line = match &m.auth {
                        Some(auth) => {
                            format!("{}: {} (with the {} credential)", m.name, m.url, auth.grant)
                        }
                        None => format!("{}: {}", m.name, m.url),
                    };
                    if moat_config::local_mcp_url(&m.url).is_some() {
                        line.push_str(
                            " -- a port of THIS MACHINE: the run can reach whatever listens there",
                        );
                    }
                    line
                })
                .collect(),
        );
        add(
            "Claude Code MCP servers (run in the container)",
            config
                .claude
                .mcp
                .iter()
                .map(|(name, server)| {
                    let mut line = format!("{name}: {}", server.command);
                    for arg in &server.args {
                        line.push(' ');
                        line.push_str(arg);
                    }
                    if let Some(grant) = &server.grant {
                        let _ = write!(line, " (with the {grant} credential)");
                    }
                    line
                })
                .collect(),
        );
        add(
            "Claude Code plugins",
            config
                .claude
                .plugins
                .iter()
                .map(|(name, on)| format!("{name}: {}", if *on { "on" } else { "off" }))
                .collect(),
        );
        add(
            "Claude Code marketplaces",
            config
                .claude
                .marketplaces
                .iter()
                .map(|(name, m)| {
                    let source = match &m.source {
                        moat_config::MarketplaceSource::Github { repo } => format!("github {repo}"),
                        moat_config::MarketplaceSource::Git { url } => format!("git {url}"),
                        moat_config::MarketplaceSource::Directory { path } => {
                            format!("directory {}", path.display())
                        }
                    };
                    format!("{name}: {source}")
                })
                .collect(),
        );
        let mut limits = Vec::new();
        if let Some(mb) = config.container.memory_mb {
            limits.push(format!("memory: {mb} MB"));
        }
        if let Some(cpus) = config.container.cpus {
            limits.push(format!("cpus: {cpus}"));
        }
        if let Some(pids) = config.container.pids_limit {
            limits.push(format!("pids_limit: {pids}"));
        }
        add("container limits", limits);
        add(
            "ports",
            config
                .ports
                .iter()
                .map(|(name, port)| format!("{name}: {port}"))
                .collect(),
        );
        if config.snapshots.disabled {
            add("snapshots", vec!["disabled".to_owned()]);
        }
        add("protected paths (added)", config.protect.clone());
        Summary { items }
    }

    /// The summary as indented text, one block per item; a file that asks for nothing
    /// says so. Every value is shown [`moat_text::escaped`]: the file may be a stranger's,
    /// and a carriage return or an escape sequence in a hook must not redraw the summary
    /// the user decides on.
    pub fn render(&self) -> String {
        if self.items.is_empty() {
            return "  nothing beyond moat's defaults\n".to_owned();
        }
        let mut out = String::new();
        for item in &self.items {
            let _ = writeln!(out, "  {}:", item.what);
            for line in &item.lines {
                let _ = writeln!(out, "      {}", moat_text::escaped(line));
            }
        }
        out
    }
}

fn join(patterns: &[moat_config::HostPattern]) -> String {
    patterns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(yaml: &str) -> String {
        let ws = tempfile::tempdir().unwrap();
        let ws = fs_err::canonicalize(ws.path()).unwrap();
        fs_err::create_dir(ws.join("data")).unwrap();
        let config = moat_config::parse_workspace(&ws.join("moat.yaml"), yaml, &ws)
            .unwrap_or_else(|e| panic!("{e}"));
        Summary::of(&config, &ws)
            .render()
            .replace(&ws.display().to_string(), "<ws>")
    }

    #[test]
    fn a_hostile_file_shows_every_risky_request() {
        insta::assert_snapshot!(summary(
            "grants: [github]\n\
             mounts: [\"/:/host:ro\", \"./data:/data\"]\n\
             hooks:\n  post_build_root: |\n    cp /bin/sh /usr/local/bin/rootsh\n    chmod u+s /usr/local/bin/rootsh\n\
             dependencies: [node@22]\n\
             network:\n  policy: permissive\n  allow: [\"10.0.0.5\"]\n\
             env:\n  GH_TOKEN: stolen\n"
        ), @"
          grants (credentials the proxy injects):
              github
          mounts:
              / -> /host (read-only, OUTSIDE the workspace)
              <ws>/data -> /data (read-write, in the workspace)
          hook post_build_root (image build, as root, on the build's network: not through the proxy):
              cp /bin/sh /usr/local/bin/rootsh
              chmod u+s /usr/local/bin/rootsh
          dependencies (installed into the image):
              node@22
          network:
              policy: permissive (every public host)
              allow: 10.0.0.5
          env (names; values are not shown):
              GH_TOKEN
        ");
    }

    /// A credential given to an MCP server is listed with the grants, and a server on
    /// this machine says so: a stranger's file could point either anywhere.
    #[test]
    fn mcp_credentials_are_grants_and_a_local_port_is_named() {
        insta::assert_snapshot!(summary(
            "mcp:\n  - name: docs\n    url: https://mcp.example.test/\n    auth: {grant: github, header: X-Token}\n  - name: local\n    url: http://localhost:2375/\n"
        ), @"
          grants (credentials the proxy injects):
              github -> `X-Token` header of requests to MCP server docs (https://mcp.example.test)
          remote MCP servers:
              docs: https://mcp.example.test (with the github credential)
              local: http://localhost:2375 -- a port of THIS MACHINE: the run can reach whatever listens there
        ");
    }

    #[test]
    fn an_empty_file_asks_for_nothing() {
        assert_eq!(summary("{}\n"), "  nothing beyond moat's defaults\n");
    }
}
