//! Docker's log entries → `logs.jsonl` records, in batches, and `logs.pos`, the position
//! of the copy.
//!
//! Entries are rendered into a buffer ([`LogWriter::push`], no I/O) and written by
//! [`LogWriter::commit`] with one `write_all` of whole records: one syscall per batch
//! instead of one per line is what lets the copy keep up with Docker.
//!
//! `logs.pos` is what makes a copy resumable. It holds two [`Position`]s, the one before
//! the batch being written and the one after it, and is overwritten in place (a single
//! `pwrite` of a fixed-size block, which needs no new disk blocks and which a killed
//! process cannot leave half done) *before* the batch is written. Whatever happens
//! next, the length of `logs.jsonl` says which of the two is true: the old length, the
//! batch did not happen; the new one, it did; in between, the batch was cut off, and
//! `logs.jsonl` is cut back to the old length. So a copy that died anywhere resumes with
//! nothing repeated and nothing skipped, and a write that fails (a full disk) leaves
//! whole lines only.

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use moat_container::LogChunk;
use serde::{Deserialize, Serialize};

use super::{LogError, Stream};

/// The most text bytes one record holds. A longer line is split into several (marked
/// `cont`), so no reader ever needs more than this much memory for a record, whatever
/// the command printed.
pub const MAX_PIECE: usize = 256 * 1024;

/// The size of `logs.pos`: its JSON, padded with spaces. Fixed, so rewriting it never
/// changes the file's length or needs a disk block it does not have.
const POSITION_SIZE: usize = 1024;

/// The most bytes held back from a batch: an unfinished UTF-8 character (3) or carriage
/// returns that may turn out to end the line.
const MAX_CARRY: usize = 4;

/// How far a copy of Docker's log got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Bytes of `logs.jsonl` that hold it.
    pub len: u64,
    /// Docker log entries consumed, per stream: a resumed copy skips that many.
    pub stdout: u64,
    pub stderr: u64,
    /// Bytes consumed but not written yet, per stream: the start of a UTF-8 character
    /// whose rest is in the next entry, or carriage returns that may end the line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdout_carry: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr_carry: Vec<u8>,
    /// Per stream, whether its last record was a piece (`cont`): the line is open, and
    /// the log's end must close it.
    #[serde(default, skip_serializing_if = "is_closed")]
    pub open: [bool; 2],
    /// The timestamp and stream of the last entry consumed, to check against Docker's
    /// own last entry when the copy ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<(Timestamp, Stream)>,
    /// How many of the entries consumed, the last one included, carry `last`'s
    /// timestamp. Entries can share one (a clock coarser than the command's output:
    /// `yes` prints identical lines faster than some clocks tick), and then the last
    /// entry alone cannot prove the end was reached; this many plus one of Docker's last
    /// entries can (0 in positions written before this count existed: the last alone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub same_time: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Position {
    /// Entries consumed of `stream`.
    pub fn entries(&self, stream: Stream) -> u64 {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }

    fn count(&mut self, stream: Stream) {
        match stream {
            Stream::Stdout => self.stdout += 1,
            Stream::Stderr => self.stderr += 1,
        }
    }
}

fn is_closed(open: &[bool; 2]) -> bool {
    !open[0] && !open[1]
}

/// `logs.pos` as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PositionFile {
    /// Before the batch being written.
    before: Position,
    /// After it.
    after: Position,
    /// The whole log is copied: the container stopped and its last entry is here.
    #[serde(default)]
    complete: bool,
}

/// Appends a run's output to `logs.jsonl`, batch by batch, keeping `logs.pos` true.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: fs_err::File,
    position_path: PathBuf,
    position_file: fs_err::File,
    /// What `logs.jsonl` holds on disk.
    committed: Position,
    /// What it will hold after the next commit (its `len` is not kept up to date).
    staged: Position,
    /// Rendered records not written yet.
    batch: Vec<u8>,
    /// Per stream, bytes of an unfinished line not rendered yet, and when its first entry
    /// arrived.
    pending: [Vec<u8>; 2],
    pending_ts: [Option<Timestamp>; 2],
    complete: bool,
    /// Test seam: the next write of `logs.jsonl` stores this many bytes, then fails.
    #[cfg(test)]
    fail_next_write: Option<usize>,
    /// Test seam: how many batches were written.
    #[cfg(test)]
    pub(crate) writes: usize,
}

