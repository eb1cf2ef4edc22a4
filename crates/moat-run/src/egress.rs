//! A run's way out: its credential proxy, and the container side of enforced egress.
//!
//! The container is created with no network at all (`--network none`). Its only way out is
//! the run's proxy, which the supervisor serves on a unix socket in
//! `runs/<id>/proxy/proxy.sock`; that directory is mounted at `/run/moat/proxy`, and
//! `moat-init` forwards `127.0.0.1:3128` to it (crates/moat-init). A process that ignores
//! `HTTPS_PROXY`, dials a raw IP or does its own DNS finds no route; host services are not
//! reachable because the container shares no network with the host, and the proxy
//! refuses the host's own addresses and, unless `network.allow` allows them, private
//! ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use moat_container::BindMount;
use moat_home::KeyringMode;
use moat_home::RunId;
use moat_proxy::{
    CertificateAuthority, ConnectTo, HostPattern, NetworkEvent, NetworkPolicy, ProxyConfig, Secret,
};
use serde::{Deserialize, Serialize};

use crate::{RunError, RunStore};

/// Where the proxy directory is mounted in the container.
pub const CONTAINER_PROXY_DIR: &str = "/run/moat/proxy";
/// The port `moat-init` listens on inside the container for the proxy.
pub const CONTAINER_PROXY_PORT: u16 = 3128;
const SOCKET_NAME: &str = "proxy.sock";
/// Where the container's `moat-init` hands the proxy its listening socket.
const LISTENER_NAME: &str = "listener.sock";
const SETTINGS_FILE: &str = "egress.json";
const TOKEN_FILE: &str = "proxy.token";
const NETWORK_LOG: &str = "network.jsonl";
/// What a run's proxy enforces, as the CLI resolved it, carried typed to the supervisor
/// through `egress.json`. Every field is read back with the parser that checked it at
/// first, and nothing has a default: a damaged file, or one written by another version
/// of moat, stops the run instead of loosening it. No secret is in here: the proxy token
/// has its own file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSettings {
    pub policy: NetworkPolicy,
    /// `network.allow` and the grants' hosts: what a strict policy allows, and, under
    /// either policy, the private destinations the proxy may connect to.
    pub allow: Vec<HostPattern>,
    /// Hosts tunnelled without TLS interception (still subject to the policy).
    pub passthrough: Vec<HostPattern>,
    /// Where connections for a host really go (curl's `--connect-to`).
    pub connect_to: Vec<ConnectTo>,
    /// A PEM file of extra upstream roots.
    pub extra_ca_file: Option<PathBuf>,
    /// The grants of the run (credentials the proxy injects).
    pub grants: Vec<String>,
    /// Where the credential key lives.
    pub keyring: KeyringMode,
    /// The remote MCP servers of the run (top-level `mcp`): the proxy injects each one's
    /// credential on requests to its host.
    pub mcp: Vec<McpRoute>,
}

/// A remote MCP server as the run's proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpRoute {
    /// `mcp[].name`: `moat trace --network` labels the server's requests with it.
    pub name: String,
    /// The URL the container's client uses.
    pub url: String,
    /// For a server on the user's machine (`http://localhost:PORT/...` in the
    /// configuration): that URL. The container uses a name of moat's instead
    /// (`NAME.mcp.moat.internal:PORT`), which the proxy routes to the host's loopback for
    /// this server only.
    pub local_url: Option<String>,
    /// The host (and port) of `url`: where the credential may go.
    pub host: HostPattern,
    /// The credential and the header it goes into; `None` for a server without `auth`.
    pub auth: Option<McpRouteAuth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpRouteAuth {
    pub grant: String,
    pub header: String,
}

