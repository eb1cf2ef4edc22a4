//! What the proxy does with each client connection and request: authenticate, apply the
//! network policy, open CONNECT tunnels (intercepted or passed through), and forward
//! requests upstream with the grant's credentials, streaming both ways.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AUTH_REQUIRED_MESSAGE, ProxyAuth};
use crate::body::{CaptureBody, ProxyBody};
use crate::ca::CertificateAuthority;
use crate::events::{Capture, EventSink, Exchange, Side, redacted_headers};
use crate::headers::{is_upgrade_request, strip_hop_by_hop};
use crate::io::{Counted, Prefixed};
use crate::policy::{
    HostPattern, NetworkPolicy, blocked_message, is_valid_request_host, normalize_host,
};
use crate::rules::{self, GrantRule, Injected};
use crate::upstream::{ConnectError, Upstream};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may wait after CONNECT before it starts its TLS handshake.
const TUNNEL_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_CACHED_SERVER_CONFIGS: usize = 4096;

/// The header that marks a response the proxy made to refuse a request.
pub const BLOCKED_HEADER: &str = "x-moat-blocked";

/// Everything request handling needs, shared by all connections of one proxy.
pub(crate) struct Shared {
    pub auth: ProxyAuth,
    pub rules: Vec<GrantRule>,
    pub granted: Vec<HostPattern>,
    pub policy: NetworkPolicy,
    pub passthrough: Vec<HostPattern>,
    pub upstream: Upstream,
    pub tls: ServerTls,
    pub sink: Arc<dyn EventSink>,
    pub lifecycle: Lifecycle,
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
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The host and port a request or tunnel goes to; the host is normalized.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
}

impl Target {
    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `host:port`, as in CONNECT.
    fn label(&self) -> String {
        format!("{}:{}", self.host_for_url(), self.port)
    }

    /// The URL authority: the port only when it is not the scheme's default.
    fn authority(&self, scheme: Scheme) -> String {
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
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// Serve one client connection to the proxy port (HTTP/1.1: CONNECT or absolute-form).
pub(crate) async fn serve_client(shared: Arc<Shared>, stream: TcpStream) {
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

fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// Send a request upstream and stream the answer back: hop-by-hop headers dropped, the
/// grant's rule applied (only over TLS), bodies sampled for the trace as they pass.
async fn forward(
    shared: Arc<Shared>,
    scheme: Scheme,
    target: Target,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = path_of(req.uri()).to_owned();
    let url = format!("{}://{}{}", scheme.as_str(), target.authority(scheme), path);
    let exchange = Exchange::new(
        shared.sink.clone(),
        req.method().as_str(),
        url.clone(),
        BTreeMap::new(),
    );
    let client_headers = req.headers().clone();
    let upgrade = is_upgrade_request(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrade);
    // The upstream client writes `Host` (HTTP/1.1) or `:authority` (HTTP/2) from the URI.
    parts.headers.remove(HOST);
    // Credentials travel only over TLS to the upstream.
    let injected = match scheme {
        Scheme::Https => rules::select(&shared.rules, &target.host, target.port, &parts.headers)
            .map(|rule| rule.apply(&mut parts.headers))
            .unwrap_or_default(),
        Scheme::Http => Injected::default(),
    };
    exchange.set_request_headers(redacted_headers(&client_headers, &injected.secret_headers));
    exchange.set_grant(injected.grant);

    let Ok(uri) =
        format!("{}://{}{}", scheme.as_str(), target.authority(scheme), path).parse::<Uri>()
    else {
        let response = text_response(
            StatusCode::BAD_REQUEST,
            "moat: invalid request URL\n".into(),
        );
        return finish_local(&exchange, response, false, None);
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let capture = Capture::for_headers(&parts.headers);
    let body = CaptureBody::new(body, capture, exchange.clone(), Side::Request);
    let client = if upgrade {
        &shared.upstream.upgrade_client
    } else {
        &shared.upstream.client
    };

    let mut response = match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(e) => {
            let connect = find_source::<ConnectError>(&e);
            return upstream_failure(&exchange, &url, &error_chain(&e), connect);
        }
    };

    let status = response.status();
    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, status) {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let (mut parts, _) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, true);
        parts.version = Version::HTTP_11;
        exchange.respond(status.as_u16(), redacted_headers(&parts.headers, &[]));
        let stop = shared.lifecycle.stop.clone();
        shared.lifecycle.spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    relay(
                        TokioIo::new(client),
                        TokioIo::new(upstream),
                        &exchange,
                        &stop,
                    )
                    .await;
                }
                Err(e) => {
                    exchange.note_error(format!("the protocol switch failed: {e}"));
                    exchange.stream_closed(0, 0);
                }
            }
        });
        return Response::from_parts(parts, ProxyBody::Empty);
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    exchange.respond(status.as_u16(), redacted_headers(&parts.headers, &[]));
    let capture = Capture::for_headers(&parts.headers);
    let body = CaptureBody::new(body, capture, exchange, Side::Response);
    Response::from_parts(parts, ProxyBody::Upstream(body))
}

