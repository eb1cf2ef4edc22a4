//! The seam between runs and the daemon: [`Runtime`], what a run's life needs from a
//! container runtime, implemented by [`Docker`] (and by `fake::FakeRuntime` for tests).
//!
//! The trait holds what `moat-run` calls: images (exists, remove, build) and containers
//! (create, start, wait, follow or read logs, stop, remove, inspect). Attaching, resizing a
//! terminal and signalling are the attached session's business, which only the CLI has;
//! they stay on [`Docker`].
//!
//! Methods return `impl Future + Send` rather than being `async fn`, so that generic
//! callers (the supervisor spawns a task) know the futures are `Send`. Callers take
//! `&impl Runtime`: no caller chooses a runtime at run time (the CLI always has Docker,
//! tests always the fake), so nothing needs `dyn` and its boxed futures.

use std::future::Future;

use futures_util::Stream;

use crate::{BuildEvent, BuildOptions, ContainerSpec, ContainerState, Docker, LogChunk};
use crate::{RuntimeError, build, container};

/// What a run needs from a container runtime.
pub trait Runtime: Send + Sync {
    /// Whether an image with this tag exists locally.
    fn image_exists(&self, tag: &str) -> impl Future<Output = Result<bool, RuntimeError>> + Send;

    /// Remove an image tag; a tag that does not exist is not an error.
    fn remove_image(&self, tag: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Build `context` (a tar holding a `Dockerfile`) and tag it `tag`. The tag only
    /// appears when the build succeeds; dropping the stream cancels the build.
    fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        options: &BuildOptions,
    ) -> impl Stream<Item = Result<BuildEvent, RuntimeError>> + Send + 'static;

    /// Create (not start) a container. Returns its id.
    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Wait until the container is not running and return its exit code.
    fn wait_container(&self, id: &str) -> impl Future<Output = Result<i64, RuntimeError>> + Send;

    /// The container's whole log from its start, following it until the container stops.
    fn follow_logs(
        &self,
        id: &str,
    ) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static;

    /// The container's log as it is now, without following it: all of it, or its last
    /// `tail` entries (which the daemon finds from the end, without reading the rest).
    fn read_logs(
        &self,
        id: &str,
        tail: Option<u64>,
    ) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static;

    /// Ask the container to stop (SIGTERM), killing it after `grace_secs`. A container
    /// that is stopped already is fine.
    fn stop_container(
        &self,
        id: &str,
        grace_secs: i32,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Remove a container (by id or name), killing it first when `force`. A missing
    /// container is fine.
    fn remove_container(
        &self,
        id: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// The container's state, or `None` when it no longer exists.
    fn container_state(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContainerState>, RuntimeError>> + Send;
}

// The bodies live beside the bollard code they use (`build.rs`, `container.rs`), as
// functions of the module, so this impl only says which one answers which call.
impl Runtime for Docker {
    fn image_exists(&self, tag: &str) -> impl Future<Output = Result<bool, RuntimeError>> + Send {
        build::image_exists(self, tag)
    }

    fn remove_image(&self, tag: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        build::remove_image(self, tag)
    }

    fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        options: &BuildOptions,
    ) -> impl Stream<Item = Result<BuildEvent, RuntimeError>> + Send + 'static {
        build::build_image(self, tag, context, options)
    }

    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send {
        container::create_container(self, spec)
    }

    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        container::start_container(self, id)
    }

    fn wait_container(&self, id: &str) -> impl Future<Output = Result<i64, RuntimeError>> + Send {
        container::wait_container(self, id)
    }

    fn follow_logs(
        &self,
        id: &str,
    ) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
        container::follow_logs(self, id)
    }

    fn read_logs(
        &self,
        id: &str,
        tail: Option<u64>,
    ) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
        container::read_logs(self, id, tail)
    }

    fn stop_container(
        &self,
        id: &str,
        grace_secs: i32,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        container::stop_container(self, id, grace_secs)
    }

    fn remove_container(
        &self,
        id: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        container::remove_container(self, id, force)
    }

    fn container_state(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContainerState>, RuntimeError>> + Send {
        container::container_state(self, id)
    }
}
