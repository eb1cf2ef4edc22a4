//! Snapshots during a run: the supervisor's watchers for git commits and idle periods,
//! the test that tells an agent turn from the proxy's events, and the one worker that
//! takes the snapshots they ask for, in turn.
//!
//! Everything here runs on two threads of its own, never on the proxy's path: asking for
//! a snapshot only pushes onto a queue, and a burst of asks while a snapshot is being
//! taken collapses into one more snapshot.
//!
//! **Commits** are seen in the workspace's `.git/logs/HEAD` (the reflog, which git writes
//! for every commit in a non-bare repository): one `stat` a second, and a read of what was
//! appended when it grew. A line whose message starts with `commit` (`commit:`,
//! `commit (initial):`, `commit (amend):`, `commit (merge):`) is a commit; a checkout or a
//! reset is not.
//!
//! **Idle** is seen by a walk of the workspace (`.git` left out) that hashes each entry's
//! path, size, mode and mtime: no file is read. It is the cheapest question that is
//! always right about "did anything change": the store's own stat-cached snapshot answers
//! it too, but spawns git three times and writes the changed files' contents to the store
//! on every poll. A walk costs a few µs an entry (measured: 100k files in 0.7 s with a
//! debug build and a warm cache, most of it `statx`), so the time between walks is kept
//! at 20 times the last walk's cost (at least 1 s, at most 30 s): on any workspace the
//! walks use at most 5% of one core, and idle is seen at most that interval late. Files the snapshot rules leave
//! out (a build's `target/`) count as changes here; the idle snapshot is then skipped
//! when the tree it would hold is the one the run's last snapshot holds — as is an agent
//! turn's, so that turns which change nothing do not push useful snapshots out of
//! retention.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use moat_home::RunId;
use moat_snapshot::Trigger;

use crate::{RunStore, SnapshotPlan};

/// How often the watchers look.
const TICK: Duration = Duration::from_secs(1);
/// The idle walk takes at most 1/`WALK_DUTY` of the time between walks.
const WALK_DUTY: u32 = 20;
const MAX_WALK_INTERVAL: Duration = Duration::from_secs(30);
/// The host of the Anthropic API, whose Messages responses end agent turns.
pub const ANTHROPIC_API_HOST: &str = "api.anthropic.com";
/// Of a reflog's new lines, at most this much of the end is read.
const REFLOG_TAIL: u64 = 64 * 1024;

/// A snapshot asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRequest {
    pub trigger: Trigger,
    pub label: Option<String>,
}

/// Requests not served yet.
#[derive(Debug, Default)]
struct Pending {
    requests: Vec<SnapshotRequest>,
    /// Whoever waits for the next snapshot to be taken (an agent's Messages request).
    waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    closed: bool,
}

/// Which trigger names a snapshot that serves several: the most telling first.
fn rank(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::GitCommit => 0,
        Trigger::AgentTurn => 1,
        Trigger::Idle => 2,
        _ => 3,
    }
}

impl Pending {
    /// A second ask with the same trigger replaces the first (the newer label wins).
    fn push(&mut self, request: SnapshotRequest) {
        match self
            .requests
            .iter_mut()
            .find(|r| r.trigger == request.trigger)
        {
            Some(same) => *same = request,
            None => self.requests.push(request),
        }
    }

    /// The one snapshot that serves every pending ask, named for the most telling of
    /// them, the others in its label.
    fn take(&mut self) -> Option<SnapshotRequest> {
        let mut all = std::mem::take(&mut self.requests);
        all.sort_by_key(|r| rank(r.trigger));
        let mut all = all.into_iter();
        let mut first = all.next()?;
        let others: Vec<&str> = all.map(|r| r.trigger.as_str()).collect();
        if !others.is_empty() {
            let also = format!("also {}", others.join(", "));
            first.label = Some(match first.label {
                Some(label) => format!("{label} ({also})"),
                None => also,
            });
        }
        Some(first)
    }
}

/// Where snapshots are asked for; cheap to clone, never blocks for longer than a lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct SnapshotQueue {
    shared: Arc<(Mutex<Pending>, Condvar)>,
}

