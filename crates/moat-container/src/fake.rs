//! `FakeRuntime`: an in-memory [`Runtime`] for tests of the code that drives containers.
//!
//! It records every call in order, keeps images and containers in memory, and lets a test
//! script the daemon: make the next call of a kind fail ([`FakeRuntime::fail_on`]) or
//! take effect and never answer ([`FakeRuntime::hang_on`], a Ctrl-C while the daemon is
//! at work), set the exit code a container's command ends with, keep a container running
//! until it is stopped, and choose what a build prints and what a container's log holds.
//!
//! It answers the way Docker does where moat depends on it: creating needs the image and
//! a free name, a missing container is `NotFound` for start, wait and stop but fine for
//! remove, a build tags its image only when it succeeds, and a log stream ends when the
//! container stops.

use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{Stream, StreamExt};

use crate::{
    BuildEvent, BuildOptions, ContainerSpec, ContainerState, LogChunk, Runtime, RuntimeError,
};

/// One call a [`FakeRuntime`] received, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    ImageExists {
        tag: String,
    },
    RemoveImage {
        tag: String,
    },
    BuildImage {
        tag: String,
        options: BuildOptions,
        context: Vec<u8>,
    },
    CreateContainer {
        spec: ContainerSpec,
    },
    StartContainer {
        id: String,
    },
    WaitContainer {
        id: String,
    },
    FollowLogs {
        id: String,
    },
    ReadLogs {
        id: String,
        tail: Option<u64>,
    },
    StopContainer {
        id: String,
        grace_secs: i32,
    },
    RemoveContainer {
        id: String,
        force: bool,
    },
    ContainerState {
        id: String,
    },
}

/// Which [`Runtime`] method a [`Call`] was, to script failures and compare sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    ImageExists,
    RemoveImage,
    BuildImage,
    CreateContainer,
    StartContainer,
    WaitContainer,
    FollowLogs,
    ReadLogs,
    StopContainer,
    RemoveContainer,
    ContainerState,
}

impl Call {
    pub fn kind(&self) -> CallKind {
        match self {
            Call::ImageExists { .. } => CallKind::ImageExists,
            Call::RemoveImage { .. } => CallKind::RemoveImage,
            Call::BuildImage { .. } => CallKind::BuildImage,
            Call::CreateContainer { .. } => CallKind::CreateContainer,
            Call::StartContainer { .. } => CallKind::StartContainer,
            Call::WaitContainer { .. } => CallKind::WaitContainer,
            Call::FollowLogs { .. } => CallKind::FollowLogs,
            Call::ReadLogs { .. } => CallKind::ReadLogs,
            Call::StopContainer { .. } => CallKind::StopContainer,
            Call::RemoveContainer { .. } => CallKind::RemoveContainer,
            Call::ContainerState { .. } => CallKind::ContainerState,
        }
    }
}

/// Where a fake container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeStatus {
    Created,
    Running,
    /// The command ended with this code.
    Exited(i64),
}

/// A container the fake holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeContainer {
    pub id: String,
    /// The spec it was created with (for [`FakeRuntime::add_container`], only the name).
    pub spec: ContainerSpec,
    pub status: FakeStatus,
    /// What the command exits with: set by [`FakeRuntime::set_exit_code`]; otherwise 0 when
    /// it ends by itself and 143 (SIGTERM) when stopped.
    pub exit_code: Option<i64>,
    /// The command runs until the container is stopped ([`FakeRuntime::keep_running`]);
    /// otherwise it ends as soon as it starts.
    pub keeps_running: bool,
}

/// Exit code of a command ended by `docker stop`'s SIGTERM: 128 + 15.
const STOPPED_EXIT_CODE: i64 = 143;

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    images: Vec<String>,
    containers: Vec<FakeContainer>,
    next_id: u64,
    failures: Vec<(CallKind, RuntimeError)>,
    hangs: Vec<CallKind>,
    hung: usize,
    build_output: Vec<BuildEvent>,
    build_leaves_no_image: bool,
    logs: Vec<LogChunk>,
    /// Follows (and whole reads) of the log end after this many entries, as Docker's
    /// follow of a stopped container's log can: `(follows, reads)`.
    log_cuts: (Option<usize>, Option<usize>),
}