impl McpRoute {
    /// Whether `url` (as the network log records it) is a request to this server: its
    /// host and port, and a path under the server's.
    pub fn matches_url(&self, url: &str) -> bool {
        let split = |u: &str| -> Option<(String, String)> {
            let rest = u.split_once("://")?.1;
            let (authority, path) = match rest.find(['/', '?', '#']) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let scheme_default = if u.starts_with("https://") {
                ":443"
            } else {
                ":80"
            };
            let authority = authority.strip_suffix(scheme_default).unwrap_or(authority);
            let path = path.split(['?', '#']).next().unwrap_or("/");
            Some((
                authority.to_ascii_lowercase(),
                path.trim_end_matches('/').to_owned(),
            ))
        };
        match (split(&self.url), split(url)) {
            (Some((host, base)), Some((their_host, path))) => {
                host == their_host
                    && (path == base || base.is_empty() || path.starts_with(&format!("{base}/")))
            }
            _ => false,
        }
    }
}

impl RunStore {
    pub fn proxy_dir(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join("proxy")
    }

    pub fn network_log_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(NETWORK_LOG)
    }

    /// Write the egress settings and the run's proxy token (both 0600) and make the
    /// directory the container will see.
    pub fn save_egress(
        &self,
        id: &RunId,
        settings: &EgressSettings,
        token: &Secret,
    ) -> Result<(), RunError> {
        let dir = self.run_dir(id);
        let bytes = serde_json::to_vec_pretty(settings).expect("egress settings serialise");
        let path = dir.join(SETTINGS_FILE);
        moat_home::write_private_atomic(&path, &bytes).map_err(|e| RunError::io(&path, e))?;
        let path = dir.join(TOKEN_FILE);
        moat_home::write_private_atomic(&path, token.expose().as_bytes())
            .map_err(|e| RunError::io(&path, e))?;
        let proxy_dir = self.proxy_dir(id);
        fs_err::create_dir(&proxy_dir).map_err(|e| RunError::io(&proxy_dir, e))?;
        use std::os::unix::fs::PermissionsExt;
        // The container user (maybe another UID) must reach the socket inside.
        fs_err::set_permissions(&proxy_dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| RunError::io(&proxy_dir, e))?;
        let log = self.network_log_path(id);
        fs_err::File::create(&log).map_err(|e| RunError::io(&log, e))?;
        Ok(())
    }

    /// The egress settings and proxy token the CLI saved for run `id`.
    pub fn load_egress(&self, id: &RunId) -> Result<(EgressSettings, Secret), RunError> {
        let dir = self.run_dir(id);
        let path = dir.join(SETTINGS_FILE);
        let bytes = fs_err::read(&path).map_err(|e| RunError::io(&path, e))?;
        let settings = serde_json::from_slice(&bytes).map_err(|e| RunError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let path = dir.join(TOKEN_FILE);
        let token = fs_err::read_to_string(&path).map_err(|e| RunError::io(&path, e))?;
        Ok((settings, Secret::new(token.trim().to_owned())))
    }
}

/// The container's side of egress: its network mode, the proxy mount and the variables
/// that make every common client use the proxy and trust its CA.
pub(crate) fn container_egress(
    store: &RunStore,
    id: &RunId,
    token: &Secret,
) -> (String, BindMount, Vec<(String, String)>) {
    let mount = BindMount {
        source: store.proxy_dir(id).display().to_string(),
        target: CONTAINER_PROXY_DIR.to_owned(),
        // Connecting to a unix socket needs no write access to its mount; nothing in the
        // run may replace the socket or leave files next to it.
        read_only: true,
    };
    let url = format!(
        "http://{}:{}@127.0.0.1:{CONTAINER_PROXY_PORT}",
        moat_proxy::PROXY_USER,
        token.expose()
    );
    let no_proxy = "localhost,127.0.0.1,::1".to_owned();
    let mut env = vec![
        (
            "MOAT_PROXY_SOCKET".to_owned(),
            format!("{CONTAINER_PROXY_DIR}/{SOCKET_NAME}"),
        ),
        (
            "MOAT_PROXY_PORT".to_owned(),
            CONTAINER_PROXY_PORT.to_string(),
        ),
        (
            "MOAT_PROXY_LISTENER".to_owned(),
            format!("{CONTAINER_PROXY_DIR}/{LISTENER_NAME}"),
        ),
    ];
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        env.push((name.to_owned(), url.clone()));
    }
    env.push(("NO_PROXY".to_owned(), no_proxy.clone()));
    env.push(("no_proxy".to_owned(), no_proxy));
    // Variables that replace a client's default bundle get the full system bundle, which
    // includes moat's CA; NODE_EXTRA_CA_CERTS adds to Node's own roots.
    for name in moat_image::CA_BUNDLE_VARIABLES {
        env.push(((*name).to_owned(), moat_image::SYSTEM_BUNDLE.to_owned()));
    }
    ("none".to_owned(), mount, env)
}

