//! Starting and stopping a proxy: `ProxyConfig` in, `ProxyHandle` out.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::auth::ProxyAuth;
use crate::ca::CertificateAuthority;
use crate::destination::Destinations;
use crate::error::ProxyError;
use crate::events::EventSink;
use crate::policy::Policy;
use crate::rules::GrantRule;
use crate::secret::Secret;
use crate::serve::{Lifecycle, ServerTls, Shared, serve_client};
use crate::upstream::Upstream;
use moat_hosts::NetworkPolicy;
use moat_hosts::{ConnectTo, HostPattern};

/// How long [`ProxyHandle::shutdown`] lets requests in flight finish.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything one run's proxy needs. Build it with [`ProxyConfig::new`] and set the
/// fields that differ from the defaults.
pub struct ProxyConfig {
    /// The per-run token clients must send as `Proxy-Authorization: Basic
    /// base64(moat:TOKEN)` (see [`crate::proxy_url`]).
    pub auth_token: Secret,
    /// What each grant injects, and where.
    pub rules: Vec<GrantRule>,
    /// Which hosts may be reached: every public one, or (strict) only `allow`'s. The
    /// rules' hosts are always allowed.
    pub policy: NetworkPolicy,
    /// `network.allow`: hosts, addresses and ranges (`10.0.0.0/8`) a strict policy
    /// allows, and, under either policy, the ones the proxy may connect to although their
    /// addresses are private or special-purpose (RFC 1918, CGNAT, unique-local, ...). The
    /// rules' hosts are added. A host matches by name; an address or range by the
    /// address connected to, after DNS.
    pub allow: Vec<HostPattern>,
    /// Hosts tunnelled without interception (pinned certificates, non-HTTP TLS). The
    /// policy still applies; no credential is injected and only byte counts are traced.
    pub passthrough: Vec<HostPattern>,
    /// PEM CA certificates trusted for upstreams in addition to the system roots.
    pub extra_roots_pem: Vec<u8>,
    /// Where connections for a host really go (curl's `--connect-to`).
    pub connect_to: Vec<ConnectTo>,
    /// Signs the certificates the proxy shows clients.
    pub ca: Arc<CertificateAuthority>,
    /// Whether the proxy may connect to addresses of its own host (loopback,
    /// link-local, its listening address, its interfaces' addresses) when a client names
    /// them. Off by default: the container must not reach host services through the
    /// proxy. Private addresses still need `allow`. `connect_to` destinations
    /// are always allowed.
    pub allow_host_local: bool,
    /// The hosts (with their ports) of the run's `ssh:` grants: CONNECTs to them are raw
    /// tunnels, allowed under either policy; port 22 of any other host is refused unless
    /// `allow` names it with the port.
    pub ssh: Vec<HostPattern>,
    /// Sees the start of every SSH tunnel's server side (the run's SSH agent).
    pub ssh_tap: Option<Arc<dyn crate::SshTap>>,
    /// May hold a request before it goes upstream (moat's agent-turn snapshots).
    pub request_gate: Option<Arc<dyn crate::RequestGate>>,
    /// Hosts whose plain-HTTP requests may get credentials: servers on the host's own
    /// loopback, which `connect_to` routes to (the cleartext never leaves the machine).
    /// Credentials otherwise travel only over TLS.
    pub cleartext_local: Vec<HostPattern>,
    /// Client connections served at once ([`MAX_CLIENT_CONNECTIONS`]); the next waits in
    /// the listen queue. As many CONNECT tunnels may be open; the next gets a 503.
    pub max_client_connections: usize,
    /// Set by whoever writes the events down while it cannot (a full disk): every request
    /// is then refused (503) rather than forwarded unrecorded, until it is clear again.
    pub records_unwritable: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl ProxyConfig {
    /// A permissive proxy without grants, authenticated by `auth_token`.
    pub fn new(auth_token: Secret, ca: Arc<CertificateAuthority>) -> Self {
        ProxyConfig {
            auth_token,
            rules: Vec::new(),
            policy: NetworkPolicy::Permissive,
            allow: Vec::new(),
            passthrough: Vec::new(),
            extra_roots_pem: Vec::new(),
            connect_to: Vec::new(),
            ca,
            allow_host_local: false,
            ssh: Vec::new(),
            ssh_tap: None,
            request_gate: None,
            cleartext_local: Vec::new(),
            max_client_connections: MAX_CLIENT_CONNECTIONS,
            records_unwritable: None,
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("auth_token", &self.auth_token)
            .field("rules", &self.rules)
            .field("policy", &self.policy)
            .field("allow", &self.allow)
            .field("passthrough", &self.passthrough)
            .field(
                "extra_roots_pem",
                &format_args!("{} bytes", self.extra_roots_pem.len()),
            )
            .field("connect_to", &self.connect_to)
            .field("allow_host_local", &self.allow_host_local)
            .field("ssh", &self.ssh)
            .finish_non_exhaustive()
    }
}

/// The proxy server.
pub struct Proxy;

impl Proxy {
    /// Bind `bind` (port 0 picks a free port) and serve on the current tokio runtime
    /// until the handle is shut down or dropped. Every request becomes one event in
    /// `events`.
    pub async fn start(
        config: ProxyConfig,
        bind: SocketAddr,
        events: impl EventSink,
    ) -> Result<ProxyHandle, ProxyError> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| ProxyError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ProxyError::Bind { addr: bind, source })?;
        let shared = Self::shared(config, Some(addr.ip()), events)?;
        shared
            .lifecycle
            .spawn(accept_loop(Listener::Tcp(listener), shared.clone()));
        Ok(ProxyHandle {
            address: ListenAddress::Tcp(addr),
            lifecycle: shared.lifecycle.clone(),
            shared,
        })
    }