/// Copy bytes both ways until either side closes (or the proxy stops), then record
/// how many went each way.
async fn relay<A, B>(client: A, mut upstream: B, exchange: &Exchange, stop: &CancellationToken)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Counted::new(client);
    let result = tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => result.map(|_| ()),
        () = stop.cancelled() => Err(std::io::Error::other("closed because the proxy stopped")),
    };
    if let Err(e) = result {
        use std::io::ErrorKind::*;
        if !matches!(
            e.kind(),
            ConnectionReset | BrokenPipe | UnexpectedEof | NotConnected
        ) {
            exchange.note_error(e.to_string());
        }
    }
    exchange.stream_closed(client.read, client.written);
}

fn text_response(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Text(Some(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Record a response the proxy made itself and return it.
fn finish_local(
    exchange: &Exchange,
    response: Response<ProxyBody>,
    blocked: bool,
    error: Option<String>,
) -> Response<ProxyBody> {
    use http_body::Body as _;
    let status = response.status().as_u16();
    exchange.respond(status, redacted_headers(response.headers(), &[]));
    let len = response.body().size_hint().exact().unwrap_or(0);
    exchange.local_response(
        status,
        usize::try_from(len).unwrap_or(usize::MAX),
        blocked,
        error,
    );
    response
}

fn bad_request(shared: &Shared, req: &Request<Incoming>, message: String) -> Response<ProxyBody> {
    let exchange = Exchange::new(
        shared.sink.clone(),
        req.method().as_str(),
        req.uri().to_string(),
        redacted_headers(req.headers(), &[]),
    );
    finish_local(
        &exchange,
        text_response(StatusCode::BAD_REQUEST, message),
        false,
        None,
    )
}

fn blocked(
    shared: &Shared,
    req: &Request<Incoming>,
    url: String,
    target: &Target,
) -> Response<ProxyBody> {
    let exchange = Exchange::new(
        shared.sink.clone(),
        req.method().as_str(),
        url,
        redacted_headers(req.headers(), &[]),
    );
    let mut response = text_response(
        StatusCode::FORBIDDEN,
        blocked_message(&target.host, target.port),
    );
    response
        .headers_mut()
        .insert(BLOCKED_HEADER, HeaderValue::from_static("network-policy"));
    finish_local(&exchange, response, true, None)
}

fn connect_failure(exchange: &Exchange, label: &str, error: &ConnectError) -> Response<ProxyBody> {
    upstream_failure(exchange, label, &error_chain(error), Some(error))
}

/// The answer when the upstream cannot be reached: 403 for a host-local destination,
/// 504 for a timeout, 502 otherwise, each saying why.
fn upstream_failure(
    exchange: &Exchange,
    url: &str,
    chain: &str,
    connect: Option<&ConnectError>,
) -> Response<ProxyBody> {
    match connect {
        Some(e @ ConnectError::HostLocal { .. }) => {
            let mut response = text_response(
                StatusCode::FORBIDDEN,
                format!(
                    "moat: request blocked\n\n{e}.\nThe proxy does not reach services on its own host \
                     (loopback, link-local and its listening address).\n"
                ),
            );
            response
                .headers_mut()
                .insert(BLOCKED_HEADER, HeaderValue::from_static("host-local"));
            finish_local(exchange, response, true, Some(e.to_string()))
        }
        Some(ConnectError::Timeout { .. }) => {
            let response = text_response(
                StatusCode::GATEWAY_TIMEOUT,
                format!("moat: {url} did not answer in time: {chain}\n"),
            );
            finish_local(exchange, response, false, Some(chain.to_owned()))
        }
        Some(ConnectError::Tls { .. }) => {
            let response = text_response(
                StatusCode::BAD_GATEWAY,
                format!(
                    "moat: cannot reach {url}: {chain}\n\nIf this network inspects TLS with its own CA, \
                     give that CA to moat in `MOAT_EXTRA_CA_CERTS`.\n"
                ),
            );
            finish_local(exchange, response, false, Some(chain.to_owned()))
        }
        _ => {
            let response = text_response(
                StatusCode::BAD_GATEWAY,
                format!("moat: cannot reach {url}: {chain}\n"),
            );
            finish_local(exchange, response, false, Some(chain.to_owned()))
        }
    }
}

fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line, without repeating a cause a message already
/// quotes.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
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

    #[test]
    fn error_chain_does_not_repeat_causes() {
        let inner = std::io::Error::other("connection refused");
        let outer = ConnectError::Connect {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: inner,
        };
        assert_eq!(
            error_chain(&outer),
            "cannot connect to `127.0.0.1:1`: connection refused"
        );
    }
}