/// The proxy configuration of `settings` with the grants' `rules`, authenticated by
/// `token`, signing with the CA in `home`: what a run's proxy enforces, for the run's own
/// proxy and for the host-side fetches made on a run's behalf (plugin marketplaces).
pub fn proxy_config(
    home: &moat_home::MoatHome,
    settings: &EgressSettings,
    token: Secret,
    rules: Vec<moat_proxy::GrantRule>,
) -> Result<ProxyConfig, RunError> {
    let ca = CertificateAuthority::load_or_create(&home.proxy_ca_dir())
        .map_err(|e| RunError::Egress(e.to_string()))?;
    let mut config = ProxyConfig::new(token, Arc::new(ca));
    config.rules = rules;
    config.policy = settings.policy;
    config.allow = settings.allow.clone();
    config.passthrough = settings.passthrough.clone();
    config.connect_to = settings.connect_to.clone();
    // MCP servers on the user's machine: plain HTTP over the host's loopback.
    config.cleartext_local = settings
        .mcp
        .iter()
        .filter(|route| route.local_url.is_some())
        .map(|route| route.host.clone())
        .collect();
    if let Some(file) = &settings.extra_ca_file {
        // Checked by the CLI, and read as bounded here: the file may have been swapped for
        // a FIFO or a device since, which must not hang the supervisor.
        config.extra_roots_pem =
            moat_home::read_bounded(file, moat_home::FileKind::CA_CERTIFICATES)
                .map_err(|e| RunError::io(file, std::io::Error::other(e)))?;
    }
    Ok(config)
}

/// A started proxy and the task that writes its events to `network.jsonl`, with the
/// run's SSH agent when it has `ssh:` grants (the agent needs what the proxy sees of
/// each SSH tunnel, so the two start and stop together).
pub(crate) struct RunningProxy {
    handle: moat_proxy::ProxyHandle,
    writer: tokio::task::JoinHandle<()>,
    /// Tells the writer to write what has queued and stop, senders left or not.
    close_writer: tokio::sync::oneshot::Sender<()>,
    ssh_agent: Option<crate::ssh::RunningAgent>,
}

/// How long the writer may take, once the proxy stopped, to see every sender go.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl RunningProxy {
    /// Stop the proxy and wait until every event is on disk.
    pub(crate) async fn stop(self) {
        self.handle.shutdown().await;
        // Each exchange holds a sender until its bodies end, and the writer ends once they
        // are gone. An upstream the agent runs can hold a request body open past the
        // proxy's shutdown (a connection task of the HTTP client's own): the run must end
        // anyway, with what is queued written, and its protected paths checked.
        let mut writer = self.writer;
        if tokio::time::timeout(WRITER_GRACE, &mut writer)
            .await
            .is_err()
        {
            tracing::warn!(
                "a request was still open when the run's proxy stopped; its record is not in network.jsonl"
            );
            let _ = self.close_writer.send(());
            let _ = writer.await;
        }
        if let Some(agent) = self.ssh_agent {
            agent.stop().await;
        }
    }
}