impl LogWriter {
    /// Open `logs.jsonl` and its `logs.pos` to go on where the last copy stopped. A
    /// batch that was cut off (its writer died, or the disk filled) is cut off the file.
    ///
    /// Fails when `logs.pos` is missing beside a non-empty `logs.jsonl` (a log written by
    /// a moat that kept no position) or disagrees with it: then nobody knows where to go
    /// on, and guessing would repeat or skip output.
    pub fn open(path: &Path, position_path: &Path) -> Result<Self, LogError> {
        let write_error = |path: &Path| {
            let path = path.to_owned();
            move |source| LogError::Write { path, source }
        };
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(write_error(path))?;
        let position_file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(position_path)
            .map_err(write_error(position_path))?;
        let len = file.metadata().map_err(write_error(path))?.len();
        let stored = read_position(position_path)?;
        let had_position = stored.is_some();
        let bad = |reason: String| LogError::Position {
            path: position_path.to_owned(),
            reason,
        };
        let (position, complete) = match stored {
            None if len == 0 => (Position::default(), false),
            None => {
                return Err(bad(format!(
                    "is missing, and `{}` is not empty (written by an older moat?)",
                    path.display()
                )));
            }
            Some(stored) => {
                let PositionFile {
                    before,
                    after,
                    complete,
                } = stored;
                if len == after.len {
                    (after, complete)
                } else if len >= before.len && len < after.len {
                    // The last batch never happened, or was cut off.
                    file.set_len(before.len).map_err(write_error(path))?;
                    (before, false)
                } else {
                    return Err(bad(format!(
                        "says {} or {} bytes, but `{}` has {len}",
                        before.len,
                        after.len,
                        path.display()
                    )));
                }
            }
        };
        let mut writer = LogWriter {
            path: path.to_owned(),
            file,
            position_path: position_path.to_owned(),
            position_file,
            pending: [position.stdout_carry.clone(), position.stderr_carry.clone()],
            pending_ts: [None, None],
            staged: position.clone(),
            committed: position,
            batch: Vec::with_capacity(1 << 20),
            complete,
            #[cfg(test)]
            fail_next_write: None,
            #[cfg(test)]
            writes: 0,
        };
        if !had_position {
            // Reserve the file's blocks now, while there is room for them.
            writer.write_position(&PositionFile {
                before: writer.committed.clone(),
                after: writer.committed.clone(),
                complete: false,
            })?;
        }
        Ok(writer)
    }

    /// How far the copy got, as on disk.
    pub fn position(&self) -> &Position {
        &self.committed
    }

    /// Whether the whole log has been copied ([`LogWriter::finish`]).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Bytes rendered and waiting for [`LogWriter::commit`].
    pub fn batch_len(&self) -> usize {
        self.batch.len()
    }

