//! Docker's log → `logs.jsonl`: the copy the supervisor makes while the run lives, and
//! the one a later command makes when the supervisor died, going on from where the last
//! one stopped (`logs.pos`), so nothing is repeated or skipped at the seam.
//!
//! Docker keeps a container's whole log until the container is removed, and always
//! returns it from its start in the same order. So a copy that resumes asks for all of
//! it and skips, per stream, the entries `logs.pos` says were consumed. (Docker's `since`
//! would be cheaper but is not exact: entries can share a timestamp, and stdout and
//! stderr are stamped by two goroutines, so timestamps are not in file order.)

use std::time::Duration;

use futures_util::{FutureExt as _, Stream as FuturesStream, StreamExt as _};
use moat_container::{LogChunk, Runtime, RuntimeError};
use moat_home::RunId;

use super::{LogError, LogWriter, Stream};
use crate::{RunError, RunStore};

/// Bytes rendered before a batch is written even if Docker has more ready: large enough
/// that a flood costs one write per ~15,000 lines, small enough that a follower sees
/// output within a fraction of a second.
const BATCH: usize = 1 << 20;

/// How long a log may stay silent before the copy asks whether the container still
/// runs: a stream that does not end although its container stopped is read again (from
/// where it got), rather than waited for forever or given up on.
const STALL: Duration = Duration::from_secs(60);

/// Attempts to read Docker's log in a row that end neither at the log's end nor with
/// any progress, before the copy gives up.
const ATTEMPTS: u32 = 5;

/// Held by whoever copies a run's log (the supervisor for its whole life, or a later
/// command), so two copies never write it at once. An advisory lock on
/// `runs/<id>/.logs.lock`, released when the holder ends, however it ends.
#[derive(Debug)]
pub struct CopyLock {
    _file: fs_err::File,
}

impl CopyLock {
    /// Take the run's copy lock, or `None` when another process holds it (and copies).
    pub fn try_take(store: &RunStore, id: &RunId) -> Result<Option<Self>, RunError> {
        let path = store.logs_lock_path(id);
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RunError::UnknownRun(id.to_string()),
                _ => RunError::io(&path, e),
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(CopyLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(RunError::io(&path, e)),
        }
    }
}

/// Whether a copy waits for the container to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Copy until the container stops and its log is copied to the end.
    UntilStopped,
    /// Copy what Docker has now; for a stopped container that is the rest of the log.
    No,
}

/// How a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyEnd {
    /// The container stopped and `logs.jsonl` holds its whole log (also when a copy
    /// before this one finished it).
    Complete,
    /// The container still runs; `logs.jsonl` holds everything until now.
    UpToDate,
}

