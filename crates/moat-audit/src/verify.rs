//! Checking a run's audit log: the chain from the first entry to the last, every
//! checkpoint's signature by the pinned key and its count and head, the closing
//! checkpoint, and the digests of the files the log covers. Each problem says what is
//! wrong and where, so an attack is named, not just detected.

use std::collections::BTreeMap;
use std::fmt;

use crate::log::{Entry, GENESIS, checkpoint_message};
use crate::{AuditError, PublicKey};

/// What is wrong with a log, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Entry `seq` is not what was written: its hash does not match its content.
    Altered { seq: u64 },
    /// Line `line` holds entry `found` where entry `expected` belongs: entries were
    /// removed, inserted or moved before it.
    OutOfPlace {
        line: usize,
        expected: u64,
        found: u64,
    },
    /// Entry `seq` does not chain to the one before it.
    ChainBroken { seq: u64 },
    /// Checkpoint `seq`'s signature is not valid.
    BadSignature { seq: u64 },
    /// Checkpoint `seq` signs a log of `count` entries ending in `head`, which is not
    /// what comes before it.
    CheckpointMismatch { seq: u64 },
    /// Checkpoint `seq` is signed by a key that is not the pinned one.
    UnpinnedKey {
        seq: u64,
        fingerprint: String,
        pinned: String,
    },
    /// The log has no entry at all: it was emptied (a log cut to nothing has no tail
    /// left to miss its closing checkpoint), or it is not a run's log.
    Empty,
    /// Nothing in the log is signed.
    NoCheckpoint,
    /// The log does not end with its closing checkpoint: entries after `after` may be
    /// missing (the tail was cut), or the run has not ended.
    NoClosingCheckpoint { after: u64 },
    /// Entry `seq` comes after the checkpoint that closed the log.
    AfterClose { seq: u64 },
    /// `file` bytes `from..to` are not what the log recorded.
    FileAltered { file: String, from: u64, to: u64 },
    /// `file` is shorter than the log recorded, or missing.
    FileMissing { file: String, to: u64 },
    /// `file` has `bytes` bytes after the log closed.
    FileGrewAfterClose { file: String, bytes: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Altered { seq } => write!(f, "entry {seq} was altered"),
            Problem::OutOfPlace {
                line,
                expected,
                found,
            } => write!(
                f,
                "line {line} holds entry {found} where entry {expected} belongs: entries were removed, added or reordered"
            ),
            Problem::ChainBroken { seq } => write!(
                f,
                "entry {seq} does not follow the entry before it: entries were removed or reordered"
            ),
            Problem::BadSignature { seq } => {
                write!(f, "the signature of checkpoint {seq} is not valid")
            }
            Problem::CheckpointMismatch { seq } => write!(
                f,
                "checkpoint {seq} signs a log that is not the one before it: entries before it were changed"
            ),
            Problem::UnpinnedKey {
                seq,
                fingerprint,
                pinned,
            } => write!(
                f,
                "checkpoint {seq} is signed by {fingerprint}, not by the pinned key {pinned}"
            ),
            Problem::Empty => write!(
                f,
                "the log has no entries: it was emptied, or it is not a run's log (every run's log begins with its start and ends with a signed checkpoint)"
            ),
            Problem::NoCheckpoint => write!(f, "no entry of the log is signed"),
            Problem::NoClosingCheckpoint { after } => write!(
                f,
                "the log does not end with its closing checkpoint: entries after {after} are missing, or the run has not ended"
            ),
            Problem::AfterClose { seq } => {
                write!(f, "entry {seq} was added after the log was closed")
            }
            Problem::FileAltered { file, from, to } => {
                write!(f, "{file} was altered (bytes {from}..{to})")
            }
            Problem::FileMissing { file, to } => {
                write!(
                    f,
                    "{file} is missing or shorter than the {to} bytes recorded"
                )
            }
            Problem::FileGrewAfterClose { file, bytes } => {
                write!(f, "{file} has {bytes} bytes added after the log was closed")
            }
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    pub checkpoints: u64,
    /// The fingerprint of the key the checkpoints are signed with, when they agree.
    pub signed_by: Option<String>,
    /// Whether the log ends with its closing checkpoint.
    pub closed: bool,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The files a log covers, by name: their bytes, however they are held.
pub trait CoveredFiles {
    /// The digest of `name`'s bytes `from..to`, or `None` when it is missing or shorter.
    fn digest(&self, name: &str, from: u64, to: u64) -> Option<String>;
    /// The length of `name` (0 when it is missing).
    fn len(&self, name: &str) -> u64;
}

/// Verify `entries` of run `run` against the `pinned` key (a fingerprint, `SHA256:…`).
pub fn verify(
    run: &str,
    entries: &[Entry],
    pinned: &str,
    files: &dyn CoveredFiles,
) -> Result<Report, AuditError> {
    let mut problems = Vec::new();
    let mut prev = GENESIS.to_owned();
    let mut checkpoints = 0;
    let mut signed_by = None;
    let mut closed_at: Option<u64> = None;
    let mut covered: BTreeMap<String, u64> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let line = i + 1;
        let expected = i as u64;
        if entry.seq != expected {
            problems.push(Problem::OutOfPlace {
                line,
                expected,
                found: entry.seq,
            });
        }
        if entry.hash != entry.compute_hash()? {
            problems.push(Problem::Altered { seq: entry.seq });
        } else if entry.prev != prev {
            problems.push(Problem::ChainBroken { seq: entry.seq });
        }
        if let Some(close) = closed_at
            && close < entry.seq
        {
            problems.push(Problem::AfterClose { seq: entry.seq });
        }
        match entry.kind.as_str() {
            "checkpoint" => {
                checkpoints += 1;
                check_checkpoint(run, entry, i as u64, &prev, pinned, &mut problems);
                if let Some(fp) = entry.data["fingerprint"].as_str() {
                    signed_by.get_or_insert_with(|| fp.to_owned());
                }
                if entry.data["final"] == true && closed_at.is_none() {
                    closed_at = Some(entry.seq);
                }
            }
            "file_digest" => {
                let (Some(file), Some(from), Some(to), Some(digest)) = (
                    entry.data["file"].as_str(),
                    entry.data["from"].as_u64(),
                    entry.data["to"].as_u64(),
                    entry.data["sha256"].as_str(),
                ) else {
                    problems.push(Problem::Altered { seq: entry.seq });
                    continue;
                };
                match files.digest(file, from, to) {
                    // Gone altogether, or cut or rewritten shorter.
                    None if files.len(file) == 0 => problems.push(Problem::FileMissing {
                        file: file.to_owned(),
                        to,
                    }),
                    None => problems.push(Problem::FileAltered {
                        file: file.to_owned(),
                        from,
                        to,
                    }),
                    Some(actual) if actual != digest => problems.push(Problem::FileAltered {
                        file: file.to_owned(),
                        from,
                        to,
                    }),
                    Some(_) => {}
                }
                covered.insert(file.to_owned(), to);
            }
            _ => {}
        }
        prev = entry.hash.clone();
    }
    if entries.is_empty() {
        problems.push(Problem::Empty);
    } else if checkpoints == 0 {
        problems.push(Problem::NoCheckpoint);
    }
    let closed = closed_at.is_some();
    if !entries.is_empty() && !closed {
        let last_signed = entries
            .iter()
            .rev()
            .find(|e| e.kind == "checkpoint")
            .map_or(0, |e| e.seq);
        problems.push(Problem::NoClosingCheckpoint { after: last_signed });
    }
    if closed {
        for (file, to) in &covered {
            let length = files.len(file);
            if length > *to {
                problems.push(Problem::FileGrewAfterClose {
                    file: file.clone(),
                    bytes: length - to,
                });
            }
        }
    }
    Ok(Report {
        entries: entries.len() as u64,
        checkpoints,
        signed_by,
        closed,
        problems,
    })
}

