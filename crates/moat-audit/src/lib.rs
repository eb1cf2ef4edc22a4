//! The tamper-evident audit log of a run.
//!
//! * [`AuditLog`]: `runs/<id>/audit.jsonl`, append-only, one entry per line; each entry
//!   carries its sequence number, the hash of the entry before it and its own hash
//!   (SHA-256 over the [`canonical`] encoding), so changing, removing or reordering any
//!   entry breaks the chain. `file_digest` entries cover `network.jsonl` and
//!   `logs.jsonl`, so editing them is detected too.
//! * [`AuditKey`]: the machine's Ed25519 key in `$MOAT_HOME/audit.key`; checkpoints sign
//!   the entry count and the head hash, so cutting the tail is detected, and a verifier
//!   pins the key's fingerprint (`SHA256:…`, as OpenSSH prints fingerprints) — a forger
//!   cannot re-sign with a key of their own.
//! * [`verify`]: what is wrong and where, as [`Problem`]s.
//! * [`Bundle`] and [`attestation`]: the log taken elsewhere, verified with the
//!   fingerprint alone; an in-toto statement in a DSSE envelope.
//!
//! The crate takes paths and values and returns values: it never prints.

mod bundle;
pub mod canonical;
mod key;
mod log;
mod verify;

use std::path::PathBuf;

pub use bundle::{BUNDLE_FORMAT, Bundle, PREDICATE_TYPE, attestation, verify_attestation};
pub use key::{AuditKey, PublicKey};
pub use log::{AuditLog, Entry, GENESIS, parse_entries, read_entries};
pub use verify::{CoveredFiles, DirFiles, Problem, Report, verify};

/// What can go wrong writing or reading an audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("the audit key `{}` is not a key", path.display())]
    BadKey { path: PathBuf },

    #[error("the audit log is damaged{}: {reason}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Damaged { line: Option<usize>, reason: String },

    #[error("a value cannot be recorded: {0}")]
    NotCanonical(String),

    #[error("this is not a moat audit bundle: {0}")]
    NotABundle(String),

    #[error("the attestation is not signed by {0}")]
    NotSigned(String),
}

