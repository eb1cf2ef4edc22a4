//! The audit log of one run, `runs/<id>/audit.jsonl`: one JSON entry per line, each
//! carrying its sequence number, the hash of the entry before it and its own hash, so
//! that any change, removal or reordering breaks the chain; checkpoints sign the count and
//! the head, so that a shortened log is noticed too.
//!
//! Appends are made under an exclusive lock on the file and read the head from the
//! file's last line, so the supervisor and the CLI (trust, attach, stop) can both write.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{AuditError, AuditKey, canonical};

/// The `prev` of the first entry.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 0, 1, 2, ... in file order.
    pub seq: u64,
    pub ts: Timestamp,
    /// What happened: `run_started`, `credential_injected`, `policy_refused`,
    /// `file_digest`, `checkpoint`, `run_ended`, ...
    pub kind: String,
    pub data: Value,
    /// The hash of the entry before (`GENESIS` for the first).
    pub prev: String,
    /// `sha256:` + hex of the canonical encoding of this entry without `hash`.
    pub hash: String,
}

impl Entry {
    /// The hash this entry must carry: over everything but the hash itself.
    pub fn compute_hash(&self) -> Result<String, AuditError> {
        let body = json!({
            "seq": self.seq,
            "ts": self.ts.to_string(),
            "kind": self.kind,
            "data": self.data,
            "prev": self.prev,
        });
        Ok(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical::encode(&body)?))
        ))
    }
}

/// What a checkpoint signs: the run, how many entries come before it, the head hash, and
/// whether it closes the log.
pub(crate) fn checkpoint_message(run: &str, count: u64, head: &str, last: bool) -> Vec<u8> {
    canonical::encode(&json!({
        "run": run,
        "count": count,
        "head": head,
        "final": last,
    }))
    .expect("a checkpoint message encodes")
}

/// The audit log of one run.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    run: String,
}