/// Start run `id`'s proxy on its unix socket, with the settings the CLI saved. Each agent
/// turn's Messages request waits for the snapshot it asks `turns` for.
pub(crate) async fn start_proxy(
    store: &RunStore,
    id: &RunId,
    rules: Vec<moat_proxy::GrantRule>,
    audit: Option<crate::RunAudit>,
    turns: Option<crate::snapshot_triggers::SnapshotQueue>,
) -> Result<RunningProxy, RunError> {
    let (settings, token) = store.load_egress(id)?;
    let mut config = proxy_config(store.home(), &settings, token, rules)?;
    let witness = moat_ssh::Witness::new();
    // Up while network.jsonl or ssh.jsonl cannot be written: the proxy then forwards
    // nothing and the SSH agent signs nothing.
    let unwritable = Arc::new(Unwritable::default());
    let ssh_agent = match crate::ssh::start_agent(
        store,
        id,
        witness.clone(),
        audit.clone(),
        unwritable.clone(),
    )
    .await?
    {
        Some((agent, hosts)) => {
            config.ssh = hosts;
            config.ssh_tap = Some(Arc::new(crate::ssh::WitnessTap(witness)));
            Some(agent)
        }
        None => None,
    };
    config.request_gate = turns.map(|queue| {
        Arc::new(crate::snapshot_triggers::TurnGate(queue)) as Arc<dyn moat_proxy::RequestGate>
    });
    config.records_unwritable = Some(unwritable.flag());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<NetworkEvent>();
    let socket = store.proxy_dir(id).join(SOCKET_NAME);
    let handle = moat_proxy::Proxy::start_unix(config, &socket, tx)
        .await
        .map_err(|e| RunError::Egress(e.to_string()))?;
    // The container's connections come to the proxy directly on its own loopback port,
    // handed over by moat-init; the unix socket above is the fallback's (and SSH's).
    handle
        .take_listener_at(
            &store.proxy_dir(id).join(LISTENER_NAME),
            std::net::SocketAddr::from(([127, 0, 0, 1], CONTAINER_PROXY_PORT)),
        )
        .map_err(|e| RunError::Egress(e.to_string()))?;
    let (close_writer, close) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(write_events(
        store.network_log_path(id),
        rx,
        audit,
        close,
        unwritable,
    ));
    Ok(RunningProxy {
        handle,
        writer,
        close_writer,
        ssh_agent,
    })
}

/// Append each event to `network.jsonl` as one JSON line, as it happens, and tell the
/// audit log about credentials injected and requests refused.
async fn write_events(
    path: PathBuf,
    rx: tokio::sync::mpsc::UnboundedReceiver<NetworkEvent>,
    audit: Option<crate::RunAudit>,
    close: tokio::sync::oneshot::Receiver<()>,
    unwritable: Arc<Unwritable>,
) {
    append_events(
        path,
        rx,
        "network",
        Some(close),
        Some(unwritable),
        |event| {
            if let Some(audit) = &audit {
                audit.network(event);
            }
        },
    )
    .await;
}

/// Append each event from `rx` to `path` as one JSON line, as it happens, and hand it to
/// `also`; `what` names the log in warnings. The run's proxy and SSH agent logs both. It ends
/// when every sender is gone, or once `close` fires (or its sender goes) and what had
/// queued by then is written.
///
/// The request path only queues an event. Here, whatever has queued up by the time a
/// write is due goes out as one write of whole lines (a burst of requests costs one write
/// per batch, not one per request), and the file is current whenever traffic pauses.
///
/// The write itself is a plain `write(2)` from this task, not `tokio::fs`: an append of a
/// few hundred bytes to the page cache takes microseconds, while `tokio::fs` hands every
/// write to a blocking-pool thread — waking it and putting it back to sleep, two context
/// switches per proxied request, which measured as the largest single cost of a small
/// keep-alive request on two cores (issue 12). The audit entries `also` writes were
/// already written this way.
pub(crate) async fn append_events<E: serde::Serialize>(
    path: PathBuf,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<E>,
    what: &str,
    mut close: Option<tokio::sync::oneshot::Receiver<()>>,
    unwritable: Option<Arc<Unwritable>>,
    also: impl Fn(&E),
) {
    /// Past this many bytes a batch is written even if more events wait.
    const MAX_BATCH: usize = 256 * 1024;
    let mut log = PendingLog::new(path, what, unwritable);
    let mut batch = Vec::with_capacity(16 * 1024);
    loop {
        let wait = async {
            match close.as_mut() {
                Some(signal) => tokio::select! {
                    event = rx.recv() => Some(event),
                    _ = signal => None,
                },
                None => Some(rx.recv().await),
            }
        };
        // With lines that could not be written, try again now and then even when no event
        // comes (the proxy forwards nothing meanwhile, so few do).
        let next = if log.is_clear() {
            wait.await
        } else {
            match tokio::time::timeout(RETRY_WRITE, wait).await {
                Ok(next) => next,
                Err(_) => {
                    log.write(&[]);
                    continue;
                }
            }
        };
        let next = match next {
            Some(next) => next,
            None => {
                // Told to close: no more sends; what is queued still comes out of `recv`.
                close = None;
                rx.close();
                continue;
            }
        };
        let Some(mut event) = next else { break };
        batch.clear();
        loop {
            serde_json::to_writer(&mut batch, &event).expect("an event serialises");
            batch.push(b'\n');
            also(&event);
            if batch.len() >= MAX_BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(next) => event = next,
                Err(_) => break,
            }
        }
        log.write(&batch);
    }
    log.finish();
}

