//! `moat doctor`'s look at the way out of an image build: can this machine reach the
//! Debian mirror, the Node.js download base and the npm registry the builds use, and is
//! HTTPS to them re-signed on the way (a corporate proxy, a sandbox's egress)?
//!
//! A first `moat claude` builds an image that downloads from all three. Where nodejs.org
//! does not answer, or HTTPS arrives signed by a CA only this machine trusts, the build
//! fails minutes in at the Node or npm step; these checks say so first, with the
//! setting that fixes it (`mirrors.*` in `config.yaml`, `MOAT_EXTRA_CA_CERTS`).
//!
//! The probes go from this machine, as builds do on a local Docker daemon. HTTPS is
//! verified twice: against the roots an image trusts (Debian's Mozilla bundle, plus
//! `MOAT_EXTRA_CA_CERTS`) and, when that fails, against this machine's own roots: a
//! server that only the second accepts is being re-signed by a CA the image lacks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use moat_hosts::HttpUrl;

use super::checks::Finding;

/// How long one probe may take (connection and handshake): a blackholed address costs
/// `moat doctor` this much, not a minute.
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

/// Where Debian's `ca-certificates` keeps the Mozilla bundle an image trusts.
const MOZILLA_ROOTS: &str = "/usr/share/ca-certificates/mozilla";
/// Where this machine's administrator adds CAs (Debian's `update-ca-certificates`).
const LOCAL_CAS: &str = "/usr/local/share/ca-certificates";

/// One download location a build uses.
pub struct Destination {
    /// The check's name (`build network: npm`).
    pub check: &'static str,
    /// What downloads from it, for the detail.
    pub used_for: &'static str,
    pub url: String,
    /// The `config.yaml` setting that replaces it.
    pub setting: &'static str,
}

/// The three locations of `mirrors` a first Claude image downloads from.
pub fn destinations(mirrors: &moat_image::Mirrors) -> Vec<Destination> {
    vec![
        Destination {
            check: "build network: Debian",
            used_for: "Debian packages",
            url: mirrors.debian.clone(),
            setting: "mirrors.debian",
        },
        Destination {
            check: "build network: Node.js",
            used_for: "Node.js (the `node` dependency, every Claude image)",
            url: mirrors.node.clone(),
            setting: "mirrors.node",
        },
        Destination {
            check: "build network: npm",
            used_for: "npm packages (Claude Code itself)",
            url: mirrors.npm.clone(),
            setting: "mirrors.npm",
        },
    ]
}

/// Probe every destination at once.
pub async fn check_all(destinations: Vec<Destination>, extra_ca: Option<&Path>) -> Vec<Finding> {
    let image_roots = image_roots(extra_ca);
    let probes = destinations
        .into_iter()
        .map(|d| {
            let roots = image_roots.clone();
            async move { check(&d, roots).await }
        })
        .collect::<Vec<_>>();
    futures_util::future::join_all(probes).await
}

/// How a probe came out.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// An answer (HTTP), or a handshake the image's roots verify (HTTPS).
    Reached,
    Unreachable(String),
    /// The image's roots reject the certificate; this machine's accept it.
    ReSigned,
    /// Neither accepts it.
    Untrusted(String),
}

async fn check(destination: &Destination, image_roots: Arc<RootCertStore>) -> Finding {
    let Destination {
        check,
        used_for,
        url,
        setting,
    } = destination;
    // A mirror's URL may carry a password: never shown.
    let url = &redacted(url);
    let Some(target) = HttpUrl::parse(url) else {
        return Finding::warn(*check, format!("`{url}` is not an http(s) URL")).hint(format!(
            "set `{setting}` in config.yaml to an http:// or https:// URL"
        ));
    };
    match probe(&target, image_roots).await {
        Probe::Reached => Finding::ok(*check, format!("{url} answers")),
        Probe::Unreachable(why) => Finding::warn(
            *check,
            format!("{url} cannot be reached from here ({why}): image builds that need {used_for} will fail"),
        )
        .hint(format!(
            "set `{setting}` in config.yaml to a mirror this machine reaches (see docs/network.md)"
        )),
        Probe::ReSigned => Finding::warn(
            *check,
            format!(
                "HTTPS to {} is re-signed on the way by a CA this machine trusts but images do not: builds that need {used_for} will fail with a certificate error",
                target.host
            ),
        )
        .hint(extra_ca_hint()),
        Probe::Untrusted(why) => Finding::warn(
            *check,
            format!("the certificate of {} is not trusted ({why})", target.host),
        )
        .hint(format!(
            "if a proxy re-signs HTTPS here, set MOAT_EXTRA_CA_CERTS to its CA's PEM file; otherwise set `{setting}` to a mirror with a valid certificate"
        )),
    }
}

