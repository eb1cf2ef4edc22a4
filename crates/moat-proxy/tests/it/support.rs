//! Test support: a test CA for fake upstreams, HTTPS/HTTP upstream servers on 127.0.0.1,
//! a client that speaks to the proxy like a container would, and a proxy harness.
//!
//! Shared with the benchmark through `#[path]`, so it must not depend on test-only
//! crates.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Version};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use moat_proxy::{CertificateAuthority, NetworkEvent, Proxy, ProxyConfig, ProxyHandle, Secret};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub type TestBody = BoxBody<Bytes, Infallible>;

/// Process-wide provider for test code that builds its own rustls configs the short
/// way; the library itself never relies on it.
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub fn empty() -> TestBody {
    Empty::new().boxed()
}

pub fn full(text: impl Into<Bytes>) -> TestBody {
    Full::new(text.into()).boxed()
}

/// A body fed from a channel: each message is one frame, sent when the test says so.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// The CA of the fake upstreams. The proxy trusts it only through `extra_roots_pem`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pub pem: String,
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "moat test upstream CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn server_config(&self, hosts: &[&str], alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), self.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// What an upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
}

pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
        + Send
        + Sync,
>;

pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// Answers every request with `hello from upstream` as text.
pub fn hello() -> Handler {
    handler(|_req| async {
        Response::builder()
            .header("content-type", "text/plain")
            .header("set-cookie", "session=upstream-secret")
            .body(full("hello from upstream"))
            .unwrap()
    })
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the upstream saw no request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTPS server on 127.0.0.1 with a certificate for `hosts` from `ca`, speaking
/// HTTP/2 or HTTP/1.1 as ALPN decides.
pub async fn https_upstream(
    ca: &TestCa,
    hosts: &[&str],
    alpn: &[&[u8]],
    handler: Handler,
) -> Upstream {
    let acceptor = TlsAcceptor::from(ca.server_config(hosts, alpn));
    serve_upstream(Some(acceptor), handler).await
}

/// A plain HTTP/1.1 server on 127.0.0.1.
pub async fn http_upstream(handler: Handler) -> Upstream {
    serve_upstream(None, handler).await
}

async fn serve_upstream(acceptor: Option<TlsAcceptor>, handler: Handler) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let task_seen = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let seen = task_seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    seen.lock().unwrap().push(Seen {
                        method: req.method().to_string(),
                        uri: req.uri().to_string(),
                        version: req.version(),
                        headers: req.headers().clone(),
                    });
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(tls), service)
                                .await;
                        } else {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), service)
                                .with_upgrades()
                                .await;
                        }
                    }
                    None => {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    }
                }
            });
        }
    });
    Upstream { addr, seen, task }
}

/// A response head and body read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head (and a `Content-Length` body) without buffering past it.
pub async fn read_raw_response(stream: &mut TcpStream) -> RawResponse {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = stream.read(&mut byte).await.unwrap();
        assert!(
            n > 0,
            "connection closed in the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.unwrap();
    RawResponse {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// A client of the proxy, as a process in the container would be.
#[derive(Clone)]
pub struct ProxyClient {
    pub proxy: SocketAddr,
    /// `None` sends no `Proxy-Authorization`.
    pub token: Option<String>,
    pub trusted: Arc<RootCertStore>,
}

impl ProxyClient {
    pub fn proxy_authorization(&self) -> Option<String> {
        use base64::Engine as _;
        self.token.as_ref().map(|t| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("moat:{t}"))
            )
        })
    }

    /// Send `CONNECT authority`; the stream is the tunnel if the status is 200.
    pub async fn connect(&self, authority: &str) -> (RawResponse, TcpStream) {
        let mut stream = TcpStream::connect(self.proxy).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = self.proxy_authorization() {
            request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_raw_response(&mut stream).await;
        (response, stream)
    }

    pub fn tls_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.trusted.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS session through a CONNECT tunnel, trusting only `self.trusted`.
    pub async fn tunnel_tls(
        &self,
        authority: &str,
        alpn: &[&[u8]],
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let (response, stream) = self.connect(authority).await;
        assert_eq!(response.status, 200, "CONNECT {authority}: {response:?}");
        let host = authority.rsplit_once(':').unwrap().0;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        TlsConnector::from(self.tls_config(alpn))
            .connect(ServerName::try_from(host.to_owned()).unwrap(), stream)
            .await
            .unwrap()
    }

    /// An HTTP/1.1 connection through an intercepted tunnel.
    pub async fn h1(&self, authority: &str) -> hyper::client::conn::http1::SendRequest<TestBody> {
        let tls = self.tunnel_tls(authority, &[b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn.with_upgrades());
        sender
    }

    /// An HTTP/2 connection through an intercepted tunnel.
    pub async fn h2(&self, authority: &str) -> hyper::client::conn::http2::SendRequest<TestBody> {
        let tls = self.tunnel_tls(authority, &[b"h2", b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    }

    /// An HTTP/1.1 connection to the proxy itself, for absolute-form requests.
    pub async fn plain(&self) -> hyper::client::conn::http1::SendRequest<TestBody> {
        let stream = TcpStream::connect(self.proxy).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn.with_upgrades());
        sender
    }
}

pub async fn body_text(response: Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A running proxy with its event stream, a client holding its token, and the CA of
/// the fake upstreams.
pub struct Harness {
    pub handle: ProxyHandle,
    pub events: mpsc::UnboundedReceiver<NetworkEvent>,
    pub token: Secret,
    pub client: ProxyClient,
    pub ca: Arc<CertificateAuthority>,
}

impl Harness {
    /// Start a proxy on 127.0.0.1:0 that trusts `upstream_ca` as an extra root.
    pub async fn start(upstream_ca: &TestCa, configure: impl FnOnce(&mut ProxyConfig)) -> Self {
        install_provider();
        let ca = Arc::new(CertificateAuthority::ephemeral().unwrap());
        let token = Secret::random_token().unwrap();
        let mut config = ProxyConfig::new(token.clone(), ca.clone());
        config.extra_roots_pem = upstream_ca.pem.clone().into_bytes();
        configure(&mut config);
        let (tx, events) = mpsc::unbounded_channel();
        let handle = Proxy::start(config, "127.0.0.1:0".parse().unwrap(), tx)
            .await
            .unwrap();
        let mut trusted = RootCertStore::empty();
        trusted.add(ca.cert_der().clone()).unwrap();
        let client = ProxyClient {
            proxy: handle.local_addr(),
            token: Some(token.expose().to_owned()),
            trusted: Arc::new(trusted),
        };
        Harness {
            handle,
            events,
            token,
            client,
            ca,
        }
    }

    pub async fn next_event(&mut self) -> NetworkEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("no event within 10 s")
            .expect("event channel closed")
    }

    /// No further event arrives within a short while.
    pub async fn assert_no_event(&mut self) {
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), self.events.recv()).await
        {
            panic!("unexpected event: {event:?}");
        }
    }
}

/// `connect_to` entries sending `host:443` to a local port.
pub fn route(host: &str, port: u16) -> moat_proxy::ConnectTo {
    moat_proxy::ConnectTo::parse(&format!("{host}:443:127.0.0.1:{port}")).unwrap()
}