impl State {
    /// The container `id` names, by id or by name (Docker accepts both).
    fn find(&mut self, id: &str) -> Option<&mut FakeContainer> {
        self.containers
            .iter_mut()
            .find(|c| c.id == id || c.spec.name == id)
    }

    fn take_failure(&mut self, kind: CallKind) -> Option<RuntimeError> {
        let at = self.failures.iter().position(|(k, _)| *k == kind)?;
        Some(self.failures.remove(at).1)
    }

    fn take_hang(&mut self, kind: CallKind) -> bool {
        match self.hangs.iter().position(|k| *k == kind) {
            Some(at) => {
                self.hangs.remove(at);
                self.hung += 1;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped after every change, so waits (a running container, a hung call) wake up.
    changed: tokio::sync::watch::Sender<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; its state is
        // still the best account of what happened.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the state and wake whoever waits for a change.
    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.send_replace(());
        out
    }

    /// Record `call`, then hand out the failure scripted for its kind, if any.
    fn call(&self, call: Call) -> Result<Outcome, RuntimeError> {
        let kind = call.kind();
        self.change(|s| {
            s.calls.push(call);
            match s.take_failure(kind) {
                Some(e) => Err(e),
                None if s.take_hang(kind) => Ok(Outcome::Hang),
                None => Ok(Outcome::Answer),
            }
        })
    }

    /// Wait until `done` holds for the state.
    async fn until(&self, mut done: impl FnMut(&State) -> bool + Send) {
        // Subscribed before the check, so a change between the two is not missed.
        let mut rx = self.changed.subscribe();
        loop {
            if done(&self.lock()) {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// Whether a call answers or, scripted by [`FakeRuntime::hang_on`], takes effect and then
/// never returns.
enum Outcome {
    Answer,
    Hang,
}

impl Outcome {
    async fn answer<T>(self, value: T) -> T {
        match self {
            Outcome::Answer => value,
            Outcome::Hang => std::future::pending().await,
        }
    }
}

/// An in-memory container runtime that records its calls. Clones share one state.
#[derive(Debug, Clone)]
pub struct FakeRuntime {
    shared: Arc<Shared>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        FakeRuntime {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: tokio::sync::watch::Sender::new(()),
            }),
        }
    }
}

/// A failure as the daemon would give it (an HTTP 500), for [`FakeRuntime::fail_on`].
pub fn daemon_error(context: impl Into<String>) -> RuntimeError {
    RuntimeError::Api {
        context: context.into(),
        source: bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "failure injected by FakeRuntime".into(),
        },
    }
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The kinds of every call so far, in order.
    pub fn kinds(&self) -> Vec<CallKind> {
        self.shared.lock().calls.iter().map(Call::kind).collect()
    }

    /// Forget the calls so far (after a test's set-up).
    pub fn clear_calls(&self) {
        self.shared.change(|s| s.calls.clear());
    }

    /// The image tags that exist.
    pub fn images(&self) -> Vec<String> {
        self.shared.lock().images.clone()
    }

    /// The containers that exist, in the order they were made.
    pub fn containers(&self) -> Vec<FakeContainer> {
        self.shared.lock().containers.clone()
    }

    /// The container with this id or name.
    pub fn container(&self, id: &str) -> Option<FakeContainer> {
        self.shared.lock().find(id).cloned()
    }

    /// Make `tag` exist, as if built or pulled before.
    pub fn add_image(&self, tag: &str) {
        self.shared.change(|s| s.images.push(tag.to_owned()));
    }

    /// Make a container named `name` exist in `status`, without recording a call (a
    /// container from before the test). Returns its id.
    pub fn add_container(&self, name: &str, status: FakeStatus) -> String {
        self.shared.change(|s| {
            let id = next_id(s);
            s.containers.push(FakeContainer {
                id: id.clone(),
                spec: ContainerSpec {
                    name: name.to_owned(),
                    ..Default::default()
                },
                status,
                exit_code: match status {
                    FakeStatus::Exited(code) => Some(code),
                    _ => None,
                },
                keeps_running: status == FakeStatus::Running,
            });
            id
        })
    }

    /// The next call of `kind` is recorded and fails with `error` (for a build or a log
    /// stream: the stream ends with it). Several failures of one kind are used in order.
    pub fn fail_on(&self, kind: CallKind, error: RuntimeError) {
        self.shared.change(|s| s.failures.push((kind, error)));
    }

    /// The next call of `kind` takes effect (a container is created, a build prints its
    /// output) and then never answers: the daemon is at work when the caller gives up.
    pub fn hang_on(&self, kind: CallKind) {
        self.shared.change(|s| s.hangs.push(kind));
    }

    /// Resolves once a call scripted by [`FakeRuntime::hang_on`] has hung.
    pub async fn hung(&self) {
        self.shared.until(|s| s.hung > 0).await;
    }

    /// The command of container `id` (id or name) ends with `code`.
    ///
    /// # Panics
    /// When there is no such container: the test is wrong.
    pub fn set_exit_code(&self, id: &str, code: i64) {
        self.shared.change(|s| {
            s.find(id)
                .unwrap_or_else(|| panic!("no fake container `{id}`"))
                .exit_code = Some(code);
        });
    }

    /// The command of container `id` runs until the container is stopped.
    ///
    /// # Panics
    /// When there is no such container: the test is wrong.
    pub fn keep_running(&self, id: &str) {
        self.shared.change(|s| {
            s.find(id)
                .unwrap_or_else(|| panic!("no fake container `{id}`"))
                .keeps_running = true;
        });
    }

    /// What every build prints, in order.
    pub fn set_build_output(&self, events: Vec<BuildEvent>) {
        self.shared.change(|s| s.build_output = events);
    }

    /// Builds end without an error and without tagging their image (as the classic
    /// builder does for some failures).
    pub fn build_leaves_no_image(&self) {
        self.shared.change(|s| s.build_leaves_no_image = true);
    }

    /// What any container's log holds: what following it yields before the stream waits
    /// for the container to stop, and what reading it yields.
    pub fn serve_logs(&self, chunks: Vec<LogChunk>) {
        self.shared.change(|s| s.logs = chunks);
    }

    /// From now on, following the log ends after `follows` entries and reading all of it
    /// after `reads` (None: the whole log), as if Docker's stream ended before the log
    /// did. Reads of the last entries (`tail`) still see the real end.
    pub fn cut_logs(&self, follows: Option<usize>, reads: Option<usize>) {
        self.shared.change(|s| s.log_cuts = (follows, reads));
    }
}

fn next_id(s: &mut State) -> String {
    s.next_id += 1;
    format!("fake-container-{}", s.next_id)
}

fn not_found(what: &str, id: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("{what} `{id}`"))
}

impl Runtime for FakeRuntime {
    async fn image_exists(&self, tag: &str) -> Result<bool, RuntimeError> {
        let outcome = self.shared.call(Call::ImageExists {
            tag: tag.to_owned(),
        })?;
        let exists = self.shared.lock().images.iter().any(|t| t == tag);
        outcome.answer(Ok(exists)).await
    }

