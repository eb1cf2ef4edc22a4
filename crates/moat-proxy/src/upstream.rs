//! The proxy's side towards real servers: which roots it trusts, where it connects
//! (honouring `connect_to`, refusing the destinations `destination` refuses), and the
//! pooled HTTP/1.1 + HTTP/2 clients.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::body::RequestBody;
use crate::destination::{Destinations, HostAddresses, Refusal};
use crate::error::{ConfigError, ProxyError};
use moat_hosts::{ConnectTo, normalize_host, reroute};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// What one connection may hold of a body on its way through (HTTP/1.1 read and write
/// buffers). hyper's default lets each grow to about 400 KiB, so memory grew with
/// concurrency times body size; past this much, the proxy stops reading from the sender
/// until the receiver has taken what is there (back-pressure, not memory growth). The
/// kernel's socket buffers keep the pipe full meanwhile. (HTTP/2 upstreams keep hyper's
/// flow-control windows: a smaller window caps one stream at window / round trip, which
/// on a real 100 ms path to an API would throttle a large download.)
pub(crate) const MAX_CONNECTION_BUFFER: usize = 64 * 1024;

/// Why a connection to an upstream could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("cannot resolve `{host}`: {source}")]
    Resolve { host: String, source: io::Error },

    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },

    #[error("cannot connect to `{addr}`: {source}")]
    Connect { addr: SocketAddr, source: io::Error },

    #[error("connecting to `{host}` timed out")]
    Timeout { host: String },

    #[error("TLS with `{host}` failed: {source}")]
    Tls { host: String, source: io::Error },

    #[error("`{host}` is at {ip}, an address of the proxy's own host; moat does not connect there")]
    HostLocal { host: String, ip: IpAddr },

    #[error("{}", private_message(host, *ip, range_name, *via))]
    Private {
        host: String,
        /// The port asked for, so the entry to allow can carry it.
        port: u16,
        ip: IpAddr,
        range_name: &'static str,
        /// The NAT64 or 6to4 address `ip` was embedded in.
        via: Option<IpAddr>,
    },

    #[error("`{0}` is not a URL the proxy can connect to")]
    BadUri(String),
}

/// A connection to an upstream: TCP, or TLS over TCP.
pub(crate) enum UpstreamIo {
    Plain(TokioIo<TcpStream>),
    // Boxed: a TLS session is over a kilobyte, a TCP stream a few words.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        match self {
            UpstreamIo::Plain(_) => Connected::new(),
            UpstreamIo::Tls(tls) => {
                let (_, session) = tls.inner().get_ref();
                if session.alpn_protocol() == Some(b"h2") {
                    Connected::new().negotiated_h2()
                } else {
                    Connected::new()
                }
            }
        }
    }
}

impl hyper::rt::Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamIo::Plain(io) => io.is_write_vectored(),
            UpstreamIo::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_flush(cx),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `` `api.corp.test` is at 10.1.2.3, a private address (RFC 1918); ... ``, without
/// naming the address twice when the client gave an address.
fn private_message(host: &str, ip: IpAddr, range_name: &str, via: Option<IpAddr>) -> String {
    let subject = match via {
        Some(via) if via.to_string() == host => format!("`{host}` leads to {ip},"),
        Some(via) => format!("`{host}` is at {via}, which leads to {ip},"),
        None if ip.to_string() == host => format!("`{host}` is"),
        None => format!("`{host}` is at {ip},"),
    };
    format!(
        "{subject} a private address ({range_name}); moat does not connect to private networks \
         unless allowed"
    )
}

impl Refusal {
    fn into_error(self, host: &str, port: u16) -> ConnectError {
        match self {
            Refusal::HostLocal { ip } => ConnectError::HostLocal {
                host: host.to_owned(),
                ip,
            },
            Refusal::Private {
                ip,
                range_name,
                via,
            } => ConnectError::Private {
                host: host.to_owned(),
                port,
                ip,
                range_name,
                via,
            },
        }
    }
}

