//! `logs.jsonl` → records, streaming: from the start, or from where the last N lines
//! begin (found by reading backwards from the end, in blocks), and on as the file grows.
//!
//! Memory is bounded by one read block and one record ([`super::MAX_PIECE`] of text),
//! whatever the log's size: records are handed out one at a time and never collected.

use std::borrow::Cow;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Stream;

/// How much is read at a time, forwards and backwards.
const BLOCK: usize = 256 * 1024;

/// One record of `logs.jsonl`: a whole line, or a piece of one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogRecord<'a> {
    /// Docker's timestamp, as written (parsed only when asked: most readers never do).
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    pub stream: Stream,
    /// The text, without its newline.
    #[serde(borrow, rename = "line")]
    pub text: Cow<'a, str>,
    /// The line goes on in this stream's next record.
    #[serde(default)]
    pub cont: bool,
}

impl LogRecord<'_> {
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.ts.parse().ok()
    }
}

/// Only what finding the last lines needs: serde skips the rest without copying it.
#[derive(Deserialize)]
struct Head {
    stream: Stream,
    #[serde(default)]
    cont: bool,
}

/// Reads `logs.jsonl` from an offset on. Each [`LogReader::read`] hands out the whole
/// records added since the last one; a half-written last record waits for the next.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    file: Option<fs_err::File>,
    /// Offset of the first byte of `buf`, where the next record starts.
    offset: u64,
    /// Bytes read but not handed out yet: at most one unfinished record.
    buf: Vec<u8>,
    /// Per stream, records before this offset are not handed out (the lines before the
    /// last N).
    from: [u64; 2],
}

impl LogReader {
    /// A reader from the log's start.
    pub fn new(path: &Path) -> Self {
        LogReader {
            path: path.to_owned(),
            file: None,
            offset: 0,
            buf: Vec::new(),
            from: [0, 0],
        }
    }

    /// A reader whose first records are those of the last `lines` lines (a line still
    /// unfinished at the end counts as one), found by reading from the end backwards.
    pub fn tail(path: &Path, lines: usize) -> std::io::Result<Self> {
        let mut reader = LogReader::new(path);
        let Some(mut file) = open(path)? else {
            return Ok(reader);
        };
        let from = tail_starts(&mut file, lines)?;
        reader.offset = from.iter().copied().min().expect("two streams");
        reader.from = from;
        file.seek(SeekFrom::Start(reader.offset))?;
        reader.file = Some(file);
        Ok(reader)
    }

    /// Where the next record starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Hand every whole record from here to the end of the file to `each`, in order;
    /// return how many. An error from `each` stops the read and is returned; the record
    /// it failed on is not handed out again.
    pub fn read(
        &mut self,
        mut each: impl FnMut(LogRecord<'_>) -> std::io::Result<()>,
    ) -> std::io::Result<usize> {
        if self.file.is_none() {
            match open(&self.path)? {
                Some(mut file) => {
                    file.seek(SeekFrom::Start(self.offset))?;
                    self.file = Some(file);
                }
                None => return Ok(0),
            }
        }
        let file = self.file.as_mut().expect("just opened");
        let mut count = 0;
        let mut block = vec![0; BLOCK];
        loop {
            let n = file.read(&mut block)?;
            if n == 0 {
                // A log cut back (a failed batch) is read on from its new end: what was
                // cut is written again by the copy.
                let len = file.metadata()?.len();
                let read_to = self.offset + self.buf.len() as u64;
                if len < read_to {
                    self.offset = len.min(self.offset);
                    self.buf.clear();
                    file.seek(SeekFrom::Start(self.offset))?;
                }
                return Ok(count);
            }
            self.buf.extend_from_slice(&block[..n]);
            let mut start = 0;
            while let Some(newline) = self.buf[start..].iter().position(|&b| b == b'\n') {
                let end = start + newline + 1;
                let at = self.offset + start as u64;
                let raw = &self.buf[start..end - 1];
                start = end;
                match serde_json::from_slice::<LogRecord<'_>>(raw) {
                    Ok(record) if at < self.from[record.stream.index()] => {}
                    Ok(record) => {
                        count += 1;
                        if let Err(e) = each(record) {
                            consume(&mut self.buf, &mut self.offset, start);
                            return Err(e);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "skipping bad log record");
                    }
                }
            }
            consume(&mut self.buf, &mut self.offset, start);
        }
    }
}

/// Drop the first `upto` bytes of `buf`, which start at `offset`.
fn consume(buf: &mut Vec<u8>, offset: &mut u64, upto: usize) {
    buf.drain(..upto);
    *offset += upto as u64;
}

