//! Shared test tools. A fake HTTPS upstream stands in for the internet (`api.github.com`,
//! `api.anthropic.com`, ...): it listens on 127.0.0.1 with a certificate from its own test
//! CA, answers through a handler the test gives, and records every request it saw.
//!
//! Blocking API (it runs its own runtime on a thread), for the end-to-end tests that drive
//! the `moat` binary.
//!
//! [`anthropic::FakeAnthropic`] builds on it: a fake Anthropic API that the real Claude
//! Code CLI works against (also served by the `fake-anthropic` binary, for benchmarks).
//!
//! A handler answers with a whole [`Reply`] or, through [`Answer`], with a body streamed in
//! timed chunks (Server-Sent Events) or a WebSocket echo.
//!
//! [`mirror::ForwardingMirror`] is of another kind: a plain-HTTP package mirror that
//! forwards to the real registries, for image builds that may reach nothing else.

#![allow(clippy::disallowed_methods)] // a test crate: it reads the environment the tests were given

pub mod anthropic;
pub mod mcp;
pub mod mirror;
mod streams;

pub use anthropic::{FakeAnthropic, MessagesRequest};
pub use mcp::FakeMcp;
pub use mirror::{ForwardingMirror, Route, Served};
pub use streams::{Answer, Streamed, accept_key};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// A request as the fake upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names in lowercase; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the handler answers: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "application/json", body.into().into_bytes())
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "text/plain", body.into().into_bytes())
    }

    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        }
    }
}

/// Answer `request` with `git http-backend` serving the repositories under `root`: a
/// git smart-HTTP server, for clone/fetch/push tests.
pub fn git_http_backend(root: &Path, request: &SeenRequest) -> Reply {
    use std::io::Write;
    let (path, query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    let mut child = std::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &request.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", request.header("content-type").unwrap_or(""))
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .env("REMOTE_USER", "moat-test")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git http-backend");
    let mut stdin = child.stdin.take().expect("piped");
    let body = request.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output().expect("git http-backend output");
    let _ = writer.join();
    // CGI: headers, a blank line, the body.
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, gap)) = split else {
        return Reply::text(500, "git http-backend gave no headers");
    };
    let mut reply = Reply {
        status: 200,
        headers: Vec::new(),
        body: out[end + gap..].to_vec(),
    };
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        if name.eq_ignore_ascii_case("status") {
            reply.status = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
        } else {
            reply.headers.push((name.to_owned(), value));
        }
    }
    reply
}

type Handler = Arc<dyn Fn(&SeenRequest) -> Answer + Send + Sync>;

/// A running fake upstream. Dropping it stops it.
pub struct FakeUpstream {
    port: u16,
    ca_file: PathBuf,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    /// Serve HTTPS for `hosts` (the names its certificate carries) on a free port. The
    /// handler answers with a [`Reply`] or an [`Answer`].
    pub fn start<A: Into<Answer>>(
        hosts: &[&str],
        handler: impl Fn(&SeenRequest) -> A + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(0, hosts, handler, true)
    }

    /// [`FakeUpstream::start`] on port `port` of 127.0.0.1 (0: a free one), for a client
    /// that cannot be told a port (one that reaches `https://host/` through `--add-host`).
    pub fn start_on<A: Into<Answer>>(
        port: u16,
        hosts: &[&str],
        handler: impl Fn(&SeenRequest) -> A + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(port, hosts, handler, true)
    }

    /// [`FakeUpstream::start`] without TLS: plain HTTP on 127.0.0.1 (a server on the
    /// user's machine). `ca_file` still names the test CA, unused.
    pub fn start_plain<A: Into<Answer>>(
        handler: impl Fn(&SeenRequest) -> A + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(0, &[], handler, false)
    }

    fn start_with<A: Into<Answer>>(
        port: u16,
        hosts: &[&str],
        handler: impl Fn(&SeenRequest) -> A + Send + Sync + 'static,
        tls: bool,
    ) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("a temp dir");
        let (ca_pem, server_config) = test_pki(hosts);
        let server_config = tls.then_some(server_config);
        let ca_file = dir.path().join("test-ca.pem");
        fs_err::write(&ca_file, ca_pem).expect("writing the test CA");
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let handler: Handler = Arc::new(move |request: &SeenRequest| handler(request).into());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread_seen = seen.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(serve(listener, server_config, handler, thread_seen, rx));
        });
        FakeUpstream {
            port,
            ca_file,
            seen,
            _dir: dir,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA its certificate comes from.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    config: Option<Arc<rustls::ServerConfig>>,
    handler: Handler,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let acceptor = config.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    serve_connection(tls, handler, seen).await;
                }
                None => serve_connection(stream, handler, seen).await,
            }
        });
    }
}

/// Serve HTTP/1.1 on one connection, recording each request and answering with `handler`.
async fn serve_connection<I>(io: I, handler: Handler, seen: Arc<Mutex<Vec<SeenRequest>>>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        let seen = seen.clone();
        async move {
            let upgrade = hyper::upgrade::on(&mut req);
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut headers = BTreeMap::new();
            for (name, value) in &parts.headers {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                headers
                    .entry(name.as_str().to_owned())
                    .and_modify(|v: &mut String| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            let request = SeenRequest {
                method: parts.method.to_string(),
                path: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "/".into()),
                headers,
                body: body.to_vec(),
            };
            let answer = handler(&request);
            let response = streams::respond(answer, &request, upgrade);
            seen.lock().expect("not poisoned").push(request);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// The test CA of this process: one for every fake server, so that images which trust it
/// (through `MOAT_EXTRA_CA_CERTS`) are the same for every test and Docker's layer cache
/// serves them all after the first build.
struct TestCa {
    pem: String,
    der: rustls::pki_types::CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn test_ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let ca_key = rcgen::KeyPair::generate().expect("a CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "moat test upstream CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("a CA certificate");
        TestCa {
            pem: ca_cert.pem(),
            der: ca_cert.der().clone(),
            issuer: rcgen::Issuer::new(ca_params, ca_key),
        }
    })
}

/// The process's test CA and a server configuration with a certificate for `hosts`
/// signed by it.
fn test_pki(hosts: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
    let ca = test_ca();
    let issuer = &ca.issuer;
    let leaf_key = rcgen::KeyPair::generate().expect("a leaf key");
    let mut names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
    names.push("127.0.0.1".to_owned());
    let leaf_params = rcgen::CertificateParams::new(names).expect("leaf params");
    let leaf = leaf_params
        .signed_by(&leaf_key, issuer)
        .expect("a leaf certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der.clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("a server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca.pem.clone(), Arc::new(config))
}