/// Opens upstream connections. The TCP destination follows `connect_to`; the TLS server
/// name and certificate check stay those of the host in the URL.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    tls: TlsConnector,
    connect_to: Arc<[ConnectTo]>,
    destinations: Arc<Destinations>,
}

impl Connector {
    fn new(
        tls: Arc<ClientConfig>,
        connect_to: Arc<[ConnectTo]>,
        destinations: Arc<Destinations>,
    ) -> Self {
        Connector {
            inner: Arc::new(ConnectorInner {
                tls: TlsConnector::from(tls),
                connect_to,
                destinations,
            }),
        }
    }

    /// A TCP connection for `host:port` (normalized host).
    pub async fn tcp(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let (dest_host, dest_port, rerouted) = match reroute(&self.inner.connect_to, host, port) {
            Some((h, p)) => (h, p, true),
            None => (host.to_owned(), port, false),
        };
        let addrs: Vec<SocketAddr> = match dest_host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, dest_port)],
            Err(_) => tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::lookup_host((dest_host.as_str(), dest_port)),
            )
            .await
            .map_err(|_| ConnectError::Timeout {
                host: host.to_owned(),
            })?
            .map_err(|source| ConnectError::Resolve {
                host: dest_host.clone(),
                source,
            })?
            .collect(),
        };
        // An operator's connect_to entry is trusted to point anywhere; a name the
        // container chose is not allowed to lead back into this host or, unless the run
        // allows it, into a private network.
        let addrs = if rerouted {
            addrs
        } else {
            self.permitted(host, port, addrs)?
        };
        let mut last_error = None;
        for addr in addrs {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(source)) => last_error = Some(ConnectError::Connect { addr, source }),
                Err(_) => {
                    last_error = Some(ConnectError::Timeout {
                        host: host.to_owned(),
                    })
                }
            }
        }
        Err(last_error.unwrap_or(ConnectError::NoAddress {
            host: dest_host.clone(),
        }))
    }

    /// The addresses of `addrs` the proxy may connect to for `host:port`, in their
    /// order. When none is left, the error is the refusal of the first one.
    fn permitted(
        &self,
        host: &str,
        port: u16,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, ConnectError> {
        let destinations = &self.inner.destinations;
        let mut host_addresses = HostAddresses::of_this_host();
        let mut first_refusal = None;
        let permitted: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(
                |addr| match destinations.check(addr.ip(), host, port, &mut host_addresses) {
                    Ok(()) => true,
                    Err(refusal) => {
                        first_refusal.get_or_insert(refusal);
                        false
                    }
                },
            )
            .collect();
        match first_refusal {
            Some(refusal) if permitted.is_empty() => Err(destinations
                .explain(refusal, &mut host_addresses)
                .into_error(host, port)),
            _ => Ok(permitted),
        }
    }

    async fn connect(self, uri: Uri) -> Result<UpstreamIo, ConnectError> {
        let bad = || ConnectError::BadUri(uri.to_string());
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = normalize_host(uri.host().ok_or_else(bad)?);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = self.tcp(&host, port).await?;
        if !https {
            return Ok(UpstreamIo::Plain(TokioIo::new(tcp)));
        }
        let server_name = ServerName::try_from(host.clone()).map_err(|_| bad())?;
        let tls = tokio::time::timeout(
            TLS_HANDSHAKE_TIMEOUT,
            self.inner.tls.connect(server_name, tcp),
        )
        .await
        .map_err(|_| ConnectError::Timeout { host: host.clone() })?
        .map_err(|source| ConnectError::Tls { host, source })?;
        Ok(UpstreamIo::Tls(Box::new(TokioIo::new(tls))))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamIo;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// Everything the proxy needs to reach upstreams.
pub(crate) struct Upstream {
    /// Offers HTTP/2 and HTTP/1.1 (ALPN) and pools connections per host.
    pub client: Client<Connector, RequestBody>,
    /// HTTP/1.1 only: protocol upgrades (WebSocket) need an HTTP/1.1 connection.
    pub upgrade_client: Client<Connector, RequestBody>,
    /// For passthrough tunnels.
    pub connector: Connector,
}

impl Upstream {
    pub fn new(
        extra_roots_pem: &[u8],
        connect_to: Vec<ConnectTo>,
        destinations: Destinations,
    ) -> Result<Self, ProxyError> {
        let connect_to: Arc<[ConnectTo]> = connect_to.into();
        let destinations = Arc::new(destinations);
        let roots = Arc::new(root_store(extra_roots_pem)?);
        let config = |alpn: &[&[u8]]| -> Result<Arc<ClientConfig>, ProxyError> {
            let mut config = ClientConfig::builder_with_provider(crate::ca::provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        let any = Connector::new(
            config(&[b"h2", b"http/1.1"])?,
            connect_to.clone(),
            destinations.clone(),
        );
        let h1 = Connector::new(config(&[b"http/1.1"])?, connect_to, destinations);
        let client = |connector: Connector| {
            Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .http1_max_buf_size(MAX_CONNECTION_BUFFER)
                .build(connector)
        };
        Ok(Upstream {
            client: client(any.clone()),
            upgrade_client: client(h1),
            connector: any,
        })
    }
}

/// The TLS client configuration the proxy uses towards real servers, for other HTTPS
/// clients of moat that must trust exactly what the proxy trusts (grant validation
/// requests): the system roots plus `extra_roots_pem`, the aws-lc-rs provider (passed
/// explicitly, so no process-wide provider is needed), ALPN `h2` and `http/1.1`.
pub fn upstream_tls_config(extra_roots_pem: &[u8]) -> Result<ClientConfig, ProxyError> {
    let mut config = ClientConfig::builder_with_provider(crate::ca::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(extra_roots_pem)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The system's trusted roots, read once per process, and what could not be read.
fn system_roots() -> &'static (Vec<CertificateDer<'static>>, String) {
    static SYSTEM: OnceLock<(Vec<CertificateDer<'static>>, String)> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        let errors = loaded
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        (loaded.certs, errors)
    })
}

/// Start reading the system's roots on a thread of their own, so that building a proxy
/// later finds them read: a run's supervisor calls this first thing, and the ~8 ms of
/// reading and parsing the bundle overlap its talk with Docker instead of delaying the
/// container's start.
pub fn preload_system_roots() {
    let _ = std::thread::Builder::new()
        .name("system-roots".into())
        .spawn(|| {
            system_roots();
        });
}

/// The system roots plus the extra PEM certificates.
fn root_store(extra_pem: &[u8]) -> Result<RootCertStore, ProxyError> {
    let (system, system_errors) = system_roots();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system.iter().cloned());
    for extra in parse_extra_roots(extra_pem)? {
        roots.add(extra).map_err(|e| ConfigError::ExtraRoots {
            reason: format!("a certificate cannot be used as a root: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(ProxyError::NoUpstreamRoots {
            detail: if system_errors.is_empty() {
                String::new()
            } else {
                format!(" (the system store: {system_errors})")
            },
        });
    }
    Ok(roots)
}

fn parse_extra_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::ExtraRoots {
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::ExtraRoots {
            reason: "no `-----BEGIN CERTIFICATE-----` block found".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_be_pem_certificates() {
        assert!(parse_extra_roots(b"").unwrap().is_empty());
        assert!(parse_extra_roots(b" \n").unwrap().is_empty());
        let err = parse_extra_roots(b"hello").unwrap_err();
        assert!(
            err.to_string().contains("no `-----BEGIN CERTIFICATE-----`"),
            "{err}"
        );
        let ca = crate::ca::CertificateAuthority::ephemeral().unwrap();
        let two = format!("{}{}", ca.cert_pem(), ca.cert_pem());
        assert_eq!(parse_extra_roots(two.as_bytes()).unwrap().len(), 2);
        let broken = ca.cert_pem().replace("\n-----END", "@@\n-----END");
        assert!(parse_extra_roots(broken.as_bytes()).is_err());
    }

    fn no_roots() -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(crate::ca::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    fn connector(allow: &[&str]) -> Connector {
        let destinations = Destinations {
            allow: allow
                .iter()
                .map(|p| moat_hosts::HostPattern::parse(p).unwrap())
                .collect(),
            ..Destinations::default()
        };
        Connector::new(no_roots(), Vec::new().into(), Arc::new(destinations))
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn host_local_destinations_are_refused_unless_rerouted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let entry = ConnectTo::parse(&format!("upstream.test:{port}:127.0.0.1:{port}")).unwrap();
        let connector = Connector::new(
            no_roots(),
            vec![entry].into(),
            Arc::new(Destinations::default()),
        );
        let err = connector.tcp("127.0.0.1", port).await.unwrap_err();
        assert!(matches!(err, ConnectError::HostLocal { .. }), "{err}");
        assert!(err.to_string().contains("does not connect there"));
        connector.tcp("upstream.test", port).await.unwrap();
    }

    #[tokio::test]
    async fn private_destinations_are_refused_before_any_connection() {
        let err = connector(&[]).tcp("10.1.2.3", 8000).await.unwrap_err();
        assert!(
            matches!(err, ConnectError::Private { port: 8000, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "`10.1.2.3` is a private address (RFC 1918); moat does not connect to private \
             networks unless allowed"
        );
        let err = connector(&["10.0.0.0/8:8000"])
            .tcp("fd00::1", 443)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("(unique local, fc00::/7)"),
            "{err}"
        );
    }

    #[test]
    fn refused_addresses_are_skipped_and_the_first_refusal_is_reported() {
        let c = connector(&[]);
        let kept = c
            .permitted(
                "mixed.test",
                443,
                addrs(&["10.0.0.1:443", "127.0.0.1:443", "140.82.112.5:443"]),
            )
            .unwrap();
        assert_eq!(kept, addrs(&["140.82.112.5:443"]));

        let err = c
            .permitted(
                "api.corp.test",
                443,
                addrs(&["10.1.2.3:443", "127.0.0.1:443"]),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`api.corp.test` is at 10.1.2.3, a private address (RFC 1918); moat does not \
             connect to private networks unless allowed"
        );
        let err = c
            .permitted("local.test", 443, addrs(&["[::1]:443", "10.1.2.3:443"]))
            .unwrap_err();
        assert!(matches!(err, ConnectError::HostLocal { .. }), "{err}");

        let allowed = connector(&["api.corp.test"]);
        let kept = allowed
            .permitted(
                "api.corp.test",
                443,
                addrs(&["127.0.0.1:443", "10.1.2.3:443"]),
            )
            .unwrap();
        assert_eq!(kept, addrs(&["10.1.2.3:443"]));
        assert!(
            c.permitted("none.test", 443, Vec::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn private_messages_name_the_host_and_the_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            private_message(
                "64:ff9b::a00:1",
                ip("10.0.0.1"),
                "RFC 1918",
                Some(ip("64:ff9b::a00:1"))
            ),
            "`64:ff9b::a00:1` leads to 10.0.0.1, a private address (RFC 1918); moat does not \
             connect to private networks unless allowed"
        );
        assert_eq!(
            private_message(
                "nat.test",
                ip("10.0.0.1"),
                "RFC 1918",
                Some(ip("64:ff9b::a00:1"))
            ),
            "`nat.test` is at 64:ff9b::a00:1, which leads to 10.0.0.1, a private address \
             (RFC 1918); moat does not connect to private networks unless allowed"
        );
    }
}