impl SnapshotQueue {
    pub(crate) fn request(&self, trigger: Trigger, label: Option<String>) {
        let (pending, wake) = &*self.shared;
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.closed {
            pending.push(SnapshotRequest { trigger, label });
            wake.notify_one();
        }
    }

    /// Ask for a snapshot and learn when it is taken (or skipped, or failed): the
    /// receiver resolves then, or errs once the queue is closed without it.
    pub(crate) fn request_waiting(&self, trigger: Trigger) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (pending, wake) = &*self.shared;
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.closed {
            pending.push(SnapshotRequest {
                trigger,
                label: None,
            });
            pending.waiters.push(tx);
            wake.notify_one();
        }
        rx
    }

    /// Tell whoever waited for the snapshot just taken.
    fn served(waiters: Vec<tokio::sync::oneshot::Sender<()>>) {
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }

    /// No more asks; the worker serves what is pending and ends.
    pub(crate) fn close(&self) {
        let (pending, wake) = &*self.shared;
        pending.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        wake.notify_all();
    }

    /// The next snapshot to take; `None` once closed and drained.
    #[cfg(test)]
    pub(crate) fn next(&self) -> Option<SnapshotRequest> {
        self.next_with_waiters().map(|(request, waiters)| {
            Self::served(waiters);
            request
        })
    }

    /// The next snapshot to take and who waits for it to be taken.
    fn next_with_waiters(
        &self,
    ) -> Option<(SnapshotRequest, Vec<tokio::sync::oneshot::Sender<()>>)> {
        let (pending, wake) = &*self.shared;
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(request) = pending.take() {
                return Some((request, std::mem::take(&mut pending.waiters)));
            }
            if pending.closed {
                return None;
            }
            pending = wake.wait(pending).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Whether `method url` starts an agent turn's Messages call to the Anthropic API (not
/// `/v1/messages/count_tokens`). When it is sent, the tools of the turn before have run
/// (their results are in it) and none of the next turn's have started: the workspace is
/// then exactly what the last turn left.
pub(crate) fn is_messages_request(method: &str, url: &str) -> bool {
    if !method.eq_ignore_ascii_case("POST") {
        return false;
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    host.eq_ignore_ascii_case(ANTHROPIC_API_HOST) && path == "/v1/messages"
}

/// How long an agent's Messages request waits for its turn snapshot at most; a slow
/// snapshot then goes on beside the request.
const TURN_WAIT: Duration = Duration::from_secs(10);

/// The proxy's gate for agent turns: each Messages request waits until the snapshot of
/// the turn before it is taken (only that request waits).
pub(crate) struct TurnGate(pub SnapshotQueue);

impl moat_proxy::RequestGate for TurnGate {
    fn before_forward(&self, method: &str, url: &str) -> Option<moat_proxy::GateWait> {
        if !is_messages_request(method, url) {
            return None;
        }
        let taken = self.0.request_waiting(Trigger::AgentTurn);
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(TURN_WAIT, taken).await;
        }))
    }
}

/// Tells when the workspace changed and then stayed unchanged for `threshold`: once per
/// quiet period, never again while nothing changes.
#[derive(Debug)]
pub(crate) struct IdleDebounce {
    threshold: Duration,
    last: Option<u64>,
    /// When the last change was seen; `None` once its idle snapshot was asked for.
    changed_at: Option<Instant>,
}

impl IdleDebounce {
    pub(crate) fn new(threshold: Duration) -> Self {
        IdleDebounce {
            threshold,
            last: None,
            changed_at: None,
        }
    }

    /// Look at the workspace's `fingerprint` at `now`; `true`: take the idle snapshot.
    pub(crate) fn observe(&mut self, fingerprint: u64, now: Instant) -> bool {
        match self.last {
            // The first look is the baseline: what the run started from is the pre-run
            // snapshot's.
            None => {
                self.last = Some(fingerprint);
                false
            }
            Some(last) if last != fingerprint => {
                self.last = Some(fingerprint);
                self.changed_at = Some(now);
                false
            }
            Some(_) => match self.changed_at {
                Some(at) if now.duration_since(at) >= self.threshold => {
                    self.changed_at = None;
                    true
                }
                _ => false,
            },
        }
    }
}

