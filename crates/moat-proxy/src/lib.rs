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
//! Architecture invariants:
//! * a credential goes only into requests for its grant's hosts, only over TLS to the
//!   upstream, and only for the host the CONNECT tunnel was opened (and checked) for;
//! * bodies stream frame by frame; the trace samples them on the side;
//! * credentials never reach events, `Debug` output or error messages.

mod auth;
mod body;
pub mod ca;
mod connect_to;
mod error;
mod events;
mod handler;
mod headers;
mod io;
mod policy;
mod proxy;
mod rules;
mod secret;
mod upstream;

pub use auth::{PROXY_USER, proxy_url};
pub use ca::CertificateAuthority;
pub use connect_to::ConnectTo;
pub use error::{CaError, ConfigError, ProxyError};
pub use events::{BODY_SAMPLE_LIMIT, BodySample, EventSink, NetworkEvent, REDACTED};
pub use handler::BLOCKED_HEADER;
pub use policy::{HostPattern, NetworkPolicy, normalize_host};
pub use proxy::{DEFAULT_SHUTDOWN_GRACE, Proxy, ProxyConfig, ProxyHandle};
pub use rules::{GrantRule, basic, bearer};
pub use secret::Secret;
