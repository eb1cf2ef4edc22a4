//! Serving clients: the proxy port (proxy authentication, CONNECT, absolute-form
//! requests), the network policy check, and CONNECT tunnels, intercepted (TLS terminated
//! with a leaf for the host, then HTTP/2 or HTTP/1.1) or passed through.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AUTH_REQUIRED_MESSAGE, ProxyAuth};
use crate::body::ProxyBody;
use crate::ca::CertificateAuthority;
use crate::events::{EventSink, Exchange, redacted_headers};
use crate::forward::{forward, path_of, relay};
use crate::io::Prefixed;
use crate::local::{
    Unavailable, bad_request, blocked, connect_failure, finish_local, text_response, unavailable,
};
use crate::policy::Policy;
use crate::rules::GrantRule;
use crate::upstream::Upstream;
use moat_hosts::{HostPattern, is_valid_host as is_valid_request_host, normalize_host};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may wait after CONNECT before it starts its TLS handshake.
const TUNNEL_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_CACHED_SERVER_CONFIGS: usize = 4096;

/// Everything request handling needs, shared by all connections of one proxy.
pub(crate) struct Shared {
    pub auth: ProxyAuth,
    pub rules: Vec<GrantRule>,
    pub granted: Vec<HostPattern>,
    pub policy: Policy,
    pub passthrough: Vec<HostPattern>,
    /// `ssh:` grants' hosts and ports: raw tunnels (see `ssh.rs`).
    pub ssh: Vec<HostPattern>,
    pub ssh_tap: Option<Arc<dyn crate::SshTap>>,
    pub request_gate: Option<Arc<dyn crate::RequestGate>>,
    /// See `ProxyConfig::cleartext_local`.
    pub cleartext_local: Vec<HostPattern>,
    pub upstream: Upstream,
    pub tls: ServerTls,
    pub sink: Arc<dyn EventSink>,
    pub lifecycle: Lifecycle,
    /// One permit per client connection being served ([`crate::MAX_CLIENT_CONNECTIONS`]).
    pub connections: Arc<tokio::sync::Semaphore>,
    /// See `ProxyConfig::records_unwritable`.
    pub records_unwritable: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// One permit per open CONNECT tunnel (as many as client connections): past them a
    /// CONNECT gets a 503.
    pub tunnels: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// The run's records cannot be written now: nothing is forwarded.
    pub fn records_unwritable(&self) -> bool {
        self.records_unwritable
            .as_ref()
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// The proxy's tasks and the two signals that end them: `stop` (stop accepting, let
/// requests in flight finish, close tunnels) and `kill` (drop everything now).
#[derive(Clone)]
pub(crate) struct Lifecycle {
    pub stop: CancellationToken,
    pub kill: CancellationToken,
    pub tracker: TaskTracker,
}

impl Lifecycle {
    pub fn new() -> Self {
        Lifecycle {
            stop: CancellationToken::new(),
            kill: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let kill = self.kill.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = task => {}
                () = kill.cancelled() => {}
            }
        });
    }
}