/// A hash of the workspace's entries' paths, types, sizes, modes and mtimes (`.git`
/// left out, links not followed, nothing read). Order-independent: entries are summed.
pub(crate) fn fingerprint(root: &Path) -> u64 {
    let mut sum: u64 = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        // An entry that vanishes mid-walk is a change the next walk sees.
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name() == ".git" {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let path = entry.path();
            let mut hasher = DefaultHasher::new();
            path.hash(&mut hasher);
            (
                meta.mode(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ino(),
            )
                .hash(&mut hasher);
            sum = sum.wrapping_add(hasher.finish());
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    sum
}

/// A commit in a reflog: its id and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    pub id: String,
    pub subject: String,
}

impl Commit {
    /// `abc1234 the subject`, for a snapshot's label.
    pub(crate) fn label(&self) -> String {
        let short: String = self.id.chars().take(7).collect();
        let subject: String = self.subject.chars().take(60).collect();
        format!("{short} {subject}").trim_end().to_owned()
    }
}

/// The commits among complete reflog lines (`OLD NEW NAME <EMAIL> TIME TZ\tMESSAGE`).
pub(crate) fn commits_in(reflog: &str) -> Vec<Commit> {
    reflog
        .lines()
        .filter_map(|line| {
            let (head, message) = line.split_once('\t')?;
            let id = head.split(' ').nth(1)?;
            if !message.starts_with("commit") {
                return None;
            }
            let subject = message.split_once(": ").map_or("", |(_, s)| s);
            Some(Commit {
                id: id.to_owned(),
                subject: subject.to_owned(),
            })
        })
        .collect()
}

/// The git directory of `workspace`: `.git`, or where a `.git` file (a worktree's, a
/// submodule's) points.
fn git_dir(workspace: &Path) -> PathBuf {
    let dot = workspace.join(".git");
    if dot.symlink_metadata().is_ok_and(|m| m.is_file())
        && let Ok(text) = moat_home::read_bounded(&dot, moat_home::FileKind::WORKSPACE_FILE)
        && let Some(target) = String::from_utf8_lossy(&text)
            .trim()
            .strip_prefix("gitdir:")
    {
        return workspace.join(target.trim());
    }
    dot
}

/// Watches the workspace's reflog for commits. A repository made during the run (`git
/// init`) is found when its reflog appears.
#[derive(Debug)]
pub(crate) struct CommitWatch {
    workspace: PathBuf,
    /// How much of the reflog was seen (complete lines only).
    seen: u64,
}

impl CommitWatch {
    pub(crate) fn new(workspace: &Path) -> Self {
        let mut watch = CommitWatch {
            workspace: workspace.to_owned(),
            seen: 0,
        };
        watch.seen = watch.reflog_len().unwrap_or(0);
        watch
    }

    fn reflog(&self) -> PathBuf {
        git_dir(&self.workspace).join("logs").join("HEAD")
    }

    fn reflog_len(&self) -> Option<u64> {
        let meta = self.reflog().symlink_metadata().ok()?;
        meta.is_file().then_some(meta.len())
    }

    /// The newest commit made since the last poll, if any.
    pub(crate) fn poll(&mut self) -> Option<Commit> {
        let len = self.reflog_len().unwrap_or(0);
        if len < self.seen {
            // Rewritten (`git reflog expire`): start over from its end.
            self.seen = len;
        }
        if len == self.seen {
            return None;
        }
        let from = self.seen.max(len.saturating_sub(REFLOG_TAIL));
        let appended = match read_range(&self.reflog(), from, len) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::debug!(error = %e, "reading the workspace's reflog");
                return None;
            }
        };
        // A line being written is read once it is complete.
        let complete = appended
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        if complete == 0 && from == self.seen {
            return None;
        }
        self.seen = from + complete as u64;
        commits_in(&String::from_utf8_lossy(&appended[..complete])).pop()
    }
}