/// A checkpoint at position `position` must sign `position` entries ending in `head`,
/// with the pinned key.
fn check_checkpoint(
    run: &str,
    entry: &Entry,
    position: u64,
    head: &str,
    pinned: &str,
    problems: &mut Vec<Problem>,
) {
    let data = &entry.data;
    let (Some(count), Some(signed_head), Some(last), Some(key), Some(signature)) = (
        data["count"].as_u64(),
        data["head"].as_str(),
        data["final"].as_bool(),
        data["public_key"].as_str().and_then(PublicKey::parse),
        data["signature"].as_str(),
    ) else {
        problems.push(Problem::BadSignature { seq: entry.seq });
        return;
    };
    if key.fingerprint() != pinned {
        problems.push(Problem::UnpinnedKey {
            seq: entry.seq,
            fingerprint: key.fingerprint(),
            pinned: pinned.to_owned(),
        });
        return;
    }
    if data["run"].as_str() != Some(run)
        || !key.verify(
            &checkpoint_message(run, count, signed_head, last),
            signature,
        )
    {
        problems.push(Problem::BadSignature { seq: entry.seq });
        return;
    }
    if count != position || signed_head != head {
        problems.push(Problem::CheckpointMismatch { seq: entry.seq });
    }
}

/// Covered files read from a run directory.
pub struct DirFiles<'a>(pub &'a std::path::Path);

impl CoveredFiles for DirFiles<'_> {
    fn digest(&self, name: &str, from: u64, to: u64) -> Option<String> {
        if !is_plain_name(name) {
            return None;
        }
        crate::log::digest_range(&self.0.join(name), from, to).ok()
    }

    fn len(&self, name: &str) -> u64 {
        if !is_plain_name(name) {
            return 0;
        }
        fs_err::metadata(self.0.join(name)).map_or(0, |m| m.len())
    }
}

/// A covered file's name is a plain file name: a forged entry cannot make the verifier
/// read elsewhere.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}
