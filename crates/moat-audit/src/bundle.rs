//! Taking a run's audit log elsewhere: a self-contained bundle (the entries and every
//! file they cover) that anyone verifies with the key's fingerprint alone, and an in-toto
//! statement in a DSSE envelope, signed with the same key, whose subject is the
//! workspace's git commit after the run.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::log::Entry;
use crate::verify::{CoveredFiles, is_plain_name};
use crate::{AuditError, AuditKey, PublicKey, Report};

/// The bundle format's name and version.
pub const BUNDLE_FORMAT: &str = "moat-audit-bundle/1";
/// The in-toto predicate type of moat's run attestations.
pub const PREDICATE_TYPE: &str = "https://moat.dev/attestation/run/v1";
const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A run's log and the files it covers, in one JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub run: String,
    /// Informational: a verifier pins the fingerprint it was given, not this.
    pub fingerprint: String,
    pub entries: Vec<Entry>,
    /// Covered file name → its bytes, base64.
    pub files: BTreeMap<String, String>,
}

impl Bundle {
    /// The bundle of run `run`'s `entries`, with the covered files read from `dir`.
    pub fn make(
        run: &str,
        entries: Vec<Entry>,
        dir: &Path,
        key: &AuditKey,
    ) -> Result<Self, AuditError> {
        let mut files = BTreeMap::new();
        for entry in &entries {
            if entry.kind == "file_digest"
                && let Some(name) = entry.data["file"].as_str()
                && is_plain_name(name)
                && !files.contains_key(name)
            {
                let bytes = fs_err::read(dir.join(name))?;
                files.insert(
                    name.to_owned(),
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                );
            }
        }
        Ok(Bundle {
            format: BUNDLE_FORMAT.to_owned(),
            run: run.to_owned(),
            fingerprint: key.fingerprint(),
            entries,
            files,
        })
    }

    /// Read a bundle; anything that is not one (another format, unknown fields) is an
    /// error saying so.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuditError> {
        let bundle: Bundle =
            serde_json::from_slice(bytes).map_err(|e| AuditError::NotABundle(e.to_string()))?;
        if bundle.format != BUNDLE_FORMAT {
            // Quoted with `{:?}`: the file's words, escaped, never a line of their own.
            return Err(AuditError::NotABundle(format!(
                "its format is {:?}, not `{BUNDLE_FORMAT}`",
                bundle.format
            )));
        }
        Ok(bundle)
    }

    /// Verify the bundle against `pinned` alone.
    pub fn verify(&self, pinned: &str) -> Result<Report, AuditError> {
        let files = BundleFiles::decode(&self.files)?;
        crate::verify(&self.run, &self.entries, pinned, &files)
    }
}

struct BundleFiles(BTreeMap<String, Vec<u8>>);

impl BundleFiles {
    fn decode(files: &BTreeMap<String, String>) -> Result<Self, AuditError> {
        files
            .iter()
            .map(|(name, text)| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(|bytes| (name.clone(), bytes))
                    .map_err(|e| AuditError::NotABundle(format!("file {name:?}: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(BundleFiles)
    }
}

impl CoveredFiles for BundleFiles {
    fn digest(&self, name: &str, from: u64, to: u64) -> Option<String> {
        let bytes = self.0.get(name)?;
        let range = bytes.get(usize::try_from(from).ok()?..usize::try_from(to).ok()?)?;
        Some(format!("sha256:{}", hex::encode(Sha256::digest(range))))
    }

    fn len(&self, name: &str) -> u64 {
        self.0.get(name).map_or(0, |b| b.len() as u64)
    }
}

/// DSSE's pre-authentication encoding of `payload` of `payload_type`: what is signed.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An in-toto statement about run `run` in a DSSE envelope signed by `key`. Its subject
/// is the workspace's git commit after the run when there is one (`git_commit`), else
/// the log's head hash; the predicate names the run and the log it attests.
pub fn attestation(
    run: &str,
    entries: &[Entry],
    workspace: &Path,
    git_commit: Option<&str>,
    key: &AuditKey,
) -> Value {
    let head = entries.last().map(|e| e.hash.clone()).unwrap_or_default();
    let subject = match git_commit {
        Some(commit) => json!({
            "name": workspace.display().to_string(),
            "digest": { "gitCommit": commit },
        }),
        None => json!({
            "name": format!("moat-audit:{run}"),
            "digest": { "sha256": head.trim_start_matches("sha256:") },
        }),
    };
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [subject],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "run": run,
            "entries": entries.len(),
            "head": head,
            "closed": entries.last().is_some_and(|e| e.kind == "checkpoint" && e.data["final"] == true),
        },
    });
    let payload = serde_json::to_vec(&statement).expect("a statement serialises");
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": base64::engine::general_purpose::STANDARD.encode(&payload),
        "signatures": [{
            "keyid": key.fingerprint(),
            "sig": key.sign(&pae(PAYLOAD_TYPE, &payload)),
            "publicKey": key.public().to_base64(),
        }],
    })
}

/// Check a DSSE envelope's signature by the `pinned` key; its statement when it holds.
pub fn verify_attestation(envelope: &Value, pinned: &str) -> Result<Value, AuditError> {
    let bad = |why: &str| AuditError::NotABundle(format!("the attestation {why}"));
    let payload_type = envelope["payloadType"]
        .as_str()
        .ok_or_else(|| bad("has no payloadType"))?;
    let payload = envelope["payload"]
        .as_str()
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .ok_or_else(|| bad("has no readable payload"))?;
    let signed = envelope["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            let key = s["publicKey"].as_str().and_then(PublicKey::parse);
            key.is_some_and(|key| {
                key.fingerprint() == pinned
                    && s["sig"]
                        .as_str()
                        .is_some_and(|sig| key.verify(&pae(payload_type, &payload), sig))
            })
        });
    if !signed {
        return Err(AuditError::NotSigned(pinned.to_owned()));
    }
    serde_json::from_slice(&payload).map_err(|e| bad(&format!("payload is not JSON: {e}")))
}
