//! A run's SSH access, for its `ssh:` grants: the settings the CLI resolved (the user's
//! agent socket, the granted keys and pinned host keys) in `runs/<id>/ssh-agent.json`,
//! what the container gets (an SSH client configuration whose `ProxyCommand` tunnels
//! through the run's proxy, `/etc/ssh/ssh_known_hosts` with the pinned keys,
//! `SSH_AUTH_SOCK`), and the run's own agent, served by the supervisor on
//! `runs/<id>/ssh/agent.sock` with the proxy beside it (see `moat-ssh`).
//!
//! The container's directory `runs/<id>/ssh/` is mounted read-only at `/run/moat/ssh`:
//! it can connect to the socket but not replace it or the files next to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use moat_container::BindMount;
use moat_home::RunId;
use moat_ssh::{AgentConfig, AgentPolicy, PublicKey, SshEvent, SshGrantRule, Witness};
use serde::{Deserialize, Serialize};

use crate::{RunError, RunStore};

/// Where the run's SSH directory is mounted in the container.
pub const CONTAINER_SSH_DIR: &str = "/run/moat/ssh";
const SETTINGS_FILE: &str = "ssh-agent.json";
const EVENTS_FILE: &str = "ssh.jsonl";
const SOCKET_NAME: &str = "agent.sock";

/// One `ssh:` grant of a run, as the agent and the container need it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshRunGrant {
    pub host: String,
    pub port: u16,
    /// The user's public key, `TYPE BASE64`.
    pub key: String,
    /// The host keys pinned for it, `TYPE BASE64` each.
    pub host_keys: Vec<String>,
}

/// What the run's agent is given, carried to the supervisor in `ssh-agent.json`: the
/// supervisor inherits no environment, so the user's agent socket is a setting here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// The user's agent (`SSH_AUTH_SOCK` where the run was started).
    pub upstream: PathBuf,
    pub grants: Vec<SshRunGrant>,
}