/// Which of a run's logs cannot be written now, and the flag that is up while any
/// cannot: the proxy forwards nothing and the SSH agent signs nothing while it is.
#[derive(Default)]
pub(crate) struct Unwritable {
    /// How many logs are failing; changed only with `flag`, under the lock.
    failing: std::sync::Mutex<usize>,
    flag: Arc<AtomicBool>,
}

impl Unwritable {
    /// The flag the proxy and the SSH agent read.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// One log started or stopped failing.
    fn changed(&self, failing: bool) {
        let mut count = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        if failing {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        self.flag.store(*count > 0, Ordering::Relaxed);
    }
}

/// How often lines that could not be written are tried again.
const RETRY_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// An append-only log file and the lines not written to it yet. While any are left, the
/// `unwritable` flag is up, and the proxy forwards nothing: a request the run cannot
/// record is not made (a full disk, which an agent can cause where the workspace and
/// MOAT_HOME share a file system, would otherwise hide what it did next).
struct PendingLog<'a> {
    path: PathBuf,
    what: &'a str,
    file: Option<fs_err::File>,
    pending: Vec<u8>,
    unwritable: Option<Arc<Unwritable>>,
    /// Bytes of lines given up on (past [`PendingLog::MAX_PENDING`]).
    lost: u64,
    /// The last write failed (lines wait in `pending`, or the file could not be opened).
    failing: bool,
}

impl<'a> PendingLog<'a> {
    /// Lines kept for a later write at most; past it new ones are counted, not kept.
    const MAX_PENDING: usize = 16 * 1024 * 1024;

    fn new(path: PathBuf, what: &'a str, unwritable: Option<Arc<Unwritable>>) -> Self {
        let mut log = PendingLog {
            path,
            what,
            file: None,
            pending: Vec::new(),
            unwritable,
            lost: 0,
            failing: false,
        };
        log.write(&[]);
        log
    }

    fn is_clear(&self) -> bool {
        !self.failing
    }

    /// Queue `lines` and write as much as the file takes.
    fn write(&mut self, lines: &[u8]) {
        if self.pending.len() + lines.len() > Self::MAX_PENDING {
            self.lost += lines.len() as u64;
        } else {
            self.pending.extend_from_slice(lines);
        }
        let was = self.failing;
        match self.try_write() {
            Ok(()) if self.failing => {
                tracing::warn!("the {} log can be written again", self.what);
                self.failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, path = %self.path.display(), "cannot write the {} log; requests are refused until it can be written", self.what);
                }
                self.failing = true;
            }
        }
        if was != self.failing
            && let Some(unwritable) = &self.unwritable
        {
            unwritable.changed(self.failing);
        }
    }

    fn try_write(&mut self) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                fs_err::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&self.path)?,
            ),
        };
        // A short write leaves the rest of a line to come after it, never a line twice.
        while !self.pending.is_empty() {
            match std::io::Write::write(file, &self.pending) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn finish(mut self) {
        if !self.pending.is_empty() {
            self.write(&[]);
        }
        // This log asks nothing more of the others: it is done.
        if self.failing
            && let Some(unwritable) = &self.unwritable
        {
            unwritable.changed(false);
        }
        let left = self.pending.len() as u64 + self.lost;
        if left > 0 {
            tracing::warn!("{left} bytes of the {} log could not be written", self.what);
        }
    }
}

