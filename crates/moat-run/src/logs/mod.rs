//! `logs.jsonl`: a run's output, one JSON object per record, appended while the run goes
//! on, and `logs.pos`, which says how much of Docker's log it holds.
//!
//! `{"ts":"2026-11-23T08:19:30.429205604Z","stream":"stdout","line":"hello"}`. Records are
//! written in the order Docker recorded them, with Docker's timestamps, so stdout and
//! stderr interleave as they happened. A line is one record, except a line longer than
//! [`MAX_PIECE`] bytes or one still unfinished when a batch was written: it is split at
//! UTF-8 character boundaries into records marked `"cont":true` ("the line goes on in
//! this stream's next record"), ended by an unmarked one. Readers that know no `cont`
//! (older moats, `jq`) see the pieces as lines; [`LogReader`] joins them back.
//!
//! * [`writer`]: Docker's log entries → records, in batches (one `write_all` each), with
//!   the position of the copy in `logs.pos`.
//! * [`reader`]: records → lines, streaming from an offset or from the last N lines.
//! * [`copy`]: Docker → `logs.jsonl`, resuming from `logs.pos` after a crash.
//! * [`sizes`]: `terminal.jsonl`, the sizes an interactive run's terminal had, so its
//!   output can be replayed on a screen of the size it was drawn for.

mod copy;
mod reader;
mod sizes;
mod writer;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use moat_container::LogStream;
use serde::{Deserialize, Serialize};

pub(crate) use copy::is_copied;
pub use copy::{CopyEnd, CopyLock, Follow, copy_logs};
pub use reader::{LogReader, LogRecord};
pub use sizes::{TerminalSize, read_terminal_sizes, record_terminal_size};
pub use writer::{LogWriter, MAX_PIECE, Position};

/// One whole line of a run's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When Docker received the line's first byte.
    pub ts: Timestamp,
    pub stream: Stream,
    pub line: String,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// 0 for stdout, 1 for stderr: per-stream state lives in two-element arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

impl From<LogStream> for Stream {
    fn from(s: LogStream) -> Self {
        match s {
            LogStream::Stdout => Stream::Stdout,
            LogStream::Stderr => Stream::Stderr,
        }
    }
}

/// What can go wrong keeping a run's log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Writing `logs.jsonl` or `logs.pos` failed; `logs.jsonl` was cut back to its last
    /// whole batch, so it holds whole lines only and the copy can go on from there.
    #[error("writing the run's log: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `logs.pos` cannot be trusted, so where to go on copying is unknown.
    #[error("the run's log position `{}` {reason}", path.display())]
    Position { path: PathBuf, reason: String },

    /// The container is gone, and with it the part of its log not copied yet.
    #[error("container `{container}` disappeared before its whole log was copied")]
    Vanished { container: String },

    /// Another process holds the run's copy lock.
    #[error("another process is copying this run's log")]
    Busy,

    /// Docker's log kept ending while the container ran, going silent after it stopped,
    /// or ending before Docker's own last entry, however often it was read again.
    #[error("Docker's log of container `{container}` kept ending before its end")]
    EndsEarly { container: String },
}

impl LogError {
    /// Whether the disk (or the user's quota) is full: the one failure the user can fix
    /// by freeing space, after which the copy goes on where it stopped.
    pub fn is_disk_full(&self) -> bool {
        match self {
            LogError::Write { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    /// The underlying I/O error of a failed write.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            LogError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Every whole line of `logs.jsonl`, pieces joined (a line still unfinished at the end is
/// included as it is). Holds the whole log in memory: for tests and small logs; `moat
/// logs` streams with [`LogReader`].
pub fn read_lines(path: &Path) -> std::io::Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    let mut open: [Option<LogLine>; 2] = [None, None];
    LogReader::new(path).read(|record| {
        let s = record.stream.index();
        let line = open[s].get_or_insert_with(|| LogLine {
            ts: record.timestamp().unwrap_or_default(),
            stream: record.stream,
            line: String::new(),
        });
        line.line.push_str(&record.text);
        if !record.cont {
            lines.push(open[s].take().expect("just filled"));
        }
        Ok(())
    })?;
    lines.extend(open.into_iter().flatten());
    Ok(lines)
}