impl AuditLog {
    /// The log at `path` for run `run` (made on the first append).
    pub fn new(path: impl Into<PathBuf>, run: impl Into<String>) -> Self {
        AuditLog {
            path: path.into(),
            run: run.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append an entry of `kind` with `data`; returns it.
    pub fn append(&self, kind: &str, data: Value) -> Result<Entry, AuditError> {
        let mut file = self.open_locked()?;
        let (seq, prev) = head(&mut file)?;
        let mut entry = Entry {
            seq,
            ts: Timestamp::now(),
            kind: kind.to_owned(),
            data,
            prev,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash()?;
        let mut line = serde_json::to_vec(&entry).expect("an entry serialises");
        line.push(b'\n');
        // One write of one whole line: a crash or a full disk leaves no half entry
        // behind that a later append would chain onto.
        let length = file.seek(SeekFrom::End(0))?;
        if let Err(e) = file.write_all(&line) {
            let _ = file.set_len(length);
            return Err(AuditError::Io(e));
        }
        Ok(entry)
    }

    /// Append a checkpoint signed by `key`: the count of entries before it and the head
    /// hash, so removing or cutting entries before it is detected. `last` marks the one
    /// that closes the run's log.
    pub fn checkpoint(&self, key: &AuditKey, last: bool) -> Result<Entry, AuditError> {
        let (count, head) = {
            let mut file = self.open_locked()?;
            head(&mut file)?
        };
        let signature = key.sign(&checkpoint_message(&self.run, count, &head, last));
        let entry = self.append(
            "checkpoint",
            json!({
                "run": self.run,
                "count": count,
                "head": head,
                "final": last,
                "public_key": key.public().to_base64(),
                "fingerprint": key.fingerprint(),
                "signature": signature,
            }),
        )?;
        // Only what is on disk is covered.
        if let Ok(file) = fs_err::OpenOptions::new().append(true).open(&self.path) {
            let _ = file.sync_all();
        }
        Ok(entry)
    }

    /// Record the digest of `file`'s bytes after those an earlier `file_digest` entry
    /// covered, under `name` (`network.jsonl`, `logs.jsonl`): a later edit of them no
    /// longer matches. Nothing is appended when nothing new is there.
    pub fn cover(&self, name: &str, file: &Path) -> Result<Option<Entry>, AuditError> {
        let from = self.covered_to(name)?;
        let mut reader = match fs_err::File::open(file) {
            Ok(reader) => reader,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::Io(e)),
        };
        let length = reader.metadata()?.len();
        if length <= from {
            return Ok(None);
        }
        // Whole lines only: a line being written now is covered next time.
        let covered = end_of_last_line(&mut reader, from, length)?;
        if covered <= from {
            return Ok(None);
        }
        let digest = digest_range(file, from, covered)?;
        self.append(
            "file_digest",
            json!({ "file": name, "from": from, "to": covered, "sha256": digest }),
        )
        .map(Some)
    }

    /// Where the last `file_digest` of `name` ended (0 when none).
    fn covered_to(&self, name: &str) -> Result<u64, AuditError> {
        let entries = match read_entries(&self.path) {
            Ok(entries) => entries,
            Err(AuditError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        Ok(entries
            .iter()
            .rev()
            .find(|e| e.kind == "file_digest" && e.data["file"] == name)
            .and_then(|e| e.data["to"].as_u64())
            .unwrap_or(0))
    }

    fn open_locked(&self) -> Result<fs_err::File, AuditError> {
        use fs_err::os::unix::fs::OpenOptionsExt;
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&self.path)?;
        file.file().lock()?;
        Ok(file)
    }
}

/// The position just after the last newline in `[from, length)` of `reader` (`from` when
/// there is none), read backwards in blocks.
fn end_of_last_line(reader: &mut fs_err::File, from: u64, length: u64) -> Result<u64, AuditError> {
    let mut at = length;
    let mut block = vec![0u8; 8192];
    while at > from {
        let step = (at - from).min(block.len() as u64);
        at -= step;
        reader.seek(SeekFrom::Start(at))?;
        let step = usize::try_from(step).expect("small");
        reader.read_exact(&mut block[..step])?;
        if let Some(i) = block[..step].iter().rposition(|&b| b == b'\n') {
            return Ok(at + i as u64 + 1);
        }
    }
    Ok(from)
}

/// `sha256:` + hex of `file`'s bytes in `[from, to)`.
pub(crate) fn digest_range(file: &Path, from: u64, to: u64) -> Result<String, AuditError> {
    let mut reader = fs_err::File::open(file)?;
    reader.seek(SeekFrom::Start(from))?;
    let mut reader = reader.take(to - from);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        hasher.update(&buffer[..n]);
    }
    if read != to - from {
        return Err(AuditError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than its digest says",
        )));
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// The sequence number the next entry gets and the hash it chains to, from the file's
/// last line.
fn head(file: &mut fs_err::File) -> Result<(u64, String), AuditError> {
    let length = file.seek(SeekFrom::End(0))?;
    if length == 0 {
        return Ok((0, GENESIS.to_owned()));
    }
    // Read back in blocks until the start of the last line.
    let mut tail = Vec::new();
    let mut at = length;
    loop {
        let step = at.min(8192);
        at -= step;
        file.seek(SeekFrom::Start(at))?;
        let mut block = vec![0u8; usize::try_from(step).expect("small")];
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if body.contains(&b'\n') || at == 0 {
            break;
        }
    }
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let last = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => &body[i + 1..],
        None => body,
    };
    let entry: Entry = serde_json::from_slice(last).map_err(|e| AuditError::Damaged {
        line: None,
        reason: format!("its last line is not an entry: {e}"),
    })?;
    Ok((entry.seq + 1, entry.hash))
}

/// Every entry of the log at `path`, in file order. A line that is not an entry is an
/// error naming it.
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, AuditError> {
    let text = fs_err::read_to_string(path)?;
    parse_entries(&text)
}

/// The entries of a log's text.
pub fn parse_entries(text: &str) -> Result<Vec<Entry>, AuditError> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| AuditError::Damaged {
                line: Some(i + 1),
                reason: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_chain_and_count_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"), "run_aaaaaaaaaaaa");
        let a = log
            .append("run_started", json!({"command": ["true"]}))
            .unwrap();
        let b = log.append("run_ended", json!({"exit_code": 0})).unwrap();
        assert_eq!((a.seq, b.seq), (0, 1));
        assert_eq!(a.prev, GENESIS);
        assert_eq!(b.prev, a.hash);
        assert_eq!(b.hash, b.compute_hash().unwrap());
        // Another writer (a fresh handle) continues the same chain.
        let c = AuditLog::new(log.path(), "run_aaaaaaaaaaaa")
            .append("detached", json!({}))
            .unwrap();
        assert_eq!((c.seq, c.prev), (2, b.hash));
        assert_eq!(read_entries(log.path()).unwrap().len(), 3);
    }

    #[test]
    fn a_file_is_covered_whole_lines_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"), "run_aaaaaaaaaaaa");
        let network = dir.path().join("network.jsonl");
        fs_err::write(&network, "{\"a\":1}\n{\"b\":").unwrap();
        let first = log.cover("network.jsonl", &network).unwrap().unwrap();
        assert_eq!(first.data["from"], 0);
        assert_eq!(first.data["to"], 8, "the half line waits");
        assert!(log.cover("network.jsonl", &network).unwrap().is_none());
        let mut f = fs_err::OpenOptions::new()
            .append(true)
            .open(&network)
            .unwrap();
        f.write_all(b"2}\n").unwrap();
        let second = log.cover("network.jsonl", &network).unwrap().unwrap();
        assert_eq!(
            (second.data["from"].clone(), second.data["to"].clone()),
            (json!(8), json!(16))
        );
        assert_eq!(
            second.data["sha256"],
            digest_range(&network, 8, 16).unwrap().as_str()
        );
    }
}
