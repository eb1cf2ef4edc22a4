//! Benchmark: HTTPS requests through the proxy against the same requests sent directly
//! to the same local TLS server, on new and on reused connections. Prints requests per
//! second, latency percentiles, and the proxy/direct ratios.
//!
//! Run with `cargo bench -p moat-proxy --bench proxy_overhead`. Loopback only; every
//! loop is bounded.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // a program run by hand: its output is the point, its settings come from its environment

#[path = "../tests/it/support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use support::{
    Harness, ProxyClient, TestBody, TestCa, empty, full, handler, https_upstream, route,
};

const HOST: &str = "bench.test";
const NEW_CONNECTION_REQUESTS: usize = 400;
const REUSED_CONNECTION_REQUESTS: usize = 4000;
const WARMUP_REQUESTS: usize = 50;

type Sender = hyper::client::conn::http1::SendRequest<TestBody>;

struct Measured {
    name: &'static str,
    latencies: Vec<Duration>,
    total: Duration,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.total.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn mean(&self) -> Duration {
        self.latencies.iter().sum::<Duration>() / self.latencies.len() as u32
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn get(sender: &mut Sender) {
    // An HTTP/1.1 connection takes the next request only once the last one is done.
    sender.ready().await.unwrap();
    let response = sender
        .send_request(
            Request::get("/")
                .header("host", HOST)
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
}

async fn handshake(
    tls: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
) -> Sender {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A new TCP + TLS connection straight to the upstream.
async fn direct_connection(port: u16, config: Arc<rustls::ClientConfig>) -> Sender {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = TlsConnector::from(config)
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    handshake(tls).await
}

/// A new connection to the proxy, CONNECT, and TLS with the proxy's certificate.
async fn proxied_connection(client: &ProxyClient) -> Sender {
    let tls = client
        .tunnel_tls(&format!("{HOST}:443"), &[b"http/1.1"])
        .await;
    handshake(tls).await
}

async fn new_connections<F, Fut>(name: &'static str, connect: F) -> Measured
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Sender>,
{
    for _ in 0..WARMUP_REQUESTS {
        get(&mut connect().await).await;
    }
    let mut latencies = Vec::with_capacity(NEW_CONNECTION_REQUESTS);
    let started = Instant::now();
    for _ in 0..NEW_CONNECTION_REQUESTS {
        let t = Instant::now();
        let mut sender = connect().await;
        get(&mut sender).await;
        latencies.push(t.elapsed());
    }
    Measured {
        name,
        latencies,
        total: started.elapsed(),
    }
}

async fn reused_connection(name: &'static str, mut sender: Sender) -> Measured {
    for _ in 0..WARMUP_REQUESTS {
        get(&mut sender).await;
    }
    let mut latencies = Vec::with_capacity(REUSED_CONNECTION_REQUESTS);
    let started = Instant::now();
    for _ in 0..REUSED_CONNECTION_REQUESTS {
        let t = Instant::now();
        get(&mut sender).await;
        latencies.push(t.elapsed());
    }
    Measured {
        name,
        latencies,
        total: started.elapsed(),
    }
}

fn print_row(m: &Measured) {
    println!(
        "{:<28} {:>8} {:>10.0} {:>9.3} {:>9.3} {:>9.3}",
        m.name,
        m.latencies.len(),
        m.rps(),
        ms(m.mean()),
        ms(m.percentile(0.5)),
        ms(m.percentile(0.99)),
    );
}

fn print_ratio(label: &str, direct: &Measured, proxy: &Measured) {
    println!(
        "{label:<20} proxy/direct throughput {:.2}x ({:.1}x slower), added latency mean {:+.3} ms, p50 {:+.3} ms, p99 {:+.3} ms",
        proxy.rps() / direct.rps(),
        direct.rps() / proxy.rps(),
        ms(proxy.mean()) - ms(direct.mean()),
        ms(proxy.percentile(0.5)) - ms(direct.percentile(0.5)),
        ms(proxy.percentile(0.99)) - ms(direct.percentile(0.99)),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ca = TestCa::new();
    let upstream = https_upstream(
        &ca,
        &[HOST],
        &[b"http/1.1"],
        handler(|_req| async { http::Response::new(full("ok")) }),
    )
    .await;
    let mut harness = Harness::start(&ca, |c| {
        c.connect_to = vec![route(HOST, upstream.port())];
    })
    .await;
    // Drain the trace as a supervisor would, so it costs what it costs in production.
    let mut events = std::mem::replace(
        &mut harness.events,
        tokio::sync::mpsc::unbounded_channel().1,
    );
    let drain = tokio::spawn(async move {
        let mut count = 0usize;
        while events.recv().await.is_some() {
            count += 1;
        }
        count
    });

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let direct_tls = {
        let mut config = rustls::ClientConfig::builder_with_provider(support::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    };
    let client = harness.client.clone();

    println!(
        "moat-proxy overhead: HTTPS GET with a 2-byte body over loopback, one request at a time"
    );
    println!("(new connection = TCP + TLS per request, plus CONNECT through the proxy)\n");
    println!(
        "{:<28} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "requests", "req/s", "mean ms", "p50 ms", "p99 ms"
    );
    let direct_new = new_connections("direct, new connection", || {
        direct_connection(upstream.port(), direct_tls.clone())
    })
    .await;
    print_row(&direct_new);
    let proxy_new = new_connections("proxy, new connection", || proxied_connection(&client)).await;
    print_row(&proxy_new);
    let direct_reused = reused_connection(
        "direct, reused connection",
        direct_connection(upstream.port(), direct_tls.clone()).await,
    )
    .await;
    print_row(&direct_reused);
    let proxy_reused = reused_connection(
        "proxy, reused connection",
        proxied_connection(&client).await,
    )
    .await;
    print_row(&proxy_reused);

    println!();
    print_ratio("new connections:", &direct_new, &proxy_new);
    print_ratio("reused connections:", &direct_reused, &proxy_reused);

    harness.handle.shutdown().await;
    let traced = drain.await.unwrap();
    println!("\nnetwork events recorded: {traced}");
}