    /// Serve on a unix socket at `path` (created with mode 0666: the proxy token, not the
    /// file mode, is what guards it). This is how a container without any network reaches
    /// the proxy: the socket's directory is mounted into it.
    pub async fn start_unix(
        config: ProxyConfig,
        path: &Path,
        events: impl EventSink,
    ) -> Result<ProxyHandle, ProxyError> {
        let bind_error = |source| ProxyError::BindUnix {
            path: path.to_owned(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(bind_error)?;
        let shared = Self::shared(config, None, events)?;
        shared
            .lifecycle
            .spawn(accept_loop(Listener::Unix(listener), shared.clone()));
        Ok(ProxyHandle {
            address: ListenAddress::Unix(path.to_owned()),
            lifecycle: shared.lifecycle.clone(),
            shared,
        })
    }

    fn shared(
        config: ProxyConfig,
        own_ip: Option<std::net::IpAddr>,
        events: impl EventSink,
    ) -> Result<Arc<Shared>, ProxyError> {
        let granted: Vec<HostPattern> = config
            .rules
            .iter()
            .flat_map(|rule| rule.hosts().iter().cloned())
            .collect();
        let mut private_allow = config.allow.clone();
        // A granted host may be on a private network (a company's git server).
        for pattern in granted.iter().chain(&config.ssh) {
            if !private_allow.contains(pattern) {
                private_allow.push(pattern.clone());
            }
        }
        let destinations = Destinations {
            allow: private_allow,
            own_ip,
            allow_host_local: config.allow_host_local,
        };
        let upstream = Upstream::new(&config.extra_roots_pem, config.connect_to, destinations)?;
        Ok(Arc::new(Shared {
            auth: ProxyAuth::new(&config.auth_token),
            rules: config.rules,
            granted,
            policy: Policy {
                policy: config.policy,
                allow: config.allow,
            },
            passthrough: config.passthrough,
            ssh: config.ssh,
            ssh_tap: config.ssh_tap,
            request_gate: config.request_gate,
            cleartext_local: config.cleartext_local,
            upstream,
            tls: ServerTls::new(config.ca),
            sink: Arc::new(events),
            lifecycle: Lifecycle::new(),
            records_unwritable: config.records_unwritable,
            tunnels: Arc::new(tokio::sync::Semaphore::new(
                config.max_client_connections.max(1),
            )),
            connections: Arc::new(tokio::sync::Semaphore::new(
                config.max_client_connections.max(1),
            )),
        }))
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// By default at most this many client connections are served at once; the next waits in the
/// listen queue until one ends. Each costs the supervisor a descriptor or two and buffers,
/// and an agent can open connections on purpose: past the limit, it slows only itself, and
/// the run's logs and audit log keep descriptors to write with.
pub const MAX_CLIENT_CONNECTIONS: usize = 1024;

/// A permit to serve one more client connection; `None` once the proxy stops.
pub(crate) async fn connection_permit(
    shared: &Arc<Shared>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        () = shared.lifecycle.stop.cancelled() => None,
        permit = shared.connections.clone().acquire_owned() => permit.ok(),
    }
}

/// Serve a connection accepted elsewhere (on a listening socket handed over), holding
/// `permit` while it lasts.
pub(crate) fn serve_accepted(
    stream: tokio::net::TcpStream,
    shared: &Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let serve = serve_client(shared.clone(), stream);
    shared.lifecycle.spawn(async move {
        serve.await;
        drop(permit);
    });
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    let stop = shared.lifecycle.stop.clone();
    loop {
        let Some(permit) = connection_permit(&shared).await else {
            break;
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Tcp(stream)) => {
                let _ = stream.set_nodelay(true);
                let serve = serve_client(shared.clone(), stream);
                shared.lifecycle.spawn(async move {
                    serve.await;
                    drop(permit);
                });
            }
            Ok(Accepted::Unix(stream)) => {
                let serve = serve_client(shared.clone(), stream);
                shared.lifecycle.spawn(async move {
                    serve.await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::debug!(error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
    }
}

/// Where a proxy listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A running proxy. Dropping it stops the proxy at once; [`ProxyHandle::shutdown`]
/// stops it gracefully.
pub struct ProxyHandle {
    address: ListenAddress,
    lifecycle: Lifecycle,
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// Also accept on a listening TCP socket bound to `expected`, handed over on the first
    /// connection to a unix socket bound at `path` (mode 0666; removed after that one
    /// connection): how a container's `moat-init` gives the proxy its loopback port, so
    /// that the container's connections reach the proxy with no relay between (see
    /// `handover.rs`).
    pub fn take_listener_at(&self, path: &Path, expected: SocketAddr) -> Result<(), ProxyError> {
        let listener = crate::handover::bind(path).map_err(|source| ProxyError::BindUnix {
            path: path.to_owned(),
            source,
        })?;
        self.lifecycle.spawn(crate::handover::take_first(
            listener,
            path.to_owned(),
            expected,
            self.shared.clone(),
        ));
        Ok(())
    }

    /// The TCP address the proxy listens on (with the port picked if 0 was asked for).
    ///
    /// # Panics
    /// For a proxy started with [`Proxy::start_unix`]; use [`ProxyHandle::address`].
    pub fn local_addr(&self) -> SocketAddr {
        match &self.address {
            ListenAddress::Tcp(addr) => *addr,
            ListenAddress::Unix(path) => {
                panic!("the proxy listens on the unix socket `{}`", path.display())
            }
        }
    }

    /// Where the proxy listens.
    pub fn address(&self) -> &ListenAddress {
        &self.address
    }

    /// Stop accepting connections, close tunnels and upgraded connections, let
    /// requests in flight finish for up to [`DEFAULT_SHUTDOWN_GRACE`], then drop the
    /// rest. Events of finished requests have all been delivered when this returns.
    pub async fn shutdown(self) {
        self.shutdown_within(DEFAULT_SHUTDOWN_GRACE).await;
    }

    /// [`ProxyHandle::shutdown`] with another grace period.
    pub async fn shutdown_within(self, grace: Duration) {
        self.lifecycle.stop.cancel();
        self.lifecycle.tracker.close();
        if tokio::time::timeout(grace, self.lifecycle.tracker.wait())
            .await
            .is_err()
        {
            self.lifecycle.kill.cancel();
            self.lifecycle.tracker.wait().await;
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.lifecycle.stop.cancel();
        self.lifecycle.kill.cancel();
    }
}

impl fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("address", &self.address)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn serves_on_a_unix_socket_and_still_demands_the_token() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.sock");
        let ca = Arc::new(crate::CertificateAuthority::ephemeral().unwrap());
        let config = ProxyConfig::new(Secret::new("run-token"), ca);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let proxy = Proxy::start_unix(config, &path, tx).await.unwrap();
        assert_eq!(proxy.address(), &ListenAddress::Unix(path.clone()));
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);

        let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        stream
            .write_all(b"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await
            .unwrap();
        let mut reply = vec![0u8; 64];
        let n = stream.read(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply[..n]);
        assert!(reply.starts_with("HTTP/1.1 407"), "{reply}");
        proxy.shutdown().await;
    }
}
