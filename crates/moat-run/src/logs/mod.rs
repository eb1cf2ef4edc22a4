//! `logs.jsonl`: one JSON object per output line, appended while the run goes on.
//!
//! `{"ts":"2026-11-23T08:19:30.429205604Z","stream":"stdout","line":"hello"}`. Lines are
//! written in the order Docker recorded them, with Docker's timestamps, so stdout and
//! stderr interleave as they happened.

use std::io::{BufRead, Seek, Write};
use std::path::Path;

use jiff::Timestamp;
use moat_container::{LogChunk, LogStream};
use serde::{Deserialize, Serialize};

/// One line of a run's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
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

impl From<LogStream> for Stream {
    fn from(s: LogStream) -> Self {
        match s {
            LogStream::Stdout => Stream::Stdout,
            LogStream::Stderr => Stream::Stderr,
        }
    }
}

/// Appends lines to a run's `logs.jsonl`, flushing each one so readers see it at once.
#[derive(Debug)]
pub struct LogWriter {
    file: fs_err::File,
}

impl LogWriter {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LogWriter { file })
    }

    /// Record one entry of Docker's log. An entry is normally one line; a terminal's
    /// output may hold several, and carriage returns are dropped.
    pub fn write_chunk(&mut self, chunk: &LogChunk) -> std::io::Result<()> {
        let ts = chunk.timestamp.unwrap_or_else(Timestamp::now);
        let text = String::from_utf8_lossy(&chunk.bytes);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let mut out = Vec::new();
        for line in text.split('\n') {
            let line = LogLine {
                ts,
                stream: chunk.stream.into(),
                line: line.trim_end_matches('\r').to_owned(),
            };
            serde_json::to_writer(&mut out, &line).expect("a log line serialises");
            out.push(b'\n');
        }
        // One write per entry: a reader never sees half a JSON line.
        self.file.write_all(&out)?;
        self.file.flush()
    }
}

/// Reads `logs.jsonl` from a byte offset on, returning complete lines and the offset to
/// continue from. A half-written last line is left for the next call.
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<LogLine>, u64)> {
    let mut file = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut reader = std::io::BufReader::new(file);
    let mut lines = Vec::new();
    let mut position = offset;
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf)?;
        if n == 0 || !buf.ends_with('\n') {
            break;
        }
        position += n as u64;
        match serde_json::from_str::<LogLine>(&buf) {
            Ok(line) => lines.push(line),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping bad log line"),
        }
    }
    Ok((lines, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(stream: LogStream, text: &str) -> LogChunk {
        LogChunk {
            timestamp: Some("2026-11-23T08:00:00Z".parse().unwrap()),
            stream,
            bytes: text.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn writes_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.jsonl");
        let mut w = LogWriter::open(&path).unwrap();
        w.write_chunk(&chunk(LogStream::Stdout, "one\n")).unwrap();
        w.write_chunk(&chunk(LogStream::Stderr, "two\r\n")).unwrap();
        w.write_chunk(&chunk(LogStream::Stdout, "three\nfour\n"))
            .unwrap();
        w.write_chunk(&chunk(LogStream::Stdout, "partial")).unwrap();
        let (lines, offset) = read_from(&path, 0).unwrap();
        let text: Vec<_> = lines.iter().map(|l| (l.stream, l.line.as_str())).collect();
        assert_eq!(
            text,
            [
                (Stream::Stdout, "one"),
                (Stream::Stderr, "two"),
                (Stream::Stdout, "three"),
                (Stream::Stdout, "four"),
                (Stream::Stdout, "partial"),
            ]
        );
        let (more, same) = read_from(&path, offset).unwrap();
        assert!(more.is_empty());
        assert_eq!(same, offset);
    }

    #[test]
    fn a_half_written_line_waits_for_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.jsonl");
        fs_err::write(
            &path,
            "{\"ts\":\"2026-11-23T08:00:00Z\",\"stream\":\"stdout\",\"line\":\"a\"}\n{\"ts\":",
        )
        .unwrap();
        let (lines, offset) = read_from(&path, 0).unwrap();
        assert_eq!(lines.len(), 1);
        let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"\"2026-11-23T08:00:01Z\",\"stream\":\"stderr\",\"line\":\"b\"}\n")
            .unwrap();
        let (lines, _) = read_from(&path, offset).unwrap();
        assert_eq!(lines[0].line, "b");
        assert_eq!(lines[0].stream, Stream::Stderr);
    }
}