/// The TLS configurations the proxy serves to clients, one per intercepted host.
pub(crate) struct ServerTls {
    ca: Arc<CertificateAuthority>,
    provider: Arc<CryptoProvider>,
    configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ServerTls {
    pub fn new(ca: Arc<CertificateAuthority>) -> Self {
        ServerTls {
            ca,
            provider: crate::ca::provider(),
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration for a tunnel to `host`. The certificate is chosen by the
    /// CONNECT host (whose policy was checked), not by the client's SNI.
    fn config_for(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = configs.get(host) {
            return Ok(found.clone());
        }
        let key = self.ca.leaf(host).map_err(|e| e.to_string())?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedCert(key)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        if configs.len() >= MAX_CACHED_SERVER_CONFIGS {
            configs.clear();
        }
        configs.insert(host.to_owned(), config.clone());
        Ok(config)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub(crate) fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The host and port a request or tunnel goes to; the host is normalized.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    pub(crate) fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `host:port`, as in CONNECT.
    pub(crate) fn label(&self) -> String {
        format!("{}:{}", self.host_for_url(), self.port)
    }

    /// The URL authority: the port only when it is not the scheme's default.
    pub(crate) fn authority(&self, scheme: Scheme) -> String {
        if self.port == scheme.default_port() {
            self.host_for_url()
        } else {
            self.label()
        }
    }

    fn from_authority(authority: &Authority, default_port: Option<u16>) -> Option<Self> {
        let host = normalize_host(authority.host());
        let port = authority.port_u16().or(default_port)?;
        (is_valid_request_host(&host) && port > 0).then_some(Target { host, port })
    }
}

fn http1_server() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(crate::upstream::MAX_CONNECTION_BUFFER);
    builder
}

/// Serve one client connection to the proxy port (HTTP/1.1: CONNECT or absolute-form).
pub(crate) async fn serve_client<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let lifecycle = shared.lifecycle.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle_proxy_request(shared, req).await) }
    });
    let conn = http1_server()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    drive(conn, |c| c.graceful_shutdown(), &lifecycle).await;
}

/// Run a connection until it ends; on `stop`, ask it to finish what is in flight.
async fn drive<C, E>(conn: C, graceful: impl FnOnce(Pin<&mut C>), lifecycle: &Lifecycle)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "proxy connection ended with an error");
            }
            return;
        }
        () = lifecycle.stop.cancelled() => {}
    }
    graceful(conn.as_mut());
    let _ = conn.await;
}

async fn handle_proxy_request(shared: Arc<Shared>, req: Request<Incoming>) -> Response<ProxyBody> {
    if !shared.auth.check(req.headers()) {
        let exchange = Exchange::new(
            shared.sink.clone(),
            req.method().as_str(),
            req.uri().to_string(),
            redacted_headers(req.headers(), &[]),
        );
        let mut response = text_response(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            AUTH_REQUIRED_MESSAGE.to_owned(),
        );
        response.headers_mut().insert(
            http::header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"moat\""),
        );
        return finish_local(
            &exchange,
            response,
            false,
            Some("proxy authentication required".into()),
        );
    }
    if shared.records_unwritable() {
        let exchange = Exchange::new(
            shared.sink.clone(),
            req.method().as_str(),
            req.uri().to_string(),
            BTreeMap::new(),
        );
        return unavailable(&exchange, Unavailable::RecordsUnwritable);
    }
    if req.method() == Method::CONNECT {
        handle_connect(shared, req).await
    } else {
        handle_absolute(shared, req).await
    }
}