impl SshSettings {
    fn rules(&self) -> Result<Vec<SshGrantRule>, String> {
        let parse = |text: &str| {
            PublicKey::from_openssh(text)
                .map(|(k, _)| k)
                .map_err(|e| format!("a key in `{SETTINGS_FILE}`: {e}"))
        };
        self.grants
            .iter()
            .map(|g| {
                Ok(SshGrantRule {
                    host: g.host.clone(),
                    port: g.port,
                    key: parse(&g.key)?,
                    host_keys: g
                        .host_keys
                        .iter()
                        .map(|k| parse(k))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    /// `/etc/ssh/ssh_known_hosts` of the run: every pinned key of every granted host.
    fn known_hosts(&self) -> String {
        let mut text = String::from("# moat: the host keys pinned by `moat grant ssh`\n");
        for grant in &self.grants {
            let keys: Vec<PublicKey> = grant
                .host_keys
                .iter()
                .filter_map(|k| PublicKey::from_openssh(k).ok().map(|(k, _)| k))
                .collect();
            text.push_str(&moat_ssh::known_hosts_lines(&grant.host, grant.port, &keys));
        }
        text
    }
}

/// The SSH client configuration every run with `ssh:` grants gets: the container has no
/// network, so each connection is a CONNECT tunnel through the run's proxy, and only the
/// pinned host keys are trusted.
const SSH_CONFIG: &str = "\
# moat: SSH in this run. The container has no network of its own: every connection is a
# CONNECT tunnel through the run's proxy, and the only host keys trusted are the ones
# `moat grant ssh` pinned (in /etc/ssh/ssh_known_hosts).
Host *
    ProxyCommand /run/moat/ssh/proxy-connect %h %p
    IdentityAgent /run/moat/ssh/agent.sock
    StrictHostKeyChecking yes
    UserKnownHostsFile /dev/null
    GlobalKnownHostsFile /etc/ssh/ssh_known_hosts
    UpdateHostKeys no
";

/// The `ProxyCommand`: socat speaks CONNECT with the run's proxy token, which the
/// container has in `HTTPS_PROXY`.
const PROXY_CONNECT: &str = r#"#!/bin/sh
# moat: the ProxyCommand of SSH in this run. The container has no network of its own;
# this opens a CONNECT tunnel to HOST:PORT through the run's proxy, its only way out.
set -eu
proxy=${HTTPS_PROXY:-${https_proxy:-}}
if [ -z "$proxy" ]; then
    echo "moat: HTTPS_PROXY is not set, and SSH goes out only through the run's proxy" >&2
    exit 1
fi
auth=${proxy#*://}
auth=${auth%@*}
exec socat STDIO "PROXY:127.0.0.1:$1:$2,proxyport=${MOAT_PROXY_PORT:-3128},proxyauth=$auth"
"#;

impl RunStore {
    pub fn ssh_dir(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join("ssh")
    }

    /// `ssh.jsonl`: every signature the run's agent made or refused.
    pub fn ssh_log_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(EVENTS_FILE)
    }

    /// Write the agent's settings (0600) and the directory the container will see.
    pub(crate) fn save_ssh(&self, id: &RunId, settings: &SshSettings) -> Result<(), RunError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.run_dir(id).join(SETTINGS_FILE);
        let bytes = serde_json::to_vec_pretty(settings).expect("SSH settings serialise");
        moat_home::write_private_atomic(&path, &bytes).map_err(|e| RunError::io(&path, e))?;
        let dir = self.ssh_dir(id);
        fs_err::create_dir(&dir).map_err(|e| RunError::io(&dir, e))?;
        // The container user (maybe another UID) reads these and reaches the socket.
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| RunError::io(&dir, e))?;
        for (name, text, mode) in [
            ("known_hosts", settings.known_hosts(), 0o644),
            ("ssh_config", SSH_CONFIG.to_owned(), 0o644),
            ("proxy-connect", PROXY_CONNECT.to_owned(), 0o755),
        ] {
            let path = dir.join(name);
            fs_err::write(&path, text).map_err(|e| RunError::io(&path, e))?;
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| RunError::io(&path, e))?;
        }
        let log = self.ssh_log_path(id);
        fs_err::File::create(&log).map_err(|e| RunError::io(&log, e))?;
        Ok(())
    }

    /// The agent's settings, if the run has `ssh:` grants.
    pub(crate) fn load_ssh(&self, id: &RunId) -> Result<Option<SshSettings>, RunError> {
        let path = self.run_dir(id).join(SETTINGS_FILE);
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RunError::io(&path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RunError::Corrupt {
                path,
                reason: e.to_string(),
            })
    }
}

/// The container's side: the mounts (the directory, the known hosts at
/// `/etc/ssh/ssh_known_hosts` and the client configuration in `ssh_config.d`, all
/// read-only) and `SSH_AUTH_SOCK`.
pub(crate) fn container_ssh(
    store: &RunStore,
    id: &RunId,
) -> (Vec<BindMount>, Vec<(String, String)>) {
    let dir = store.ssh_dir(id);
    let mount = |source: &Path, target: &str| BindMount {
        source: source.display().to_string(),
        target: target.to_owned(),
        read_only: true,
    };
    let mounts = vec![
        mount(&dir, CONTAINER_SSH_DIR),
        mount(&dir.join("known_hosts"), "/etc/ssh/ssh_known_hosts"),
        mount(&dir.join("ssh_config"), "/etc/ssh/ssh_config.d/moat.conf"),
    ];
    let env = vec![(
        "SSH_AUTH_SOCK".to_owned(),
        format!("{CONTAINER_SSH_DIR}/{SOCKET_NAME}"),
    )];
    (mounts, env)
}

/// The run's agent and the task writing its events.
pub(crate) struct RunningAgent {
    handle: moat_ssh::AgentHandle,
    writer: tokio::task::JoinHandle<()>,
}

impl RunningAgent {
    pub(crate) async fn stop(self) {
        self.handle.shutdown().await;
        let _ = self.writer.await;
    }
}

/// Start run `id`'s agent if it has `ssh:` grants; `witness` is what its proxy sees.
pub(crate) async fn start_agent(
    store: &RunStore,
    id: &RunId,
    witness: Witness,
    audit: Option<crate::RunAudit>,
    unwritable: Arc<crate::egress::Unwritable>,
) -> Result<Option<(RunningAgent, Vec<moat_proxy::HostPattern>)>, RunError> {
    let Some(settings) = store.load_ssh(id)? else {
        return Ok(None);
    };
    let grants = settings.rules().map_err(RunError::Egress)?;
    let mut hosts = Vec::new();
    for grant in &settings.grants {
        let pattern = moat_proxy::HostPattern::parse(&format!("{}:{}", grant.host, grant.port))
            .map_err(|e| RunError::Egress(format!("the SSH grant for `{}`: {e}", grant.host)))?;
        hosts.push(pattern);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SshEvent>();
    let socket = store.ssh_dir(id).join(SOCKET_NAME);
    let config = AgentConfig {
        policy: AgentPolicy {
            grants,
            witness,
            records_unwritable: Some(unwritable.flag()),
        },
        upstream: Some(settings.upstream.clone()),
    };
    let handle = moat_ssh::start(&socket, config, tx)
        .map_err(|e| RunError::Egress(format!("starting the run's SSH agent: {e}")))?;
    let writer = tokio::spawn(write_events(store.ssh_log_path(id), rx, audit, unwritable));
    Ok(Some((RunningAgent { handle, writer }, hosts)))
}

/// What the proxy shows the agent: the start of each SSH tunnel's server side.
pub(crate) struct WitnessTap(pub Witness);

impl moat_proxy::SshTap for WitnessTap {
    fn watch(&self, host: &str, port: u16) -> moat_proxy::TunnelWatcher {
        let mut watcher = self.0.watch(host, port);
        Box::new(move |bytes| watcher.feed(bytes))
    }
}

/// Append each event to `ssh.jsonl` as one JSON line, as it happens, and each signature
/// made, refused or failed to the run's audit log.
async fn write_events(
    path: PathBuf,
    rx: tokio::sync::mpsc::UnboundedReceiver<SshEvent>,
    audit: Option<crate::RunAudit>,
    unwritable: Arc<crate::egress::Unwritable>,
) {
    crate::egress::append_events(path, rx, "SSH", None, Some(unwritable), |event| {
        if let Some(audit) = &audit {
            audit.ssh(event);
        }
    })
    .await;
}

/// Read `ssh.jsonl`; lines that do not parse are skipped.
pub fn read_ssh_log(path: &Path) -> std::io::Result<Vec<SshEvent>> {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}