/// `MOAT_EXTRA_CA_CERTS`, with the CA files this machine added, if any.
fn extra_ca_hint() -> String {
    let added = local_ca_files();
    match added.as_slice() {
        [] => "set MOAT_EXTRA_CA_CERTS to the PEM file of the CA that re-signs (builds and runs then trust it)".into(),
        [one] => format!(
            "set MOAT_EXTRA_CA_CERTS={} (the CA this machine added; builds and runs then trust it)",
            one.display()
        ),
        several => format!(
            "set MOAT_EXTRA_CA_CERTS to the PEM file of the CA that re-signs (builds and runs then trust it); this machine added {}",
            several
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn local_ca_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs_err::read_dir(LOCAL_CAS)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `url` with any `user:password@` replaced by `***@`.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

async fn probe(target: &HttpUrl, image_roots: Arc<RootCertStore>) -> Probe {
    let connect = |roots: Option<Arc<RootCertStore>>| async move {
        tokio::time::timeout(PROBE_TIMEOUT, attempt(target, roots))
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Network(format!(
                    "no answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                )))
            })
    };
    if !target.https {
        return match connect(None).await {
            Ok(()) => Probe::Reached,
            Err(Failure::Network(why) | Failure::Certificate(why)) => Probe::Unreachable(why),
        };
    }
    match connect(Some(image_roots)).await {
        Ok(()) => Probe::Reached,
        Err(Failure::Network(why)) => Probe::Unreachable(why),
        Err(Failure::Certificate(why)) => match connect(Some(machine_roots())).await {
            Ok(()) => Probe::ReSigned,
            Err(_) => Probe::Untrusted(why),
        },
    }
}

enum Failure {
    Network(String),
    Certificate(String),
}

/// Connect; with `roots`, complete a TLS handshake verified by them; without, ask for
/// `/` over HTTP and wait for the status line.
async fn attempt(target: &HttpUrl, roots: Option<Arc<RootCertStore>>) -> Result<(), Failure> {
    let network = |e: std::io::Error| Failure::Network(e.to_string());
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(network)?;
    let Some(roots) = roots else {
        let request = format!(
            "HEAD / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            target.host
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(network)?;
        let mut answer = [0u8; 5];
        stream.read_exact(&mut answer).await.map_err(network)?;
        return if &answer == b"HTTP/" {
            Ok(())
        } else {
            Err(Failure::Network("the answer is not HTTP".into()))
        };
    };
    let config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Failure::Network(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| Failure::Network(format!("`{}`: {e}", target.host)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(name, stream).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let certificate = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
            if certificate {
                Err(Failure::Certificate(e.to_string()))
            } else {
                Err(Failure::Network(e.to_string()))
            }
        }
    }
}

/// What an image trusts: Debian's Mozilla bundle and `MOAT_EXTRA_CA_CERTS` (read with
/// the bounds every CA file gets; one that cannot be read is reported by its own check).
fn image_roots(extra_ca: Option<&Path>) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let mozilla = fs_err::read_dir(MOZILLA_ROOTS)
        .map(|entries| entries.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    for path in mozilla {
        if let Ok(pem) = moat_home::read_bounded(&path, moat_home::FileKind::CA_CERTIFICATES) {
            roots.add_parsable_certificates(
                CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok),
            );
        }
    }
    if roots.is_empty() {
        // Not a Debian-like machine: the system's roots are the best guess of the image's.
        return machine_roots();
    }
    if let Some(pem) =
        extra_ca.and_then(|p| moat_home::read_bounded(p, moat_home::FileKind::CA_CERTIFICATES).ok())
    {
        roots
            .add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    }
    Arc::new(roots)
}

/// This machine's roots (its administrator's additions included).
fn machine_roots() -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    Arc::new(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_mirror_urls_are_hidden() {
        assert_eq!(
            redacted("http://user:pw@127.0.0.1:8080/debian"),
            "http://***@127.0.0.1:8080/debian"
        );
        assert_eq!(
            redacted("https://nodejs.org/dist"),
            "https://nodejs.org/dist"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_an_http_server_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 512];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let roots = Arc::new(RootCertStore::empty());
        let up = HttpUrl::parse(&format!("http://127.0.0.1:{port}/node")).unwrap();
        assert_eq!(probe(&up, roots.clone()).await, Probe::Reached);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let down = HttpUrl::parse(&format!("https://127.0.0.1:{closed_port}/")).unwrap();
        assert!(matches!(probe(&down, roots).await, Probe::Unreachable(_)));
    }
}