async fn handle_connect(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<ProxyBody> {
    let Some(target) = req
        .uri()
        .authority()
        .and_then(|a| Target::from_authority(a, None))
    else {
        return bad_request(
            &shared,
            &req,
            "moat: CONNECT needs a `host:port` target\n".into(),
        );
    };
    // Each tunnel holds a permit while it is open: hyper hands the upgraded connection
    // over and ends the client connection (and its permit) once the tunnel starts.
    let Ok(permit) = shared.tunnels.clone().try_acquire_owned() else {
        let exchange = Exchange::new(
            shared.sink.clone(),
            "CONNECT",
            target.label(),
            redacted_headers(req.headers(), &[]),
        );
        return unavailable(&exchange, Unavailable::TooManyTunnels);
    };
    let mut tunnel = Some(permit);
    if let Some(response) = crate::ssh::connect(&shared, &mut req, &target, &mut tunnel).await {
        return response;
    }
    let label = target.label();
    if !shared
        .policy
        .allows(&target.host, target.port, &shared.granted)
    {
        return blocked(&shared, &req, label, &target);
    }

    if shared
        .passthrough
        .iter()
        .any(|p| p.matches_normalized(&target.host, target.port))
    {
        let exchange = Exchange::new(
            shared.sink.clone(),
            "CONNECT",
            label,
            redacted_headers(req.headers(), &[]),
        );
        // Connect before answering, so a client learns of a failure from the CONNECT.
        let upstream = match shared
            .upstream
            .connector
            .tcp(&target.host, target.port)
            .await
        {
            Ok(stream) => stream,
            Err(e) => return connect_failure(&exchange, &target.label(), &e),
        };
        exchange.respond(200, BTreeMap::new());
        let on_upgrade = hyper::upgrade::on(&mut req);
        let stop = shared.lifecycle.stop.clone();
        shared.lifecycle.spawn(async move {
            let _tunnel = tunnel;
            match on_upgrade.await {
                Ok(upgraded) => relay(TokioIo::new(upgraded), upstream, &exchange, &stop).await,
                Err(e) => {
                    exchange.note_error(format!("the client connection was not upgraded: {e}"));
                    exchange.stream_closed(0, 0);
                }
            }
        });
        return Response::new(ProxyBody::Empty);
    }

    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_shared = shared.clone();
    shared.lifecycle.spawn(async move {
        let _tunnel = tunnel;
        if let Ok(upgraded) = on_upgrade.await {
            intercept(task_shared, target, TokioIo::new(upgraded)).await;
        }
    });
    Response::new(ProxyBody::Empty)
}

/// Terminate the client's TLS inside a CONNECT tunnel with a certificate for the
/// target, then serve HTTP/2 or HTTP/1.1 (as ALPN decided) and forward each request.
/// A tunnel whose first byte is not a TLS handshake carries plain HTTP.
async fn intercept<I>(shared: Arc<Shared>, target: Target, mut io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 1];
    let n = match tokio::time::timeout(TUNNEL_FIRST_BYTE_TIMEOUT, io.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => return,
    };
    let io = Prefixed::new(Bytes::copy_from_slice(&first[..n]), io);
    const TLS_HANDSHAKE_RECORD: u8 = 0x16;
    if first[0] != TLS_HANDSHAKE_RECORD {
        serve_tunnel(shared, target, Scheme::Http, io, false).await;
        return;
    }
    let config = match shared.tls.config_for(&target.host) {
        Ok(config) => config,
        Err(e) => return tunnel_failure(&shared, &target, e),
    };
    let accepted = tokio::time::timeout(
        CLIENT_TLS_HANDSHAKE_TIMEOUT,
        TlsAcceptor::from(config).accept(io),
    )
    .await;
    let tls = match accepted {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            return tunnel_failure(
                &shared,
                &target,
                format!("TLS handshake with the client failed (does it trust the moat CA?): {e}"),
            );
        }
        Err(_) => {
            return tunnel_failure(
                &shared,
                &target,
                "TLS handshake with the client timed out".into(),
            );
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_tunnel(shared, target, Scheme::Https, tls, h2).await;
}

fn tunnel_failure(shared: &Shared, target: &Target, error: String) {
    let exchange = Exchange::new(
        shared.sink.clone(),
        "CONNECT",
        target.label(),
        BTreeMap::new(),
    );
    exchange.local_response(200, 0, false, Some(error));
}

async fn serve_tunnel<I>(shared: Arc<Shared>, target: Target, scheme: Scheme, io: I, h2: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let lifecycle = shared.lifecycle.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let target = target.clone();
        async move { Ok::<_, Infallible>(handle_tunneled_request(shared, target, scheme, req).await) }
    });
    if h2 {
        let conn = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), service);
        drive(conn, |c| c.graceful_shutdown(), &lifecycle).await;
    } else {
        let conn = http1_server()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        drive(conn, |c| c.graceful_shutdown(), &lifecycle).await;
    }
}