/// Bytes `from..to` of a regular file, opened so that a FIFO or a link put in its place
/// cannot make the watcher wait or read elsewhere.
fn read_range(path: &Path, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use nix::fcntl::OFlag;
    let flags = OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW;
    let mut file = fs_err::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The watchers and the worker of a run with a snapshot plan.
pub(crate) struct SnapshotTriggers {
    queue: SnapshotQueue,
    /// Whether agent turns ask for snapshots.
    agent_turns: bool,
    stop_watching: Option<mpsc::Sender<()>>,
    watcher: Option<std::thread::JoinHandle<()>>,
    worker: std::thread::JoinHandle<()>,
}

impl SnapshotTriggers {
    /// Start watching run `id`'s workspace by its plan (`None`: the run takes no
    /// snapshots, or only the pre-run one).
    pub(crate) fn start(
        store: &RunStore,
        id: &RunId,
        workspace: &Path,
    ) -> Option<SnapshotTriggers> {
        let plan = match store.load_snapshot_plan(id) {
            Ok(Some(plan)) => plan,
            Ok(None) => return None,
            Err(e) => {
                report_failure(
                    store,
                    id,
                    "the run's snapshot plan could not be read",
                    &e.to_string(),
                );
                return None;
            }
        };
        if !plan.git_commits && plan.idle_after().is_none() && !plan.agent_turns {
            return None;
        }
        let queue = SnapshotQueue::default();
        let worker = {
            let (queue, store, id, workspace, plan) = (
                queue.clone(),
                store.clone(),
                id.clone(),
                workspace.to_owned(),
                plan.clone(),
            );
            std::thread::Builder::new()
                .name("snapshots".into())
                .spawn(move || serve(&queue, &store, &id, &workspace, &plan))
                .expect("a thread starts")
        };
        let watching = plan.git_commits || plan.idle_after().is_some();
        let (stop_watching, watcher) = if watching {
            let (tx, rx) = mpsc::channel();
            // The baselines are taken here, before the container starts: a commit or a
            // change the command makes at once is then seen as one.
            let commits = plan.git_commits.then(|| CommitWatch::new(workspace));
            let idle = plan.idle_after().map(|threshold| {
                let mut idle = IdleDebounce::new(threshold);
                idle.observe(fingerprint(workspace), Instant::now());
                idle
            });
            let (queue, workspace) = (queue.clone(), workspace.to_owned());
            let watcher = std::thread::Builder::new()
                .name("snapshot-watch".into())
                .spawn(move || watch(&queue, &workspace, commits, idle, &rx))
                .expect("a thread starts");
            (Some(tx), Some(watcher))
        } else {
            (None, None)
        };
        Some(SnapshotTriggers {
            queue,
            agent_turns: plan.agent_turns,
            stop_watching,
            watcher,
            worker,
        })
    }

    /// Where the proxy's events ask for agent-turn snapshots (`None`: they do not).
    pub(crate) fn turns(&self) -> Option<SnapshotQueue> {
        self.agent_turns.then(|| self.queue.clone())
    }

    /// Stop watching (a commit made just before the end is still seen), take what is
    /// still asked for, and wait for it. Blocks.
    pub(crate) fn finish(mut self) {
        drop(self.stop_watching.take());
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        self.queue.close();
        let _ = self.worker.join();
    }
}

/// The watcher thread: commits each tick, idle at the pace its walk's cost allows, until
/// `stop` says so (or its sender is gone). Both come with their baselines taken.
fn watch(
    queue: &SnapshotQueue,
    workspace: &Path,
    mut commits: Option<CommitWatch>,
    mut idle: Option<IdleDebounce>,
    stop: &mpsc::Receiver<()>,
) {
    let mut next_walk = Instant::now() + TICK;
    loop {
        if let Some(idle) = &mut idle
            && Instant::now() >= next_walk
        {
            let started = Instant::now();
            let print = fingerprint(workspace);
            let cost = started.elapsed();
            next_walk = Instant::now() + (cost * WALK_DUTY).clamp(TICK, MAX_WALK_INTERVAL);
            if idle.observe(print, Instant::now()) {
                queue.request(Trigger::Idle, None);
            }
        }
        let stopped = !matches!(
            stop.recv_timeout(TICK),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if let Some(commit) = commits.as_mut().and_then(CommitWatch::poll) {
            queue.request(Trigger::GitCommit, Some(commit.label()));
        }
        if stopped {
            return;
        }
    }
}

/// The worker thread: one snapshot at a time, until the queue is closed and drained.
fn serve(
    queue: &SnapshotQueue,
    store: &RunStore,
    id: &RunId,
    workspace: &Path,
    plan: &SnapshotPlan,
) {
    while let Some((request, waiters)) = queue.next_with_waiters() {
        let trigger = request.trigger;
        // A timer's or a turn's snapshot of the tree the last snapshot holds would undo
        // nothing, and would push a useful one out of retention: agents make Messages
        // calls that change no file (a title, a summary, a turn that only reads). A
        // commit's is always taken: its label says which commit it is.
        let only_if_changed = matches!(trigger, Trigger::Idle | Trigger::AgentTurn);
        match crate::snapshots::take_snapshot_if(
            store,
            id,
            workspace,
            plan,
            trigger,
            request.label,
            only_if_changed,
        ) {
            Ok(Some(meta)) => tracing::info!(
                snapshot = %meta.id,
                trigger = trigger.as_str(),
                changed = meta.changed,
                "snapshot taken"
            ),
            Ok(None) => tracing::debug!(trigger = trigger.as_str(), "nothing changed"),
            Err(e) => report_failure(
                store,
                id,
                &format!("the {} snapshot failed", trigger.as_str()),
                &e.to_string(),
            ),
        }
        SnapshotQueue::served(waiters);
    }
}

/// A snapshot that failed (`what` says which): logged, and kept in the run's record,
/// where `moat snapshot list` and `moat list --json` show it.
fn report_failure(store: &RunStore, id: &RunId, what: &str, error: &str) {
    tracing::warn!(error, "{what}");
    let now = jiff::Timestamp::now();
    let at = now.round(jiff::Unit::Second).unwrap_or(now);
    let message = format!("{what} at {at}: {error}");
    if let Err(e) = store.update(id, |r| r.snapshot_error = Some(message.clone())) {
        tracing::warn!(error = %e, "recording the failed snapshot");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_request_to_anthropic_starts_a_turn_and_nothing_else_does() {
        for url in [
            "https://api.anthropic.com/v1/messages",
            "https://api.anthropic.com:443/v1/messages?beta=true",
            "https://API.Anthropic.com/v1/messages",
        ] {
            assert!(is_messages_request("POST", url), "{url}");
        }
        for (method, url) in [
            ("GET", "https://api.anthropic.com/v1/messages"),
            ("POST", "https://api.anthropic.com/v1/messages/count_tokens"),
            ("POST", "https://api.anthropic.com/v1/models"),
            ("POST", "https://api.anthropic.com.evil.example/v1/messages"),
            ("POST", "https://example.com/v1/messages"),
            ("CONNECT", "api.anthropic.com:443"),
        ] {
            assert!(!is_messages_request(method, url), "{method} {url}");
        }
    }

    #[tokio::test]
    async fn a_messages_request_waits_for_its_turn_snapshot() {
        use moat_proxy::RequestGate;
        let queue = SnapshotQueue::default();
        let gate = TurnGate(queue.clone());
        assert!(gate.before_forward("GET", "https://example.com/").is_none());
        let wait = gate
            .before_forward("POST", "https://api.anthropic.com/v1/messages")
            .expect("a turn");
        let worker = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let (request, waiters) = queue.next_with_waiters().unwrap();
                assert_eq!(request.trigger, Trigger::AgentTurn);
                SnapshotQueue::served(waiters);
            })
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("served before the timeout");
        worker.join().unwrap();
    }

    #[test]
    fn idle_fires_once_after_a_change_and_a_quiet_threshold() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut idle = IdleDebounce::new(Duration::from_secs(3));
        assert!(!idle.observe(1, at(0)), "the baseline");
        assert!(!idle.observe(1, at(10)), "no change, no snapshot");
        assert!(!idle.observe(2, at(11)), "a change");
        assert!(!idle.observe(3, at(12)), "still changing");
        assert!(!idle.observe(3, at(14)), "quiet for 2s only");
        assert!(idle.observe(3, at(15)), "quiet for the threshold");
        assert!(!idle.observe(3, at(16)), "once");
        assert!(!idle.observe(3, at(60)), "not again while nothing changes");
        assert!(!idle.observe(4, at(61)));
        assert!(idle.observe(4, at(64)), "the next quiet period");
    }

    #[test]
    fn the_fingerprint_changes_with_the_workspace_but_not_with_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::write(root.join("a"), "1").unwrap();
        fs_err::create_dir(root.join("d")).unwrap();
        let before = fingerprint(root);
        assert_eq!(fingerprint(root), before);
        fs_err::create_dir_all(root.join(".git/objects")).unwrap();
        fs_err::write(root.join(".git/objects/x"), "y").unwrap();
        assert_eq!(fingerprint(root), before, ".git is not the workspace's");
        fs_err::write(root.join("d/b"), "2").unwrap();
        let with_b = fingerprint(root);
        assert_ne!(with_b, before);
        fs_err::write(root.join("d/b"), "22").unwrap();
        assert_ne!(fingerprint(root), with_b, "a size change");
        fs_err::remove_file(root.join("d/b")).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("l")).unwrap();
        assert_ne!(fingerprint(root), before, "a dangling link counts");
    }

    const Z: &str = "0000000000000000000000000000000000000000";

    fn reflog_line(old: &str, new: &str, message: &str) -> String {
        format!("{old} {new} A U Thor <a@example.com> 1764590000 +0000\t{message}\n")
    }

    #[test]
    fn commits_are_told_from_checkouts_and_resets_in_a_reflog() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let log = [
            reflog_line(Z, &a, "commit (initial): first"),
            reflog_line(&a, &b, "commit: second: with a colon"),
            reflog_line(&b, &a, "checkout: moving from main to old"),
            reflog_line(&a, &b, "reset: moving to HEAD@{1}"),
            reflog_line(&b, &c, "commit (amend): second, amended"),
        ]
        .concat();
        let commits = commits_in(&log);
        let subjects: Vec<&str> = commits.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(
            subjects,
            ["first", "second: with a colon", "second, amended"]
        );
        assert_eq!(commits[2].id, c);
        assert_eq!(commits[2].label(), "ccccccc second, amended");
    }

    #[test]
    fn a_commit_watch_sees_new_commits_once_and_not_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let mut watch = CommitWatch::new(ws);
        assert_eq!(watch.poll(), None, "no repository yet");
        let logs = ws.join(".git/logs");
        fs_err::create_dir_all(&logs).unwrap();
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        fs_err::write(
            logs.join("HEAD"),
            reflog_line(Z, &a, "commit (initial): one"),
        )
        .unwrap();
        assert_eq!(watch.poll().unwrap().subject, "one", "git init in the run");
        assert_eq!(watch.poll(), None, "once");

        let mut watch = CommitWatch::new(ws);
        assert_eq!(watch.poll(), None, "what was there before is not new");
        let mut log = fs_err::read_to_string(logs.join("HEAD")).unwrap();
        log.push_str(&reflog_line(&a, &b, "checkout: moving from main to x"));
        fs_err::write(logs.join("HEAD"), &log).unwrap();
        assert_eq!(watch.poll(), None, "a checkout is no commit");
        let line = reflog_line(&b, &a, "commit: two");
        let (start, end) = line.split_at(20);
        log.push_str(start);
        fs_err::write(logs.join("HEAD"), &log).unwrap();
        assert_eq!(watch.poll(), None, "half a line waits");
        log.push_str(end);
        fs_err::write(logs.join("HEAD"), &log).unwrap();
        assert_eq!(watch.poll().unwrap().subject, "two");
    }

    #[test]
    fn a_burst_of_asks_is_one_snapshot_named_for_the_most_telling() {
        let queue = SnapshotQueue::default();
        queue.request(Trigger::Idle, None);
        queue.request(Trigger::AgentTurn, None);
        queue.request(Trigger::AgentTurn, None);
        queue.request(Trigger::GitCommit, Some("abc1234 one".into()));
        queue.request(Trigger::GitCommit, Some("def5678 two".into()));
        let request = queue.next().unwrap();
        assert_eq!(request.trigger, Trigger::GitCommit);
        assert_eq!(
            request.label.as_deref(),
            Some("def5678 two (also agent-turn, idle)")
        );
        queue.request(Trigger::AgentTurn, None);
        queue.close();
        queue.request(Trigger::Idle, None);
        assert_eq!(
            queue.next(),
            Some(SnapshotRequest {
                trigger: Trigger::AgentTurn,
                label: None
            }),
            "what was asked before the close is still taken"
        );
        assert_eq!(queue.next(), None);
    }
}
