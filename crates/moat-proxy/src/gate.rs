//! A hook that may hold a request before it goes upstream: moat takes an agent-turn
//! snapshot there, while the agent waits for its answer and none of its tools run.

use std::future::Future;
use std::pin::Pin;

/// What the request waits for before it is forwarded.
pub type GateWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Asked before each request is forwarded upstream (after the policy let it through).
/// Only that request waits; the proxy serves every other one meanwhile.
pub trait RequestGate: Send + Sync + 'static {
    /// `None`: forward at once.
    fn before_forward(&self, method: &str, url: &str) -> Option<GateWait>;
}