    /// Take one entry of Docker's log. No I/O: it is rendered into the batch; an
    /// unfinished line waits for the stream's next entry (or the commit).
    pub fn push(&mut self, chunk: &LogChunk) {
        let stream = Stream::from(chunk.stream);
        let s = stream.index();
        self.staged.count(stream);
        let ts = chunk.timestamp.unwrap_or_else(Timestamp::now);
        self.staged.same_time = match self.staged.last {
            Some((last, _)) if last == ts => self.staged.same_time + 1,
            _ => 1,
        };
        self.staged.last = Some((ts, stream));
        let mut bytes = &chunk.bytes[..];
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = (&bytes[..newline], &bytes[newline + 1..]);
            if self.pending[s].is_empty() {
                render_line(&mut self.batch, ts, stream, line, true);
                self.staged.open[s] = false;
            } else {
                let mut pending = std::mem::take(&mut self.pending[s]);
                pending.extend_from_slice(line);
                let first = self.pending_ts[s].take().unwrap_or(ts);
                render_line(&mut self.batch, first, stream, &pending, true);
                self.staged.open[s] = false;
                pending.clear();
                // The buffer is kept for the stream's next unfinished line.
                self.pending[s] = pending;
            }
            bytes = rest;
        }
        if !bytes.is_empty() {
            if self.pending[s].is_empty() || self.pending_ts[s].is_none() {
                self.pending_ts[s] = Some(ts);
            }
            self.pending[s].extend_from_slice(bytes);
            if self.pending[s].len() >= MAX_PIECE {
                self.flush_pending(stream, true);
            }
        }
    }

    /// Render the unfinished line of `stream` as `cont` records, but for the bytes that
    /// may still change how it renders (when `keep_carry`).
    fn flush_pending(&mut self, stream: Stream, keep_carry: bool) {
        let s = stream.index();
        let pending = &self.pending[s];
        let upto = if keep_carry {
            carry_start(pending)
        } else {
            pending.len()
        };
        if upto == 0 {
            return;
        }
        let ts = self.pending_ts[s].take().unwrap_or_else(Timestamp::now);
        render_line(&mut self.batch, ts, stream, &pending[..upto], !keep_carry);
        self.staged.open[s] = keep_carry;
        self.pending[s].drain(..upto);
        if !self.pending[s].is_empty() {
            self.pending_ts[s] = Some(ts);
        }
    }

    /// Write everything pushed so far: unfinished lines as `cont` records (so a reader
    /// sees them now, and a crash loses nothing), then `logs.pos`, then the batch in one
    /// `write_all`. When writing fails, `logs.jsonl` is cut back to its length before the
    /// batch and the batch is kept: a later `commit` tries again.
    pub fn commit(&mut self) -> Result<(), LogError> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.flush_pending(stream, true);
        }
        self.staged.stdout_carry.clone_from(&self.pending[0]);
        self.staged.stderr_carry.clone_from(&self.pending[1]);
        let mut after = self.staged.clone();
        after.len = self.committed.len + self.batch.len() as u64;
        if after == self.committed {
            return Ok(());
        }
        self.write_position(&PositionFile {
            before: self.committed.clone(),
            after: after.clone(),
            complete: false,
        })?;
        if let Err(source) = self.write_batch() {
            // Back to whole lines; `logs.pos` already says "before" for this length.
            if let Err(e) = self.file.set_len(self.committed.len) {
                tracing::warn!(error = %e, "cutting a failed batch off the log failed");
            }
            return Err(LogError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.batch.clear();
        self.committed = after;
        Ok(())
    }

    fn write_batch(&mut self) -> std::io::Result<()> {
        #[cfg(test)]
        {
            self.writes += 1;
        }
        #[cfg(test)]
        if let Some(stored) = self.fail_next_write.take() {
            self.file
                .write_all(&self.batch[..stored.min(self.batch.len())])?;
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        self.file.write_all(&self.batch)
    }

    /// The log's end: write what is left (an unfinished last line as a whole one) and
    /// mark the copy complete, so nothing copies this log again.
    pub fn finish(&mut self) -> Result<(), LogError> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.flush_pending(stream, false);
            let s = stream.index();
            if self.staged.open[s] {
                // The line's pieces are written; an empty last one ends it.
                let ts = self.staged.last.map_or_else(Timestamp::now, |(ts, _)| ts);
                render_record(&mut self.batch, ts, stream, b"", false);
                self.staged.open[s] = false;
            }
        }
        self.commit()?;
        self.write_position(&PositionFile {
            before: self.committed.clone(),
            after: self.committed.clone(),
            complete: true,
        })?;
        self.complete = true;
        Ok(())
    }

    fn write_position(&mut self, position: &PositionFile) -> Result<(), LogError> {
        let mut bytes = serde_json::to_vec(position).expect("a position serialises");
        if bytes.len() >= POSITION_SIZE {
            // Only the carries grow, and they are bounded: this is a bug, not a state.
            return Err(LogError::Position {
                path: self.position_path.clone(),
                reason: format!("would need {} bytes", bytes.len()),
            });
        }
        bytes.resize(POSITION_SIZE - 1, b' ');
        bytes.push(b'\n');
        self.position_file
            .file()
            .write_all_at(&bytes, 0)
            .map_err(|source| LogError::Write {
                path: self.position_path.clone(),
                source,
            })
    }

    #[cfg(test)]
    pub(crate) fn fail_next_write_after(&mut self, bytes: usize) {
        self.fail_next_write = Some(bytes);
    }
}

