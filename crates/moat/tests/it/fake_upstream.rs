//! A fake HTTPS service on 127.0.0.1 with its own test CA, for tests that point moat at
//! `api.github.com` and friends through `MOAT_CONNECT_TO` and `MOAT_EXTRA_CA_CERTS`.
//!
//! It answers each request with what the test's handler returns and records what it saw.
//! It runs on a runtime of its own, so the synchronous tests can use it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// One request as the fake saw it. Header names are lowercase.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

type Handler = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

pub struct FakeUpstream {
    port: u16,
    hosts: Vec<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
    ca_dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeUpstream {
    /// Serve `hosts` (the certificate names them) with `handler`, which returns the
    /// status and a JSON body.
    pub fn start(
        hosts: &[&str],
        handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let (ca_pem, server_config) = certificates(hosts);
        let ca_dir = tempfile::tempdir().unwrap();
        std::fs::write(ca_dir.path().join("ca.pem"), ca_pem).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor = TlsAcceptor::from(server_config);
        let recorded = seen.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = Seen {
                            method: req.method().to_string(),
                            path: req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            host: req
                                .headers()
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.as_str().to_owned(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect(),
                        };
                        let (status, body) = handler(&seen);
                        recorded.lock().unwrap().push(seen);
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeUpstream {
            port,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            seen,
            ca_dir,
            runtime: Some(runtime),
        }
    }

    /// `MOAT_CONNECT_TO`: every host of the fake, port 443, to this server.
    pub fn connect_to(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("{h}:443:127.0.0.1:{}", self.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `MOAT_EXTRA_CA_CERTS`: the test CA that signed the fake's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_dir.path().join("ca.pem")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Environment for a `moat` command that should reach this fake.
    pub fn apply(&self, command: &mut std::process::Command) {
        command
            .env("MOAT_CONNECT_TO", self.connect_to())
            .env("MOAT_EXTRA_CA_CERTS", self.ca_file());
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A fresh CA (its PEM) and a server config with a leaf for `hosts` signed by it.
fn certificates(hosts: &[&str]) -> (String, Arc<ServerConfig>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "moat test upstream CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_pem = ca_cert.pem();
    let ca_der = ca_cert.der().clone();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    names.push("127.0.0.1".into());
    let mut leaf_params = CertificateParams::new(names).unwrap();
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_pem, Arc::new(config))
}
