//! The container runtime moat drives: Docker, through its Engine API (bollard).
//!
//! This is the only crate that imports bollard. It takes plain values ([`ContainerSpec`],
//! a build context as bytes) and returns plain values and streams; it never prints and
//! knows nothing of runs, `MOAT_HOME` or the CLI.
//!
//! What a run's life needs is the [`Runtime`] trait, which [`Docker`] implements; with the
//! `fake` feature, `fake::FakeRuntime` implements it in memory for other crates' tests.
//! The attached session's calls (attach, resize, signal) are [`Docker`]'s alone.

mod build;
mod connect;
mod container;
mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod runtime;

pub use build::{BuildEvent, BuildOptions, ImageInfo};
pub use connect::{DockerEndpoint, resolve_endpoint};
pub use container::{
    Attached, BindMount, ContainerSpec, ContainerState, LogChunk, LogStream, OutputChunk,
};
pub use error::RuntimeError;
pub use runtime::Runtime;

/// A connection to one Docker daemon.
#[derive(Debug, Clone)]
pub struct Docker {
    api: bollard::Docker,
    endpoint: DockerEndpoint,
}

/// Label put on everything moat creates, so it can be found and cleaned up.
pub const MANAGED_LABEL: &str = "moat.managed";
/// Label naming the `MOAT_HOME` whose run built an image: `moat prune` removes only the
/// images its own home built.
pub const HOME_LABEL: &str = "moat.home";
/// Label naming the run a container belongs to.
pub const RUN_LABEL: &str = "moat.run-id";