/// Copy the log of `container` into run `id`'s `logs.jsonl`, from where it ends. The
/// lock proves nobody else copies meanwhile.
///
/// Errors: a write that failed ([`LogError`]: `logs.jsonl` holds whole lines, and a
/// later copy goes on from there), the container vanished before its log was copied
/// ([`LogError::Vanished`]), or Docker failed [`ATTEMPTS`] times in a row.
pub async fn copy_logs(
    runtime: &impl Runtime,
    store: &RunStore,
    id: &RunId,
    container: &str,
    follow: Follow,
    _lock: &CopyLock,
) -> Result<CopyEnd, RunError> {
    let mut writer = LogWriter::open(&store.logs_path(id), &store.logs_position_path(id))?;
    if writer.is_complete() {
        return Ok(CopyEnd::Complete);
    }
    let mut failures = 0;
    // A copy is complete only when its last entries are Docker's last entries (a 50 MB
    // flood under load once ended 340,920 lines short and was called complete). After
    // the container stopped, the rest is followed again, not read: Docker may still be
    // writing the last of the output into its log then, and only the end of a follow
    // (Docker closing the log) says it has finished.
    loop {
        let before = writer.position().clone();
        let drained = if follow == Follow::UntilStopped {
            let stream = runtime.follow_logs(container);
            drain(runtime, container, stream, &mut writer).await
        } else {
            let stream = runtime.read_logs(container, None);
            drain(runtime, container, stream, &mut writer).await
        };
        let failure = match drained {
            Ok(()) => match runtime.container_state(container).await {
                Ok(Some(state)) if state.running && follow == Follow::No => {
                    return Ok(CopyEnd::UpToDate);
                }
                // A follow that ended while the container runs (the daemon restarted its
                // log reader): follow again, from here.
                Ok(Some(state)) if state.running => Failure::EndedEarly,
                Ok(Some(_)) => {
                    // Docker's own last entry must be the last one copied. If not, go on
                    // from here like any stream that ended early.
                    if ends_where_docker_does(runtime, container, &writer).await? {
                        writer.finish()?;
                        return Ok(CopyEnd::Complete);
                    }
                    Failure::ShortOfTheEnd
                }
                Ok(None) => return Err(vanished(container).into()),
                Err(e) => Failure::Docker(e),
            },
            Err(Drained::Log(e)) => return Err(e.into()),
            Err(Drained::Docker(e)) => Failure::Docker(e),
            Err(Drained::Stalled) => Failure::EndedEarly,
        };
        if let Ok(None) = runtime.container_state(container).await {
            return Err(vanished(container).into());
        }
        if writer.position() != &before {
            failures = 0;
        }
        failures += 1;
        match failure {
            Failure::Docker(e) if failures >= ATTEMPTS => return Err(e.into()),
            Failure::EndedEarly | Failure::ShortOfTheEnd if failures >= ATTEMPTS => {
                return Err(LogError::EndsEarly {
                    container: container.to_owned(),
                }
                .into());
            }
            Failure::Docker(e) => {
                tracing::warn!(container, error = %e, attempt = failures, "reading the log failed; reading on from where it stopped");
            }
            Failure::EndedEarly => {
                tracing::warn!(
                    container,
                    attempt = failures,
                    "the log ended while the container runs; reading on"
                );
            }
            Failure::ShortOfTheEnd => {
                tracing::warn!(
                    container,
                    attempt = failures,
                    "the log stream ended before the log did; reading on from where it stopped"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200) * failures).await;
    }
}

fn vanished(container: &str) -> LogError {
    LogError::Vanished {
        container: container.to_owned(),
    }
}

/// Whether Docker's last entry is the last entry the writer consumed: the last
/// entries of Docker's log that share its last timestamp must be exactly as many as the
/// writer consumed with that timestamp (timestamps only grow, so they are contiguous),
/// of the same stream at the end.
async fn ends_where_docker_does(
    runtime: &impl Runtime,
    container: &str,
    writer: &LogWriter,
) -> Result<bool, RunError> {
    let position = writer.position();
    let same_time = position.same_time.max(1);
    let last = runtime.read_logs(container, Some(same_time + 1));
    let mut docker = Vec::new();
    let mut last = std::pin::pin!(last);
    while let Some(chunk) = last.next().await {
        docker.push(chunk?);
    }
    Ok(match (docker.last(), &position.last) {
        (None, None) => true,
        (Some(chunk), Some((ts, stream))) => {
            let Some(docker_ts) = chunk.timestamp else {
                // Without timestamps there is nothing to compare; trust the stream's end.
                return Ok(Stream::from(chunk.stream) == *stream);
            };
            let at_last = docker
                .iter()
                .rev()
                .take_while(|c| c.timestamp == Some(docker_ts))
                .count() as u64;
            docker_ts == *ts
                && Stream::from(chunk.stream) == *stream
                // Docker has no more entries at that time than were consumed (with only
                // the old count, 0, the last entry alone is compared).
                && (position.same_time == 0 || at_last == position.same_time)
        }
        (Some(_), None) | (None, Some(_)) => false,
    })
}

/// Why an attempt to read the log did not reach its end.
enum Failure {
    Docker(RuntimeError),
    EndedEarly,
    /// The container stopped, but what was copied ends before Docker's last entry.
    ShortOfTheEnd,
}

enum Drained {
    Log(LogError),
    Docker(RuntimeError),
    /// Silent for [`STALL`] although the container stopped.
    Stalled,
}

/// Push every entry of `stream` into `writer` that it has not consumed yet, committing
/// a batch whenever nothing more is ready or [`BATCH`] bytes are waiting.
async fn drain(
    runtime: &impl Runtime,
    container: &str,
    stream: impl FuturesStream<Item = Result<LogChunk, RuntimeError>>,
    writer: &mut LogWriter,
) -> Result<(), Drained> {
    let mut skip = [
        writer.position().entries(Stream::Stdout),
        writer.position().entries(Stream::Stderr),
    ];
    let mut take = |item: Result<LogChunk, RuntimeError>, writer: &mut LogWriter| match item {
        Ok(chunk) => {
            let s = Stream::from(chunk.stream).index();
            if skip[s] > 0 {
                skip[s] -= 1;
            } else {
                writer.push(&chunk);
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    let mut stream = std::pin::pin!(stream);
    loop {
        let next = loop {
            match tokio::time::timeout(STALL, stream.next()).await {
                Ok(next) => break next,
                // A quiet command: its container still runs.
                Err(_) => match runtime.container_state(container).await {
                    Ok(Some(state)) if state.running => {}
                    _ => return Err(Drained::Stalled),
                },
            }
        };
        let Some(item) = next else {
            return writer.commit().map_err(Drained::Log);
        };
        let mut taken = take(item, writer);
        while taken.is_ok() && writer.batch_len() < BATCH {
            match stream.next().now_or_never() {
                Some(Some(item)) => taken = take(item, writer),
                Some(None) => return writer.commit().map_err(Drained::Log),
                None => break,
            }
        }
        writer.commit().map_err(Drained::Log)?;
        taken.map_err(Drained::Docker)?;
    }
}

/// Whether run `id`'s log was copied to its end.
pub(crate) fn is_copied(store: &RunStore, id: &RunId) -> bool {
    super::writer::is_complete(&store.logs_position_path(id))
}

#[cfg(test)]
mod tests {
    use moat_container::fake::{CallKind, FakeRuntime, FakeStatus};
    use moat_container::{LogChunk, LogStream};

    use super::*;
    use crate::read_lines;
    use crate::test_support::TestRun;

    fn entry(stream: LogStream, bytes: impl Into<Vec<u8>>) -> LogChunk {
        LogChunk {
            timestamp: Some("2026-11-23T08:00:00Z".parse().unwrap()),
            stream,
            bytes: bytes.into().into(),
        }
    }

    /// A prepared run on `fake` whose container has ended with code 0.
    async fn ended_run(fake: &FakeRuntime) -> (TestRun, RunId, String) {
        let run = TestRun::new();
        let record = run.prepare(fake, &run.request()).await;
        let container = record.container_id.clone().unwrap();
        fake.start_container(&container).await.unwrap();
        fake.clear_calls();
        (run, record.id, container)
    }

    #[tokio::test]
    async fn a_flood_is_written_in_few_batches_and_whole() {
        let fake = FakeRuntime::new();
        let (run, id, container) = ended_run(&fake).await;
        let entries: Vec<_> = (0..50_000)
            .map(|i| entry(LogStream::Stdout, format!("{i}\n")))
            .collect();
        fake.serve_logs(entries);
        let mut writer = LogWriter::open(
            &run.store.logs_path(&id),
            &run.store.logs_position_path(&id),
        )
        .unwrap();
        let stream = fake.read_logs(&container, None);
        assert!(drain(&fake, &container, stream, &mut writer).await.is_ok());
        // ~65 bytes a record: 3.2 MB in batches of 1 MiB, not 50,000 writes.
        assert!(writer.writes <= 5, "{} writes", writer.writes);
        let lines = read_lines(&run.store.logs_path(&id)).unwrap();
        assert_eq!(lines.len(), 50_000);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, l)| l.line == i.to_string())
        );
    }

    #[tokio::test]
    async fn a_copy_of_an_ended_container_is_complete_and_not_repeated() {
        let fake = FakeRuntime::new();
        let (run, id, container) = ended_run(&fake).await;
        // A 1 MB line as Docker keeps it: 16 KiB entries, the last with the newline.
        let line = "ü".repeat(500_000);
        let mut entries: Vec<_> = format!("{line}\n")
            .into_bytes()
            .chunks(16 * 1024)
            .map(|piece| entry(LogStream::Stdout, piece))
            .collect();
        entries.push(entry(LogStream::Stderr, "after\n"));
        fake.serve_logs(entries);
        let lock = CopyLock::try_take(&run.store, &id).unwrap().unwrap();
        let end = copy_logs(&fake, &run.store, &id, &container, Follow::No, &lock).await;
        assert_eq!(end.unwrap(), CopyEnd::Complete);
        let lines = read_lines(&run.store.logs_path(&id)).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, line, "one line, as it was printed");
        assert_eq!(lines[1].line, "after");
        assert!(is_copied(&run.store, &id));
        // Docker's last entry was compared with the last one copied.
        assert_eq!(
            fake.kinds(),
            [
                CallKind::ReadLogs,
                CallKind::ContainerState,
                CallKind::ReadLogs
            ]
        );
        // A complete log is not copied again.
        fake.clear_calls();
        let again = copy_logs(&fake, &run.store, &id, &container, Follow::No, &lock).await;
        assert_eq!(again.unwrap(), CopyEnd::Complete);
        assert_eq!(fake.calls(), []);
        assert_eq!(read_lines(&run.store.logs_path(&id)).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn only_one_process_copies_a_log_at_a_time() {
        let fake = FakeRuntime::new();
        let (run, id, _) = ended_run(&fake).await;
        let held = CopyLock::try_take(&run.store, &id).unwrap();
        assert!(held.is_some());
        assert!(CopyLock::try_take(&run.store, &id).unwrap().is_none());
        drop(held);
        assert!(CopyLock::try_take(&run.store, &id).unwrap().is_some());
    }

    #[tokio::test]
    async fn a_vanished_container_makes_the_copy_fail_with_what_it_had() {
        let fake = FakeRuntime::new();
        let (run, id, container) = ended_run(&fake).await;
        fake.serve_logs(vec![entry(LogStream::Stdout, "kept\n")]);
        fake.remove_container(&container, true).await.unwrap();
        let lock = CopyLock::try_take(&run.store, &id).unwrap().unwrap();
        let e = copy_logs(&fake, &run.store, &id, &container, Follow::No, &lock)
            .await
            .unwrap_err();
        assert!(
            matches!(e, RunError::Logs(LogError::Vanished { .. })),
            "{e}"
        );
        assert!(!is_copied(&run.store, &id));
    }

    /// A follow that keeps ending before Docker's last entry is an incomplete copy, said
    /// so: never a complete one with lines missing.
    #[tokio::test(start_paused = true)]
    async fn a_follow_that_keeps_ending_early_is_never_called_complete() {
        let fake = FakeRuntime::new();
        let (run, id, container) = ended_run(&fake).await;
        let entries: Vec<_> = (0..100)
            .map(|i| entry(LogStream::Stdout, format!("{i}\n")))
            .collect();
        fake.serve_logs(entries);
        fake.cut_logs(Some(60), None);
        let lock = CopyLock::try_take(&run.store, &id).unwrap().unwrap();
        let e = copy_logs(
            &fake,
            &run.store,
            &id,
            &container,
            Follow::UntilStopped,
            &lock,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, RunError::Logs(LogError::EndsEarly { .. })),
            "{e}"
        );
        assert!(!is_copied(&run.store, &id));
        let lines: Vec<_> = read_lines(&run.store.logs_path(&id))
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect();
        let expected: Vec<_> = (0..60).map(|i| i.to_string()).collect();
        assert_eq!(lines, expected, "what was copied, once each, in order");
    }

    /// The same for a read of a stopped container's log (the copy after a supervisor
    /// died): its end must be Docker's end, even with identical lines sharing one time.
    #[tokio::test(start_paused = true)]
    async fn a_log_that_keeps_ending_early_is_never_called_complete() {
        let fake = FakeRuntime::new();
        let (run, id, container) = ended_run(&fake).await;
        let entries: Vec<_> = (0..100).map(|_| entry(LogStream::Stdout, "y\n")).collect();
        fake.serve_logs(entries);
        fake.cut_logs(None, Some(80));
        let lock = CopyLock::try_take(&run.store, &id).unwrap().unwrap();
        let e = copy_logs(&fake, &run.store, &id, &container, Follow::No, &lock)
            .await
            .unwrap_err();
        assert!(
            matches!(e, RunError::Logs(LogError::EndsEarly { .. })),
            "{e}"
        );
        assert!(!is_copied(&run.store, &id));
        assert_eq!(read_lines(&run.store.logs_path(&id)).unwrap().len(), 80);
    }

    /// A stream that goes silent after its container stopped is read again from where
    /// it got, not waited for forever and not given up on.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_stream_is_read_again_from_where_it_got() {
        let fake = FakeRuntime::new();
        let (run, id, container) = ended_run(&fake).await;
        fake.serve_logs(vec![
            entry(LogStream::Stdout, "one\n"),
            entry(LogStream::Stderr, "two\n"),
        ]);
        fake.hang_on(CallKind::FollowLogs);
        let lock = CopyLock::try_take(&run.store, &id).unwrap().unwrap();
        let end = copy_logs(
            &fake,
            &run.store,
            &id,
            &container,
            Follow::UntilStopped,
            &lock,
        );
        assert_eq!(end.await.unwrap(), CopyEnd::Complete);
        let follows = fake
            .kinds()
            .iter()
            .filter(|k| **k == CallKind::FollowLogs)
            .count();
        assert_eq!(follows, 2);
        let lines: Vec<_> = read_lines(&run.store.logs_path(&id))
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect();
        assert_eq!(lines, ["one", "two"], "nothing twice");
        assert_eq!(
            fake.container(&container).unwrap().status,
            FakeStatus::Exited(0)
        );
    }
}