    async fn remove_image(&self, tag: &str) -> Result<(), RuntimeError> {
        let outcome = self.shared.call(Call::RemoveImage {
            tag: tag.to_owned(),
        })?;
        self.shared.change(|s| s.images.retain(|t| t != tag));
        outcome.answer(Ok(())).await
    }

    fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        options: &BuildOptions,
    ) -> impl Stream<Item = Result<BuildEvent, RuntimeError>> + Send + 'static {
        let outcome = self.shared.call(Call::BuildImage {
            tag: tag.to_owned(),
            options: options.clone(),
            context,
        });
        let output: Vec<Result<BuildEvent, RuntimeError>> = self
            .shared
            .lock()
            .build_output
            .iter()
            .cloned()
            .map(Ok)
            .collect();
        let shared = self.shared.clone();
        let tag = tag.to_owned();
        // The output first, then how the build ends: an error, no answer, or the tag.
        let end = futures_util::stream::once(async move {
            match outcome {
                Err(e) => Some(Err(e)),
                Ok(Outcome::Hang) => std::future::pending().await,
                Ok(Outcome::Answer) => {
                    shared.change(|s| {
                        if !s.build_leaves_no_image && !s.images.contains(&tag) {
                            s.images.push(tag);
                        }
                    });
                    None
                }
            }
        })
        .filter_map(std::future::ready);
        futures_util::stream::iter(output).chain(end)
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let outcome = self
            .shared
            .call(Call::CreateContainer { spec: spec.clone() })?;
        let created = self.shared.change(|s| {
            if !s.images.contains(&spec.image) {
                return Err(not_found("image", &spec.image));
            }
            if s.containers.iter().any(|c| c.spec.name == spec.name) {
                return Err(RuntimeError::Api {
                    context: format!("creating container `{}`", spec.name),
                    source: bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        message: format!(
                            "Conflict. The container name \"/{}\" is already in use",
                            spec.name
                        ),
                    },
                });
            }
            let id = next_id(s);
            s.containers.push(FakeContainer {
                id: id.clone(),
                spec: spec.clone(),
                status: FakeStatus::Created,
                exit_code: None,
                keeps_running: false,
            });
            Ok(id)
        });
        outcome.answer(created).await
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let outcome = self
            .shared
            .call(Call::StartContainer { id: id.to_owned() })?;
        let started = self.shared.change(|s| {
            let c = s.find(id).ok_or_else(|| not_found("container", id))?;
            if c.status != FakeStatus::Running {
                c.status = if c.keeps_running {
                    FakeStatus::Running
                } else {
                    FakeStatus::Exited(c.exit_code.unwrap_or(0))
                };
            }
            Ok(())
        });
        outcome.answer(started).await
    }

    async fn wait_container(&self, id: &str) -> Result<i64, RuntimeError> {
        let outcome = self
            .shared
            .call(Call::WaitContainer { id: id.to_owned() })?;
        let id = id.to_owned();
        let mut code = None;
        self.shared
            .until(|s| {
                let status = s
                    .containers
                    .iter()
                    .find(|c| c.id == id || c.spec.name == id)
                    .map(|c| c.status);
                code = match status {
                    None => Some(Err(not_found("container", &id))),
                    // "not-running": a container never started does not hold the wait.
                    Some(FakeStatus::Created) => Some(Ok(0)),
                    Some(FakeStatus::Exited(code)) => Some(Ok(code)),
                    Some(FakeStatus::Running) => None,
                };
                code.is_some()
            })
            .await;
        outcome.answer(code.expect("set when the wait ended")).await
    }

    fn follow_logs(
        &self,
        id: &str,
    ) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
        let outcome = self.shared.call(Call::FollowLogs { id: id.to_owned() });
        let (chunks, exists, cut) = {
            let mut s = self.shared.lock();
            let exists = s.find(id).is_some();
            (s.logs.clone(), exists, s.log_cuts.0)
        };
        if let Some(cut) = cut {
            // The stream ends there, whether or not the container still runs.
            let items: Vec<_> = chunks.into_iter().take(cut).map(Ok).collect();
            return futures_util::stream::iter(items).boxed();
        }
        let mut items: Vec<Result<LogChunk, RuntimeError>> = Vec::new();
        let mut follow = false;
        match (outcome, exists) {
            (Err(e), _) => {
                items.extend(chunks.into_iter().map(Ok));
                items.push(Err(e));
            }
            (Ok(_), false) => items.push(Err(not_found("container", id))),
            (Ok(outcome), true) => {
                items.extend(chunks.into_iter().map(Ok));
                follow = matches!(outcome, Outcome::Answer);
                if matches!(outcome, Outcome::Hang) {
                    // Never ends, like a log whose container never stops.
                    let stream =
                        futures_util::stream::iter(items).chain(futures_util::stream::pending());
                    return stream.boxed();
                }
            }
        }
        let shared = self.shared.clone();
        let id = id.to_owned();
        // Like Docker's, the stream ends only once the container is not running.
        let end = futures_util::stream::once(async move {
            if follow {
                shared
                    .until(|s| {
                        !s.containers.iter().any(|c| {
                            (c.id == id || c.spec.name == id) && c.status == FakeStatus::Running
                        })
                    })
                    .await;
            }
            None
        })
        .filter_map(std::future::ready);
        futures_util::stream::iter(items).chain(end).boxed()
    }

    fn read_logs(
        &self,
        id: &str,
        tail: Option<u64>,
    ) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
        let outcome = self.shared.call(Call::ReadLogs {
            id: id.to_owned(),
            tail,
        });
        let mut s = self.shared.lock();
        let exists = s.find(id).is_some();
        let mut chunks = s.logs.clone();
        let cut = s.log_cuts.1;
        drop(s);
        if let (Some(cut), None) = (cut, tail) {
            chunks.truncate(cut);
        }
        if let Some(tail) = tail {
            let keep = usize::try_from(tail)
                .unwrap_or(usize::MAX)
                .min(chunks.len());
            chunks.drain(..chunks.len() - keep);
        }
        let mut items: Vec<Result<LogChunk, RuntimeError>> = Vec::new();
        match (outcome, exists) {
            (Err(e), _) => {
                items.extend(chunks.into_iter().map(Ok));
                items.push(Err(e));
            }
            (Ok(_), false) => items.push(Err(not_found("container", id))),
            (Ok(Outcome::Hang), true) => {
                let stream = futures_util::stream::iter(chunks.into_iter().map(Ok))
                    .chain(futures_util::stream::pending());
                return stream.boxed();
            }
            (Ok(Outcome::Answer), true) => items.extend(chunks.into_iter().map(Ok)),
        }
        futures_util::stream::iter(items).boxed()
    }

    async fn stop_container(&self, id: &str, grace_secs: i32) -> Result<(), RuntimeError> {
        let outcome = self.shared.call(Call::StopContainer {
            id: id.to_owned(),
            grace_secs,
        })?;
        let stopped = self.shared.change(|s| {
            let c = s.find(id).ok_or_else(|| not_found("container", id))?;
            if c.status == FakeStatus::Running {
                c.status = FakeStatus::Exited(c.exit_code.unwrap_or(STOPPED_EXIT_CODE));
            }
            Ok(())
        });
        outcome.answer(stopped).await
    }

    async fn remove_container(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let outcome = self.shared.call(Call::RemoveContainer {
            id: id.to_owned(),
            force,
        })?;
        self.shared.change(|s| {
            // Without `force` Docker refuses a running container (409), which moat's
            // Docker client treats as someone else removing it: nothing happens.
            s.containers.retain(|c| {
                let named = c.id == id || c.spec.name == id;
                !named || (!force && c.status == FakeStatus::Running)
            });
        });
        outcome.answer(Ok(())).await
    }

    async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        let outcome = self
            .shared
            .call(Call::ContainerState { id: id.to_owned() })?;
        let state = self.shared.lock().find(id).map(|c| match c.status {
            FakeStatus::Created => ContainerState {
                status: "created".into(),
                running: false,
                exit_code: Some(0),
                finished_at: None,
            },
            FakeStatus::Running => ContainerState {
                status: "running".into(),
                running: true,
                exit_code: Some(0),
                finished_at: None,
            },
            FakeStatus::Exited(code) => ContainerState {
                status: "exited".into(),
                running: false,
                exit_code: Some(code),
                finished_at: Some("2026-01-02T03:04:05.000000006Z".into()),
            },
        });
        outcome.answer(Ok(state)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, image: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn records_calls_in_order_and_answers_like_docker() {
        let fake = FakeRuntime::new();
        assert!(!fake.image_exists("img").await.unwrap());
        let e = fake.create_container(&spec("a", "img")).await.unwrap_err();
        assert!(matches!(e, RuntimeError::NotFound(_)), "{e}");
        fake.add_image("img");
        let id = fake.create_container(&spec("a", "img")).await.unwrap();
        let e = fake.create_container(&spec("a", "img")).await.unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
        fake.remove_container("a", true).await.unwrap();
        fake.remove_container(&id, true).await.unwrap();
        assert!(fake.containers().is_empty());
        assert_eq!(
            fake.kinds(),
            [
                CallKind::ImageExists,
                CallKind::CreateContainer,
                CallKind::CreateContainer,
                CallKind::CreateContainer,
                CallKind::RemoveContainer,
                CallKind::RemoveContainer,
            ]
        );
        assert_eq!(
            fake.calls()[4],
            Call::RemoveContainer {
                id: "a".into(),
                force: true
            }
        );
    }

    #[tokio::test]
    async fn a_scripted_failure_hits_the_next_call_of_its_kind_once() {
        let fake = FakeRuntime::new();
        fake.add_image("img");
        fake.fail_on(CallKind::ImageExists, daemon_error("inspecting"));
        assert!(fake.image_exists("img").await.is_err());
        assert!(fake.image_exists("img").await.unwrap());
        assert_eq!(fake.calls().len(), 2, "a failing call is recorded too");
    }

    #[tokio::test]
    async fn a_build_prints_its_output_and_tags_only_when_it_succeeds() {
        let fake = FakeRuntime::new();
        let step = BuildEvent::Step {
            index: 1,
            total: 1,
            instruction: "FROM scratch".into(),
        };
        fake.set_build_output(vec![step.clone()]);
        let options = BuildOptions::default();
        let events: Vec<_> = fake.build_image("t1", vec![1, 2], &options).collect().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].as_ref().unwrap(), &step);
        assert_eq!(fake.images(), ["t1"]);

        fake.fail_on(
            CallKind::BuildImage,
            RuntimeError::Build {
                step: "step 1/1".into(),
                message: "boom".into(),
                output: vec![],
            },
        );
        let events: Vec<_> = fake.build_image("t2", vec![], &options).collect().await;
        assert!(events.last().unwrap().is_err());
        fake.build_leaves_no_image();
        let events: Vec<_> = fake.build_image("t3", vec![], &options).collect().await;
        assert!(events.iter().all(Result::is_ok));
        assert_eq!(fake.images(), ["t1"], "no tag from a failed build");
        assert_eq!(
            fake.calls()[0],
            Call::BuildImage {
                tag: "t1".into(),
                options,
                context: vec![1, 2]
            }
        );
    }

    #[tokio::test]
    async fn a_command_exits_with_its_code_or_runs_until_stopped() {
        let fake = FakeRuntime::new();
        fake.add_image("img");
        let quick = fake.create_container(&spec("quick", "img")).await.unwrap();
        fake.set_exit_code(&quick, 3);
        fake.start_container(&quick).await.unwrap();
        assert_eq!(fake.wait_container(&quick).await.unwrap(), 3);
        let state = fake.container_state(&quick).await.unwrap().unwrap();
        assert_eq!(
            (state.status.as_str(), state.exit_code),
            ("exited", Some(3))
        );

        let long = fake.create_container(&spec("long", "img")).await.unwrap();
        fake.keep_running(&long);
        fake.start_container(&long).await.unwrap();
        assert!(fake.container_state(&long).await.unwrap().unwrap().running);
        let waiter = {
            let fake = fake.clone();
            let long = long.clone();
            tokio::spawn(async move { fake.wait_container(&long).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a running container holds the wait");
        fake.stop_container(&long, 10).await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), STOPPED_EXIT_CODE);
        assert!(matches!(
            fake.wait_container("gone").await,
            Err(RuntimeError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_log_stream_serves_its_script_and_ends_when_the_container_stops() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("c", FakeStatus::Running);
        let chunk = LogChunk {
            timestamp: None,
            stream: crate::LogStream::Stdout,
            bytes: bytes::Bytes::from_static(b"hello\n"),
        };
        fake.serve_logs(vec![chunk.clone()]);
        let mut logs = fake.follow_logs(&id).boxed();
        assert_eq!(logs.next().await.unwrap().unwrap(), chunk);
        let rest = tokio::spawn(async move { logs.next().await.is_none() });
        tokio::task::yield_now().await;
        assert!(!rest.is_finished(), "the log follows a running container");
        fake.stop_container(&id, 1).await.unwrap();
        assert!(rest.await.unwrap());

        let second = LogChunk {
            bytes: bytes::Bytes::from_static(b"world\n"),
            ..chunk.clone()
        };
        fake.serve_logs(vec![chunk.clone(), second.clone()]);
        let all: Vec<_> = fake.read_logs(&id, None).collect().await;
        assert_eq!(all.len(), 2, "reading ends at the log's end");
        let last: Vec<_> = fake.read_logs(&id, Some(1)).collect().await;
        assert_eq!(
            last.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [second]
        );
        let missing: Vec<_> = fake.read_logs("gone", None).collect().await;
        assert!(matches!(missing[..], [Err(RuntimeError::NotFound(_))]));
    }

    #[tokio::test]
    async fn a_hung_call_takes_effect_and_never_answers() {
        let fake = FakeRuntime::new();
        fake.add_image("img");
        fake.hang_on(CallKind::CreateContainer);
        let c = spec("c", "img");
        tokio::select! {
            _ = fake.create_container(&c) => panic!("a hung call answered"),
            () = fake.hung() => {}
        }
        assert_eq!(
            fake.containers().len(),
            1,
            "the daemon made it all the same"
        );
        fake.create_container(&spec("d", "img")).await.unwrap();
    }
}