fn open(path: &Path) -> std::io::Result<Option<fs_err::File>> {
    match fs_err::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Per stream, the offset of the first record of the last `lines` lines (the end of the
/// whole records, when none of that stream's are among them: what comes later is shown).
///
/// A line ends with a record without `cont`; its pieces before it may lie anywhere
/// earlier, between the other stream's lines. So, reading backwards: each line end
/// counts, until `lines` are found; a stream whose line is included stays "open" until
/// its previous line end is reached, taking the pieces found on the way.
fn tail_starts(file: &mut fs_err::File, lines: usize) -> std::io::Result<[u64; 2]> {
    let mut from = [u64::MAX; 2];
    let mut needed = lines;
    let mut seen = [false; 2];
    let mut open = [false; 2];
    let end = each_record_backwards(file, |offset, raw| {
        if needed == 0 && !open[0] && !open[1] {
            return false;
        }
        let Ok(head) = serde_json::from_slice::<Head>(raw) else {
            return true;
        };
        let s = head.stream.index();
        // The stream's last record ends a line even when it is a piece: the line is
        // unfinished, and it is the stream's newest.
        let ends_line = !head.cont || !seen[s];
        seen[s] = true;
        if ends_line {
            if needed > 0 {
                needed -= 1;
                from[s] = offset;
                open[s] = true;
            } else {
                open[s] = false;
            }
        } else if open[s] {
            from[s] = offset;
        }
        !(needed == 0 && !open[0] && !open[1])
    })?;
    Ok(from.map(|f| f.min(end)))
}

/// Hand the whole records of `file` to `each` from the last to the first, with their
/// offsets, until `each` says stop. A half-written record at the end is left out; the
/// offset where it starts (the end of the whole records) is returned.
fn each_record_backwards(
    file: &mut fs_err::File,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    // `buf` holds file[pos..end): whole records, but maybe the first.
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    let mut whole_end = None;
    loop {
        if pos > 0 {
            let step = BLOCK.min(usize::try_from(pos).unwrap_or(BLOCK));
            pos -= step as u64;
            let mut block = vec![0; step];
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut block)?;
            block.extend_from_slice(&buf);
            buf = block;
        }
        let end = match whole_end {
            Some(end) => end,
            None => match buf.iter().rposition(|&b| b == b'\n') {
                Some(last) => {
                    buf.truncate(last + 1);
                    *whole_end.insert(pos + last as u64 + 1)
                }
                None if pos > 0 => continue,
                None => return Ok(0),
            },
        };
        // Records whose start is known: those after a newline inside `buf`.
        while buf.len() > 1 {
            let body_end = buf.len() - 1;
            let Some(newline) = buf[..body_end].iter().rposition(|&b| b == b'\n') else {
                break;
            };
            let offset = pos + newline as u64 + 1;
            if !each(offset, &buf[newline + 1..body_end]) {
                return Ok(end);
            }
            buf.truncate(newline + 1);
        }
        if pos == 0 {
            if buf.len() > 1 {
                each(0, &buf[..buf.len() - 1]);
            }
            return Ok(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn record(stream: &str, text: &str, cont: bool) -> String {
        let cont = if cont { ",\"cont\":true" } else { "" };
        format!(
            "{{\"ts\":\"2026-11-23T08:00:00Z\",\"stream\":\"{stream}\",\"line\":{}{cont}}}\n",
            serde_json::to_string(text).unwrap()
        )
    }

    fn write(records: &[String]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.jsonl");
        fs_err::write(&path, records.concat()).unwrap();
        (dir, path)
    }

    /// What a printer shows: the lines, pieces joined, each with its stream.
    fn shown(reader: &mut LogReader) -> Vec<String> {
        let mut out = Vec::new();
        let mut open = [String::new(), String::new()];
        reader
            .read(|r| {
                let s = r.stream.index();
                open[s].push_str(&r.text);
                if !r.cont {
                    out.push(format!(
                        "{}:{}",
                        r.stream.as_str(),
                        std::mem::take(&mut open[s])
                    ));
                }
                Ok(())
            })
            .unwrap();
        for (s, rest) in open.iter().enumerate() {
            if !rest.is_empty() {
                out.push(format!("{}:{rest}…", ["stdout", "stderr"][s]));
            }
        }
        out
    }

    #[test]
    fn reads_on_as_the_file_grows_and_waits_for_a_half_written_record() {
        let (_dir, path) = write(&[record("stdout", "a", false)]);
        let mut reader = LogReader::new(&path);
        assert_eq!(shown(&mut reader), ["stdout:a"]);
        let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        let b = record("stderr", "b \"quoted\"", false);
        f.write_all(&b.as_bytes()[..10]).unwrap();
        assert!(shown(&mut reader).is_empty());
        f.write_all(&b.as_bytes()[10..]).unwrap();
        assert_eq!(shown(&mut reader), ["stderr:b \"quoted\""]);
        assert_eq!(reader.offset(), fs_err::metadata(&path).unwrap().len());
    }

    #[test]
    fn a_missing_log_reads_as_empty_until_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.jsonl");
        let mut reader = LogReader::new(&path);
        assert!(shown(&mut reader).is_empty());
        assert!(LogReader::tail(&path, 3).unwrap().read(|_| Ok(())).unwrap() == 0);
        fs_err::write(&path, record("stdout", "late", false)).unwrap();
        assert_eq!(shown(&mut reader), ["stdout:late"]);
    }

    #[test]
    fn tail_gives_the_last_lines_with_all_their_pieces() {
        let (_dir, path) = write(&[
            record("stdout", "one", false),
            record("stdout", "tw", true),
            record("stderr", "err1", false),
            record("stdout", "o", false),
            record("stderr", "err2", false),
            record("stdout", "thr", true),
        ]);
        let tail = |n| shown(&mut LogReader::tail(&path, n).unwrap());
        assert_eq!(tail(0), Vec::<String>::new());
        assert_eq!(tail(1), ["stdout:thr…"], "an unfinished last line counts");
        assert_eq!(tail(2), ["stderr:err2", "stdout:thr…"]);
        assert_eq!(tail(3), ["stdout:two", "stderr:err2", "stdout:thr…"]);
        // "err1" ends before "two" does, so it is the fourth line from the end.
        assert_eq!(
            tail(4),
            ["stderr:err1", "stdout:two", "stderr:err2", "stdout:thr…"]
        );
        assert_eq!(tail(5), tail(100));
        assert_eq!(tail(100)[0], "stdout:one");
    }

    #[test]
    fn tail_reads_backwards_across_blocks_and_long_records() {
        let long = "y".repeat(BLOCK + 100);
        let mut records: Vec<String> = (0..5000)
            .map(|i| record("stdout", &i.to_string(), false))
            .collect();
        records.push(record("stderr", &long, false));
        records.push(record("stdout", "last", false));
        let (_dir, path) = write(&records);
        let mut half_written = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        half_written.write_all(b"{\"ts\":\"20").unwrap();
        let mut reader = LogReader::tail(&path, 3).unwrap();
        let lines = shown(&mut reader);
        assert_eq!(
            lines,
            [
                "stdout:4999".to_owned(),
                format!("stderr:{long}"),
                "stdout:last".into()
            ]
        );
        // The half-written record is shown once it is whole.
        half_written
            .write_all(&record("stderr", "x", false).as_bytes()[9..])
            .unwrap();
        assert_eq!(shown(&mut reader), ["stderr:x"]);
        let all = shown(&mut LogReader::tail(&path, 10_000).unwrap());
        assert_eq!(all.len(), 5003);
        assert_eq!(all[0], "stdout:0");
    }

    #[test]
    fn a_tail_reader_follows_what_comes_after() {
        let (_dir, path) = write(&[record("stdout", "a", false), record("stdout", "b", false)]);
        let mut reader = LogReader::tail(&path, 1).unwrap();
        assert_eq!(shown(&mut reader), ["stdout:b"]);
        let mut none = LogReader::tail(&path, 0).unwrap();
        assert!(shown(&mut none).is_empty());
        let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(record("stderr", "c", false).as_bytes())
            .unwrap();
        assert_eq!(shown(&mut reader), ["stderr:c"]);
        assert_eq!(shown(&mut none), ["stderr:c"], "`-n 0 -f` shows what comes");
    }

    #[test]
    fn a_log_cut_back_is_read_on_from_its_new_end() {
        let (_dir, path) = write(&[record("stdout", "a", false), record("stdout", "b", false)]);
        let mut reader = LogReader::new(&path);
        assert_eq!(shown(&mut reader).len(), 2);
        let f = fs_err::OpenOptions::new().write(true).open(&path).unwrap();
        let first = record("stdout", "a", false).len() as u64;
        f.set_len(first).unwrap();
        assert!(shown(&mut reader).is_empty());
        let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(record("stdout", "b2", false).as_bytes())
            .unwrap();
        assert_eq!(shown(&mut reader), ["stdout:b2"]);
    }
}