impl AuditError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AuditError::BadKey { path } => Some(format!(
                "restore `{}` from a backup: runs it signed verify only with it (moving it \
                 aside makes a new key, whose fingerprint verifiers must pin anew)",
                path.display()
            )),
            AuditError::Damaged { .. } => Some(
                "`moat audit verify` says what is wrong with it; the log cannot be trusted \
                 as it is"
                    .into(),
            ),
            AuditError::NotABundle(_) => {
                Some("pass a file written by `moat audit export`, or a run ID".into())
            }
            AuditError::NotSigned(_) => Some(
                "check the fingerprint you pinned with `--key`: `moat audit export` prints \
                 the one that signed it"
                    .into(),
            ),
            AuditError::Io(_) | AuditError::NotCanonical(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The attacks a log must name.

    use super::*;
    use serde_json::json;

    const RUN: &str = "run_aaaaaaaaaaaa";

    /// A closed log of a run with a covered network file, in `dir`.
    fn closed_log(dir: &std::path::Path, key: &AuditKey) -> AuditLog {
        let log = AuditLog::new(dir.join("audit.jsonl"), RUN);
        fs_err::write(dir.join("network.jsonl"), "{\"url\":\"https://a.test/\"}\n").unwrap();
        log.append("run_started", json!({"command": ["true"]}))
            .unwrap();
        log.append(
            "credential_injected",
            json!({"grant": "github", "host": "api.github.com", "header": "authorization"}),
        )
        .unwrap();
        log.cover("network.jsonl", &dir.join("network.jsonl"))
            .unwrap();
        log.checkpoint(key, false).unwrap();
        log.append("run_ended", json!({"exit_code": 0})).unwrap();
        log.checkpoint(key, true).unwrap();
        log
    }

    fn check(dir: &std::path::Path, key: &AuditKey) -> Report {
        let entries = read_entries(&dir.join("audit.jsonl")).unwrap();
        verify(RUN, &entries, &key.fingerprint(), &DirFiles(dir)).unwrap()
    }

    fn rewrite(dir: &std::path::Path, change: impl FnOnce(&mut Vec<String>)) {
        let path = dir.join("audit.jsonl");
        let mut lines: Vec<String> = fs_err::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        change(&mut lines);
        fs_err::write(&path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn an_untouched_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        let report = check(dir.path(), &key);
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!((report.entries, report.checkpoints), (6, 2));
        assert!(report.closed);
        assert_eq!(report.signed_by, Some(key.fingerprint()));
    }

    #[test]
    fn one_changed_byte_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        rewrite(dir.path(), |lines| {
            lines[1] = lines[1].replace("api.github.com", "api.github.co");
        });
        assert_eq!(
            check(dir.path(), &key).problems,
            [Problem::Altered { seq: 1 }]
        );
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        rewrite(dir.path(), |lines| {
            lines.remove(1);
        });
        let problems = check(dir.path(), &key).problems;
        assert!(
            problems.contains(&Problem::ChainBroken { seq: 2 }),
            "{problems:?}"
        );
        assert!(
            problems.contains(&Problem::OutOfPlace {
                line: 2,
                expected: 1,
                found: 2
            }),
            "{problems:?}"
        );
    }

    #[test]
    fn two_swapped_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        rewrite(dir.path(), |lines| lines.swap(0, 1));
        let problems = check(dir.path(), &key).problems;
        assert!(
            problems.contains(&Problem::OutOfPlace {
                line: 1,
                expected: 0,
                found: 1
            }),
            "{problems:?}"
        );
        assert!(
            problems.contains(&Problem::ChainBroken { seq: 1 }),
            "{problems:?}"
        );
    }

    #[test]
    fn a_cut_tail_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        rewrite(dir.path(), |lines| lines.truncate(4));
        assert_eq!(
            check(dir.path(), &key).problems,
            [Problem::NoClosingCheckpoint { after: 3 }]
        );
    }

    #[test]
    fn a_log_cut_to_nothing_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        fs_err::write(dir.path().join("audit.jsonl"), "").unwrap();
        let report = check(dir.path(), &key);
        assert_eq!(report.problems, [Problem::Empty]);
        assert!(!report.ok() && !report.closed);
        // A bundle holding no entry is no proof of anything either.
        let bundle = br#"{"format":"moat-audit-bundle/1","run":"run_aaaaaaaaaaaa","fingerprint":"","entries":[],"files":{}}"#;
        let report = Bundle::parse(bundle)
            .unwrap()
            .verify(&key.fingerprint())
            .unwrap();
        assert_eq!(report.problems, [Problem::Empty]);
    }

    #[test]
    fn an_appended_forgery_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        let log = closed_log(dir.path(), &key);
        // Chained properly, but after the close and unsigned.
        log.append("credential_injected", json!({"grant": "github"}))
            .unwrap();
        assert_eq!(
            check(dir.path(), &key).problems,
            [Problem::AfterClose { seq: 6 }]
        );
    }

    #[test]
    fn a_log_re_signed_with_another_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        let forger = AuditKey::ephemeral();
        closed_log(dir.path(), &forger);
        let problems = check(dir.path(), &key).problems;
        assert!(
            matches!(problems[0], Problem::UnpinnedKey { seq: 3, .. }),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 2, "both checkpoints: {problems:?}");
    }

    #[test]
    fn a_rehashed_edit_breaks_the_checkpoint() {
        // The forger recomputes every hash after the edit, but cannot sign the new head.
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        let mut entries = read_entries(&dir.path().join("audit.jsonl")).unwrap();
        entries[1].data["host"] = json!("evil.test");
        let mut prev = GENESIS.to_owned();
        for entry in &mut entries {
            entry.prev = prev.clone();
            entry.hash = entry.compute_hash().unwrap();
            prev = entry.hash.clone();
        }
        let problems = verify(RUN, &entries, &key.fingerprint(), &DirFiles(dir.path()))
            .unwrap()
            .problems;
        assert_eq!(
            problems,
            [
                Problem::CheckpointMismatch { seq: 3 },
                Problem::CheckpointMismatch { seq: 5 }
            ]
        );
    }

    #[test]
    fn an_edited_network_log_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        fs_err::write(
            dir.path().join("network.jsonl"),
            "{\"url\":\"https://b.test/\"}\n",
        )
        .unwrap();
        assert_eq!(
            check(dir.path(), &key).problems,
            [Problem::FileAltered {
                file: "network.jsonl".into(),
                from: 0,
                to: 26
            }]
        );
        let mut f = fs_err::OpenOptions::new()
            .append(true)
            .open(dir.path().join("network.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"late\":1}\n").unwrap();
        assert!(
            check(dir.path(), &key)
                .problems
                .contains(&Problem::FileGrewAfterClose {
                    file: "network.jsonl".into(),
                    bytes: 11
                })
        );
    }

    #[test]
    fn an_exported_bundle_verifies_elsewhere_with_the_fingerprint_alone() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        let entries = read_entries(&dir.path().join("audit.jsonl")).unwrap();
        let bundle = Bundle::make(RUN, entries.clone(), dir.path(), &key).unwrap();
        let bytes = serde_json::to_vec_pretty(&bundle).unwrap();
        drop(dir);
        let back = Bundle::parse(&bytes).unwrap();
        assert!(back.verify(&key.fingerprint()).unwrap().ok());
        // The entries came back byte for byte: their hashes recompute the same.
        for (a, b) in entries.iter().zip(&back.entries) {
            assert_eq!(b.compute_hash().unwrap(), a.hash);
        }
        let other = AuditKey::ephemeral();
        assert!(!back.verify(&other.fingerprint()).unwrap().ok());
    }

    #[test]
    fn an_attestation_is_signed_by_the_key_and_names_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::ephemeral();
        closed_log(dir.path(), &key);
        let entries = read_entries(&dir.path().join("audit.jsonl")).unwrap();
        let envelope = attestation(RUN, &entries, dir.path(), Some("0123abcd"), &key);
        let statement = verify_attestation(&envelope, &key.fingerprint()).unwrap();
        assert_eq!(statement["subject"][0]["digest"]["gitCommit"], "0123abcd");
        assert_eq!(statement["predicate"]["closed"], true);
        let mut forged = envelope.clone();
        forged["payload"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b"{\"_type\":\"x\"}"
        ));
        assert!(verify_attestation(&forged, &key.fingerprint()).is_err());
    }
}