/// Read `network.jsonl`; lines that do not parse are skipped.
pub fn read_network_log(path: &Path) -> std::io::Result<Vec<NetworkEvent>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A log that cannot be written (no file to open, then a full disk) keeps its lines,
    /// raises the flag the proxy refuses requests on, and writes them, in order and once,
    /// when it can again.
    #[test]
    fn lines_that_cannot_be_written_wait_and_hold_the_proxy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/log.jsonl");
        let unwritable = Arc::new(Unwritable::default());
        let flag = unwritable.flag();
        let mut log = PendingLog::new(path.clone(), "test", Some(unwritable.clone()));
        assert!(flag.load(Ordering::Relaxed), "no directory: unwritable");
        log.write(b"1\n");
        log.write(b"2\n");
        assert!(flag.load(Ordering::Relaxed));
        fs_err::create_dir(dir.path().join("runs")).unwrap();
        log.write(&[]);
        assert!(
            !flag.load(Ordering::Relaxed),
            "written: the proxy may go on"
        );
        log.write(b"3\n");
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "1\n2\n3\n");

        let mut full = PendingLog::new("/dev/full".into(), "test", Some(unwritable.clone()));
        full.write(b"x\n");
        assert!(flag.load(Ordering::Relaxed), "ENOSPC holds the proxy");
        assert!(!full.is_clear());
        assert_eq!(full.pending, b"x\n");

        // Two logs (network and SSH): the flag is down only when both can be written.
        let other = dir.path().join("other/ssh.jsonl");
        let mut second = PendingLog::new(other.clone(), "second", Some(unwritable.clone()));
        assert!(flag.load(Ordering::Relaxed));
        full.finish();
        assert!(flag.load(Ordering::Relaxed), "the second log still fails");
        fs_err::create_dir(dir.path().join("other")).unwrap();
        second.write(b"y\n");
        assert!(!flag.load(Ordering::Relaxed), "both written");
        assert_eq!(fs_err::read_to_string(&other).unwrap(), "y\n");
    }

    /// A sender that never goes (an exchange whose body an upstream holds open) does not
    /// keep the writer, and so the run's end, waiting once it is told to close; what was
    /// queued is written.
    #[tokio::test]
    async fn the_writer_closes_with_a_sender_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let (close_tx, close) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(append_events(
            path.clone(),
            rx,
            "test",
            Some(close),
            None,
            |_| {},
        ));
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        tokio::task::yield_now().await;
        close_tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("the writer ended")
            .unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "1\n2\n");
        assert!(tx.send(3).is_err(), "nothing is taken after the close");
    }

    #[test]
    fn an_mcp_route_matches_the_requests_to_its_server() {
        let route = McpRoute {
            name: "notes".into(),
            url: "https://Notes.example.test/mcp".into(),
            local_url: None,
            host: HostPattern::parse("notes.example.test").unwrap(),
            auth: None,
        };
        assert!(route.matches_url("https://notes.example.test/mcp"));
        assert!(route.matches_url("https://notes.example.test:443/mcp/"));
        assert!(route.matches_url("https://notes.example.test/mcp/messages?session=1"));
        assert!(!route.matches_url("https://notes.example.test/mcpx"));
        assert!(!route.matches_url("https://notes.example.test/"));
        assert!(!route.matches_url("https://other.example.test/mcp"));
        assert!(!route.matches_url("notes.example.test:443"));
    }
}