async fn handle_tunneled_request(
    shared: Arc<Shared>,
    target: Target,
    scheme: Scheme,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    if req.method() == Method::CONNECT {
        let exchange = Exchange::new(
            shared.sink.clone(),
            "CONNECT",
            req.uri().to_string(),
            redacted_headers(req.headers(), &[]),
        );
        let response = text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "moat: CONNECT inside a tunnel is not supported\n".into(),
        );
        return finish_local(&exchange, response, false, None);
    }
    // Credentials follow the host the tunnel was opened (and policy-checked) for; a
    // request naming another host on this connection must not borrow them.
    if let Some(host) = request_host(&req)
        && normalize_host(&host) != target.host
    {
        let exchange = Exchange::new(
            shared.sink.clone(),
            req.method().as_str(),
            format!(
                "{}://{}{}",
                scheme.as_str(),
                target.authority(scheme),
                path_of(req.uri())
            ),
            redacted_headers(req.headers(), &[]),
        );
        let response = text_response(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "moat: this connection was opened for `{}`; a request for `{host}` needs its own CONNECT\n",
                target.host
            ),
        );
        return finish_local(
            &exchange,
            response,
            false,
            Some("host does not match the tunnel".into()),
        );
    }
    forward(shared, scheme, target, req).await
}

/// The host a request inside a tunnel names: the URI authority (HTTP/2, absolute-form)
/// or else the `Host` header.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    if let Some(host) = req.uri().host() {
        return Some(host.to_owned());
    }
    let header = req.headers().get(HOST)?.to_str().ok()?;
    let authority: Authority = header.parse().ok()?;
    Some(authority.host().to_owned())
}

/// A plain-HTTP proxy request: `GET http://host/path` (or `https://`, which the proxy
/// then fetches over TLS).
async fn handle_absolute(shared: Arc<Shared>, req: Request<Incoming>) -> Response<ProxyBody> {
    let scheme = match req.uri().scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
        Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
        _ => {
            return bad_request(
                &shared,
                &req,
                "moat: this is a proxy; send `CONNECT host:port` or a request with an absolute `http://` URL\n"
                    .into(),
            );
        }
    };
    let Some(target) = req
        .uri()
        .authority()
        .and_then(|a| Target::from_authority(a, Some(scheme.default_port())))
    else {
        return bad_request(
            &shared,
            &req,
            "moat: the request URL has no valid host\n".into(),
        );
    };
    if !shared
        .policy
        .allows(&target.host, target.port, &shared.granted)
    {
        let url = format!(
            "{}://{}{}",
            scheme.as_str(),
            target.authority(scheme),
            path_of(req.uri())
        );
        return blocked(&shared, &req, url, &target);
    }
    forward(shared, scheme, target, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_print_as_urls_and_connect_labels() {
        let v4 = Target {
            host: "api.test".into(),
            port: 443,
        };
        assert_eq!(v4.authority(Scheme::Https), "api.test");
        assert_eq!(v4.authority(Scheme::Http), "api.test:443");
        assert_eq!(v4.label(), "api.test:443");
        let v6 = Target {
            host: "::1".into(),
            port: 8443,
        };
        assert_eq!(v6.authority(Scheme::Https), "[::1]:8443");
    }

    #[test]
    fn targets_come_from_valid_authorities_only() {
        let parse = |s: &str, port| Target::from_authority(&s.parse().unwrap(), port);
        let t = parse("API.Test.:443", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("api.test", 443));
        assert!(parse("api.test", None).is_none(), "CONNECT needs a port");
        assert_eq!(parse("api.test", Some(80)).unwrap().port, 80);
        assert_eq!(parse("[::1]:80", None).unwrap().host, "::1");
    }

    #[test]
    fn request_host_prefers_the_uri_then_the_host_header() {
        let req = Request::builder()
            .uri("/x")
            .header(HOST, "Api.Test:443")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("Api.Test"));
        let h2 = Request::builder().uri("https://b.test/x").body(()).unwrap();
        assert_eq!(request_host(&h2).as_deref(), Some("b.test"));
        let none = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(request_host(&none), None);
    }
}
