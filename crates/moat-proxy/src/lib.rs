//! The per-run proxy: TLS interception, credential injection, network policy and the
//! network trace.
//!
//! A supervisor builds a [`ProxyConfig`] (the run's token, its grants' [`GrantRule`]s,
//! its [`NetworkPolicy`], the [`CertificateAuthority`]), calls [`Proxy::start`] on the
//! address containers can reach, gives the container [`proxy_url`] as `HTTPS_PROXY`,
//! and writes the [`NetworkEvent`]s it receives to the run's trace.
//!
//! The crate knows nothing about Docker, the CLI, `MOAT_HOME` or where credentials are
//! stored: it takes values and emits events. It uses rustls with the aws-lc-rs provider,
//! passed explicitly, so it needs no process-wide crypto provider.
//!
//! ```no_run
//! use std::sync::Arc;
//! use moat_proxy::*;
//!
//! # async fn supervise(ca_dir: &std::path::Path, github_token: Secret) -> Result<(), ProxyError> {
//! let ca = Arc::new(CertificateAuthority::load_or_create(ca_dir)?);
//! let token = Secret::random_token().expect("the OS has randomness");
//! let mut config = ProxyConfig::new(token.clone(), ca.clone());
//! config.rules.push(
//!     GrantRule::new("github", vec![HostPattern::parse("api.github.com")?])
//!         .set_header("authorization", &bearer(&github_token))?,
//! );
//! config.policy = NetworkPolicy::Strict;
//! // What strict allows; private addresses, under either policy, only by name or range.
//! config.allow = vec![HostPattern::parse("*.npmjs.org")?, HostPattern::parse("10.20.0.0/16")?];
//! config.connect_to = ConnectTo::parse_list("api.github.com:443:127.0.0.1:8443")?;
//!
//! let (events, mut trace) = tokio::sync::mpsc::channel::<NetworkEvent>(1024);
//! let gateway = "172.18.0.1:0".parse().unwrap();
//! let proxy = Proxy::start(config, gateway, events).await?;
//! let https_proxy = proxy_url(proxy.local_addr(), &token); // HTTPS_PROXY for the container
//! # let _ = https_proxy;
//! tokio::spawn(async move {
//!     while let Some(event) = trace.recv().await {
//!         let line = serde_json::to_string(&event).unwrap(); // one line of network.jsonl
//! #       let _ = line;
//!     }
//! });
//! // ... the run ...
//! proxy.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Architecture invariants:
//! * a credential goes only into requests for its grant's hosts, only over TLS to the
//!   upstream, and only for the host the CONNECT tunnel was opened (and checked) for;
//! * bodies stream frame by frame; the trace samples them on the side;
//! * credentials never reach events, `Debug` output or error messages, nor the client
//!   in an answer that says them back (`scrub`);
//! * the proxy never connects to an address of its own host, and to a private or
//!   special-purpose address only when `allow` names the host or holds the
//!   address; both are checked on the address connected to, after DNS (only
//!   `connect_to` destinations, which the operator chose, are exempt).

mod auth;
mod body;
mod ca;
mod destination;
mod error;
mod events;
mod forward;
mod gate;
mod handover;
mod headers;
mod io;
mod local;
mod policy;
mod proxy;
mod rules;
mod scrub;
mod secret;
mod serve;
mod ssh;
mod upstream;

pub use auth::{PROXY_USER, proxy_url};
pub use ca::{CA_CERT_FILE, CA_KEY_FILE, CaInfo, CertificateAuthority};
pub use error::{CaError, ConfigError, ProxyError};
pub use events::{BODY_SAMPLE_LIMIT, BodySample, EventSink, NetworkEvent, REDACTED};
pub use gate::{GateWait, RequestGate};
pub use handover::{HAND_OVER, REFUSED, TAKEN};
pub use local::BLOCKED_HEADER;
pub use moat_hosts::NetworkPolicy;
pub use moat_hosts::{ConnectTo, HostPattern, HostsError, IpRange, normalize_host};
pub use proxy::{
    DEFAULT_SHUTDOWN_GRACE, ListenAddress, MAX_CLIENT_CONNECTIONS, Proxy, ProxyConfig, ProxyHandle,
};
pub use rules::{GrantRule, basic, bearer};
pub use secret::Secret;
pub use ssh::{SSH_PORT, SshTap, TunnelWatcher};
pub use upstream::{preload_system_roots, upstream_tls_config};
