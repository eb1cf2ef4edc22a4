//! A forwarding package mirror: a plain-HTTP server that answers each request by fetching
//! the same path from a real upstream (over HTTPS, trusting the host's extra CAs as well
//! as the system's) and records every path it served.
//!
//! Registries link to other hosts from their metadata: npm's packuments give each tarball
//! as `https://registry.npmjs.org/...`, PyPI's simple pages link to
//! `https://files.pythonhosted.org/...`. A client that follows those links leaves the
//! mirror, so a [`Route`] can rewrite such URLs in the textual answers (JSON, HTML, text)
//! to paths of the mirror itself.
//!
//! The caller binds the listener, so it decides where the mirror is reachable: on the
//! host's loopback, or on the loopback of another network namespace (the end-to-end tests
//! bind it inside the namespace of a container without network, so that a build sharing
//! that namespace reaches the mirror and nothing else).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One upstream of the mirror, under a path prefix: `/npm/left-pad` is fetched as
/// `<upstream>/left-pad`.
#[derive(Debug, Clone)]
pub struct Route {
    prefix: String,
    upstream: String,
    /// `(upstream URL, mirror path)` pairs replaced in textual answers.
    rewrites: Vec<(String, String)>,
}

impl Route {
    /// `prefix` (`/npm`) forwards to `upstream` (`https://registry.npmjs.org`).
    pub fn new(prefix: &str, upstream: &str) -> Self {
        Route {
            prefix: prefix.trim_end_matches('/').to_owned(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            rewrites: Vec::new(),
        }
    }

    /// In this route's JSON, HTML and text answers, replace `from` (an upstream URL, such
    /// as `https://files.pythonhosted.org`) with the mirror's URL followed by `to` (one of
    /// its prefixes, `/pypi-files`).
    pub fn rewriting(mut self, from: &str, to: &str) -> Self {
        self.rewrites.push((
            from.trim_end_matches('/').to_owned(),
            to.trim_end_matches('/').to_owned(),
        ));
        self
    }

    /// The upstream URL of `path` (with its query), if this route serves it.
    fn upstream_of(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix(&self.prefix)?;
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            .then(|| format!("{}{rest}", self.upstream))
    }
}

/// A request the mirror answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub method: String,
    /// Path and query, as the client asked.
    pub path: String,
    pub status: u16,
}

/// A running mirror; dropping it stops it.
pub struct ForwardingMirror {
    url: String,
    served: Arc<Mutex<Vec<Served>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    base: String,
    routes: Vec<Route>,
    client: reqwest::Client,
    served: Arc<Mutex<Vec<Served>>>,
}

impl ForwardingMirror {
    /// Serve `routes` on `listener` (bound to a loopback address). `extra_roots_pem` are
    /// CA certificates trusted besides the system's, for networks that re-sign HTTPS.
    pub fn start(listener: TcpListener, extra_roots_pem: &[u8], routes: Vec<Route>) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let base = format!(
            "http://{}",
            listener.local_addr().expect("a bound listener")
        );
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(20));
        if !extra_roots_pem.is_empty() {
            let roots = reqwest::Certificate::from_pem_bundle(extra_roots_pem)
                .expect("extra CA certificates in PEM");
            builder = builder.tls_certs_merge(roots);
        }
        let client = builder.build().expect("an HTTP client");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let served: Arc<Mutex<Vec<Served>>> = Arc::default();
        let shared = Arc::new(Shared {
            base: base.clone(),
            routes,
            client,
            served: served.clone(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(serve(listener, shared, rx));
        });
        ForwardingMirror {
            url: base,
            served,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://ADDRESS:PORT`, the address the listener was bound to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request answered so far, in order.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().expect("not poisoned").clone()
    }
}

impl Drop for ForwardingMirror {
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
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(forward(&shared, req).await) }
            });
            // apt pipelines its requests on one connection; hyper answers them in order.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    shared: &Shared,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let response = match shared
        .routes
        .iter()
        .find_map(|route| Some((route, route.upstream_of(&path)?)))
    {
        None => reply(404, "text/plain", format!("no route for {path}\n").into()),
        Some((route, url)) => fetch(shared, route, &method, req.headers(), &url).await,
    };
    shared.served.lock().expect("not poisoned").push(Served {
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
    });
    response
}