/// `logs.pos`, or `None` when it does not exist or was never written.
fn read_position(path: &Path) -> Result<Option<PositionFile>, LogError> {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Write {
                path: path.to_owned(),
                source,
            });
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes.trim_ascii())
        .map(Some)
        .map_err(|e| LogError::Position {
            path: path.to_owned(),
            reason: format!("is damaged: {e}"),
        })
}

/// Whether the copy recorded in `logs.pos` is complete.
pub(crate) fn is_complete(position_path: &Path) -> bool {
    matches!(read_position(position_path), Ok(Some(p)) if p.complete)
}

/// Where the bytes begin that an unfinished line must hold back: the start of a UTF-8
/// character cut by the entry's end, or trailing carriage returns (dropped if a newline
/// follows, so a terminal's `\r\n` ends a line cleanly).
fn carry_start(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A cut character: a lead byte in the last three whose sequence is longer than what
    // follows it.
    for back in 1..=3.min(len) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let needed = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        if needed > back {
            return len - back;
        }
        break;
    }
    let crs = bytes
        .iter()
        .rev()
        .take(MAX_CARRY)
        .take_while(|&&b| b == b'\r');
    len - crs.count()
}

/// Render `line` (without its newline) as records: one, or several of at most
/// [`MAX_PIECE`] bytes split at character boundaries, all but the last marked `cont`; the
/// last too unless `ends` (the line goes on later).
fn render_line(out: &mut Vec<u8>, ts: Timestamp, stream: Stream, line: &[u8], ends: bool) {
    let mut line = line;
    if ends {
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
    }
    loop {
        if line.len() <= MAX_PIECE {
            render_record(out, ts, stream, line, !ends);
            return;
        }
        let mut cut = MAX_PIECE;
        // Back to a character's first byte (at most three steps in valid UTF-8).
        while cut > MAX_PIECE - 3 && line[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        render_record(out, ts, stream, &line[..cut], true);
        line = &line[cut..];
    }
}

/// One record, by hand rather than through a serialised struct: this runs once per line
/// of output, and a `LogLine` with an owned `String` and serde's generic path cost more
/// than the write itself.
fn render_record(out: &mut Vec<u8>, ts: Timestamp, stream: Stream, text: &[u8], cont: bool) {
    out.extend_from_slice(b"{\"ts\":\"");
    write!(out, "{ts}").expect("writing to a Vec");
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"line\":");
    let text = String::from_utf8_lossy(text);
    serde_json::to_writer(&mut *out, text.as_ref()).expect("a string serialises");
    if cont {
        out.extend_from_slice(b",\"cont\":true");
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use moat_container::LogStream;

    use super::*;
    use crate::logs::{LogReader, read_lines};

    fn chunk(stream: LogStream, bytes: &[u8]) -> LogChunk {
        LogChunk {
            timestamp: Some("2026-11-23T08:00:00Z".parse().unwrap()),
            stream,
            bytes: bytes.to_vec().into(),
        }
    }

    struct Files {
        _dir: tempfile::TempDir,
        logs: PathBuf,
        pos: PathBuf,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        Files {
            logs: dir.path().join("logs.jsonl"),
            pos: dir.path().join("logs.pos"),
            _dir: dir,
        }
    }

    impl Files {
        fn writer(&self) -> LogWriter {
            LogWriter::open(&self.logs, &self.pos).unwrap()
        }

        fn lines(&self) -> Vec<(Stream, String)> {
            read_lines(&self.logs)
                .unwrap()
                .into_iter()
                .map(|l| (l.stream, l.line))
                .collect()
        }

        /// The raw records: (stream, text, cont).
        fn records(&self) -> Vec<(Stream, String, bool)> {
            let mut out = Vec::new();
            LogReader::new(&self.logs)
                .read(|r| {
                    out.push((r.stream, r.text.into_owned(), r.cont));
                    Ok(())
                })
                .unwrap();
            out
        }
    }

    fn owned(lines: &[(Stream, &str)]) -> Vec<(Stream, String)> {
        lines.iter().map(|(s, l)| (*s, (*l).to_owned())).collect()
    }

    #[test]
    fn a_batch_is_written_only_on_commit_and_in_order() {
        let f = files();
        let mut w = f.writer();
        w.push(&chunk(LogStream::Stdout, b"one\n"));
        w.push(&chunk(LogStream::Stderr, b"two\r\n"));
        w.push(&chunk(LogStream::Stdout, b"three\nfour\n"));
        assert!(w.batch_len() > 0);
        assert_eq!(
            fs_err::metadata(&f.logs).unwrap().len(),
            0,
            "nothing before commit"
        );
        w.commit().unwrap();
        assert_eq!(w.batch_len(), 0);
        assert_eq!(
            f.lines(),
            owned(&[
                (Stream::Stdout, "one"),
                (Stream::Stderr, "two"),
                (Stream::Stdout, "three"),
                (Stream::Stdout, "four"),
            ])
        );
        let position = w.position().clone();
        assert_eq!((position.stdout, position.stderr), (2, 1));
        assert_eq!(position.len, fs_err::metadata(&f.logs).unwrap().len());
        // The format older readers know, field for field.
        let text = fs_err::read_to_string(&f.logs).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"ts":"2026-11-23T08:00:00Z","stream":"stdout","line":"one"}"#
        );
        // A reopened writer goes on from the same place.
        drop(w);
        assert_eq!(f.writer().position(), &position);
    }

    #[test]
    fn docker_pieces_of_a_long_line_become_one_line_split_only_at_characters() {
        let f = files();
        let mut w = f.writer();
        // Docker's json-file splits at 16 KiB, wherever that falls: here inside "é".
        let line = "é".repeat(20_000); // 40,000 bytes
        let bytes = format!("{line}\n").into_bytes();
        for piece in bytes.chunks(16 * 1024 + 1) {
            w.push(&chunk(LogStream::Stdout, piece));
            // A commit between the pieces writes what is whole so far.
            w.commit().unwrap();
        }
        w.push(&chunk(LogStream::Stderr, b"between\n"));
        w.commit().unwrap();
        assert_eq!(
            f.lines(),
            owned(&[(Stream::Stdout, line.as_str()), (Stream::Stderr, "between")])
        );
        let records = f.records();
        assert!(
            records.len() > 2,
            "the line was written in pieces: {}",
            records.len()
        );
        assert!(
            records[..records.len() - 2].iter().all(|r| r.2),
            "all but its last are cont"
        );
        assert!(
            !records.iter().any(|r| r.1.contains('\u{FFFD}')),
            "no character was cut"
        );
    }

    #[test]
    fn an_unfinished_last_line_is_ended_when_the_log_ends() {
        let f = files();
        let mut w = f.writer();
        w.push(&chunk(LogStream::Stdout, b"prompt> "));
        w.commit().unwrap();
        assert_eq!(f.records(), [(Stream::Stdout, "prompt> ".into(), true)]);
        // The writer may be another one by then.
        drop(w);
        f.writer().finish().unwrap();
        assert_eq!(
            f.records(),
            [
                (Stream::Stdout, "prompt> ".into(), true),
                (Stream::Stdout, String::new(), false)
            ]
        );
        assert_eq!(f.lines(), owned(&[(Stream::Stdout, "prompt> ")]));
    }

    #[test]
    fn a_line_longer_than_a_piece_is_split_and_joined_back() {
        let f = files();
        let mut w = f.writer();
        let line = "x".repeat(MAX_PIECE * 2 + 10);
        w.push(&chunk(LogStream::Stdout, format!("{line}\n").as_bytes()));
        w.commit().unwrap();
        let records = f.records();
        assert_eq!(
            records.iter().map(|r| (r.1.len(), r.2)).collect::<Vec<_>>(),
            [(MAX_PIECE, true), (MAX_PIECE, true), (10, false)]
        );
        assert_eq!(f.lines(), owned(&[(Stream::Stdout, line.as_str())]));
    }

    #[test]
    fn a_cut_character_and_a_carriage_return_are_carried_across_a_crash() {
        let f = files();
        let mut w = f.writer();
        w.push(&chunk(
            LogStream::Stdout,
            "ab\u{20ac}".as_bytes().split_at(4).0,
        ));
        w.push(&chunk(LogStream::Stderr, b"progress\r"));
        w.commit().unwrap();
        let carried = w.position().clone();
        assert_eq!(carried.stdout_carry, [0xE2, 0x82]);
        assert_eq!(carried.stderr_carry, b"\r");
        // The writer dies; the next one takes the carried bytes from logs.pos.
        drop(w);
        let mut w = f.writer();
        w.push(&chunk(LogStream::Stdout, &"\u{20ac}".as_bytes()[2..]));
        w.push(&chunk(LogStream::Stdout, b"!\n"));
        w.push(&chunk(LogStream::Stderr, b"\n"));
        w.finish().unwrap();
        assert_eq!(
            f.lines(),
            owned(&[
                (Stream::Stdout, "ab\u{20ac}!"),
                (Stream::Stderr, "progress")
            ])
        );
        assert!(w.is_complete());
        assert!(is_complete(&f.pos));
    }

    #[test]
    fn a_failed_write_leaves_whole_lines_and_the_batch_for_a_retry() {
        let f = files();
        let mut w = f.writer();
        w.push(&chunk(LogStream::Stdout, b"kept\n"));
        w.commit().unwrap();
        let good = fs_err::metadata(&f.logs).unwrap().len();
        w.push(&chunk(LogStream::Stdout, b"second\nthird\n"));
        // The disk fills in the middle of the batch.
        w.fail_next_write_after(20);
        let e = w.commit().unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        assert_eq!(
            fs_err::metadata(&f.logs).unwrap().len(),
            good,
            "cut back to whole lines"
        );
        assert_eq!(f.lines(), owned(&[(Stream::Stdout, "kept")]));
        // Another process resuming now would go on from the same, true place.
        assert_eq!(
            LogWriter::open(&f.logs, &f.pos).unwrap().position().stdout,
            1
        );
        // Space again: the same writer writes the kept batch.
        w.commit().unwrap();
        assert_eq!(
            f.lines(),
            owned(&[
                (Stream::Stdout, "kept"),
                (Stream::Stdout, "second"),
                (Stream::Stdout, "third")
            ])
        );
    }

    #[test]
    fn a_batch_cut_off_by_a_crash_is_cut_off_the_file() {
        let f = files();
        let mut w = f.writer();
        w.push(&chunk(LogStream::Stdout, b"kept\n"));
        w.commit().unwrap();
        let good = w.position().clone();
        w.push(&chunk(LogStream::Stdout, b"lost\n"));
        // The process dies after logs.pos and half the batch.
        w.fail_next_write_after(7);
        let _ = w.commit();
        fs_err::OpenOptions::new()
            .append(true)
            .open(&f.logs)
            .unwrap()
            .write_all(b"{\"ts\":")
            .unwrap();
        drop(w);
        let w = f.writer();
        assert_eq!(w.position(), &good);
        assert_eq!(fs_err::metadata(&f.logs).unwrap().len(), good.len);
    }

    #[test]
    fn a_position_that_disagrees_with_the_log_is_refused() {
        // A log without a position (an older moat's): where to go on is unknown.
        let f = files();
        fs_err::write(&f.logs, "{}\n").unwrap();
        let e = LogWriter::open(&f.logs, &f.pos).unwrap_err();
        assert!(e.to_string().contains("older moat"), "{e}");

        // A log shorter than its position says: something else cut it.
        let f = files();
        let mut w = f.writer();
        for line in [b"a\n", b"b\n"] {
            w.push(&chunk(LogStream::Stdout, line));
            w.commit().unwrap();
        }
        drop(w);
        fs_err::write(&f.logs, "").unwrap();
        let e = LogWriter::open(&f.logs, &f.pos).unwrap_err();
        assert!(matches!(e, LogError::Position { .. }), "{e}");
    }

    #[test]
    fn carry_start_holds_back_only_what_may_still_change() {
        assert_eq!(carry_start(b"abc"), 3);
        assert_eq!(carry_start("a\u{e9}".as_bytes()), 3, "a whole character");
        assert_eq!(carry_start(&"a\u{20ac}".as_bytes()[..3]), 1);
        assert_eq!(carry_start(&"\u{1F600}".as_bytes()[..3]), 0);
        assert_eq!(carry_start(b"50%\r"), 3);
        assert_eq!(carry_start(b"\r\r\r\r\r\r"), 2, "at most MAX_CARRY");
        assert_eq!(carry_start(b""), 0);
        assert_eq!(
            carry_start(&[0xFF, 0xFE]),
            2,
            "invalid bytes are not waited for"
        );
    }
}