/// Fetch `url` for a client's request and answer with what came back, rewritten.
async fn fetch(
    shared: &Shared,
    route: &Route,
    method: &hyper::Method,
    headers: &hyper::HeaderMap,
    url: &str,
) -> hyper::Response<Full<Bytes>> {
    let method = match reqwest::Method::from_bytes(method.as_str().as_bytes()) {
        Ok(method @ (reqwest::Method::GET | reqwest::Method::HEAD)) => method,
        _ => return reply(405, "text/plain", "GET and HEAD only\n".into()),
    };
    let mut request = shared.client.request(method, url);
    // `Accept` picks npm's abbreviated metadata and PyPI's JSON pages. No
    // `Accept-Encoding` is passed on: the answers must arrive uncompressed to be rewritten.
    if let Some(accept) = headers.get(hyper::header::ACCEPT) {
        request = request.header(reqwest::header::ACCEPT, accept.as_bytes());
    }
    let upstream = match request.send().await {
        Ok(upstream) => upstream,
        Err(error) => {
            return reply(502, "text/plain", format!("{url}: {error}\n").into());
        }
    };
    let status = upstream.status().as_u16();
    let content_type = upstream
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = match upstream.bytes().await {
        Ok(body) => body,
        Err(error) => return reply(502, "text/plain", format!("{url}: {error}\n").into()),
    };
    let textual = ["json", "html", "text"]
        .iter()
        .any(|kind| content_type.contains(kind));
    let body = if textual && !route.rewrites.is_empty() {
        let mut text = String::from_utf8_lossy(&body).into_owned();
        for (from, to) in &route.rewrites {
            text = text.replace(from.as_str(), &format!("{}{to}", shared.base));
        }
        Bytes::from(text)
    } else {
        body
    };
    reply(status, &content_type, body)
}

fn reply(status: u16, content_type: &str, body: Bytes) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_whole_path_segments() {
        let route = Route::new("/npm/", "https://registry.npmjs.org/");
        assert_eq!(
            route.upstream_of("/npm/left-pad").as_deref(),
            Some("https://registry.npmjs.org/left-pad")
        );
        assert_eq!(
            route.upstream_of("/npm?q=1").as_deref(),
            Some("https://registry.npmjs.org?q=1")
        );
        assert_eq!(route.upstream_of("/npmx/left-pad"), None);
        assert_eq!(route.upstream_of("/pypi/six/"), None);
    }

    /// Forwarding to a fake upstream on loopback (HTTPS with the test CA), with a rewrite.
    #[test]
    fn forwards_and_rewrites_links() {
        let upstream = crate::FakeUpstream::start(&[], |request| {
            crate::Reply::json(
                200,
                format!(
                    r#"{{"path":"{}","tarball":"https://registry.example/x.tgz"}}"#,
                    request.path
                ),
            )
        });
        let ca = fs_err::read(upstream.ca_file()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mirror = ForwardingMirror::start(
            listener,
            &ca,
            vec![
                Route::new(
                    "/npm",
                    &format!("https://127.0.0.1:{}/registry", upstream.port()),
                )
                .rewriting("https://registry.example", "/npm"),
            ],
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (status, body) = runtime.block_on(async {
            let response = reqwest::get(format!("{}/npm/left-pad?x=1", mirror.url()))
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        });
        assert_eq!(status, 200);
        assert_eq!(
            body,
            format!(
                r#"{{"path":"/registry/left-pad?x=1","tarball":"{}/npm/x.tgz"}}"#,
                mirror.url()
            )
        );
        let missing = runtime.block_on(async {
            reqwest::get(format!("{}/elsewhere", mirror.url()))
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        assert_eq!(missing, 404);
        assert_eq!(
            mirror.served(),
            [
                Served {
                    method: "GET".into(),
                    path: "/npm/left-pad?x=1".into(),
                    status: 200
                },
                Served {
                    method: "GET".into(),
                    path: "/elsewhere".into(),
                    status: 404
                }
            ]
        );
    }
}
