//! An agent's conversation attached to a run: its session ID, and where the agent keeps
//! one `<session-id>.jsonl` log per conversation (a host directory mounted into the run).
//!
//! moat-run knows nothing of any agent: it keeps the ID it is given, and when the run ends
//! it looks for the conversation the run actually wrote to (the newest log changed while
//! it ran), because the agent may have started another one (`/clear`, `--continue`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A conversation ID: a UUID in its canonical lowercase 8-4-4-4-12 form. Anything else
/// is refused, so an ID read from a file name or typed by a user can never be a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

/// Why a text is not a [`SessionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{shown}` is not a session ID (expected a UUID like 123e4567-e89b-12d3-a456-426614174000)"
)]
pub struct InvalidSessionId {
    shown: String,
}

impl SessionId {
    pub fn parse(text: &str) -> Result<Self, InvalidSessionId> {
        let lower = text.to_ascii_lowercase();
        let groups: Vec<&str> = lower.split('-').collect();
        let shape_ok = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if shape_ok {
            Ok(SessionId(lower))
        } else {
            Err(InvalidSessionId {
                shown: text.chars().take(60).collect(),
            })
        }
    }

    /// A new random (version 4) UUID.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex = hex_lower(&bytes);
        SessionId(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The conversation's log file in `dir`.
    pub fn log_file(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.jsonl", self.0))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionId::parse(s)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SessionId::parse(&s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

/// The agent side of a run, kept in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSession {
    /// Which agent (`claude`).
    pub agent: String,
    /// The conversation: known at start for a new or resumed one, found at the end for
    /// `--continue`; `None` if the run never wrote one.
    pub session_id: Option<SessionId>,
    /// The host directory holding the agent's `<session-id>.jsonl` logs for this workspace.
    pub sessions_dir: PathBuf,
}

impl AgentSession {
    /// When the conversation's log last changed, if it exists.
    pub fn last_active(&self) -> Option<Timestamp> {
        let id = self.session_id.as_ref()?;
        let modified = fs_err::metadata(id.log_file(&self.sessions_dir))
            .ok()?
            .modified()
            .ok()?;
        Timestamp::try_from(modified).ok()
    }
}

/// The conversation in `dir` whose log changed last, at or after `since` when given.
/// Files that are not `<uuid>.jsonl` are ignored.
pub fn latest_session(dir: &Path, since: Option<Timestamp>) -> Option<SessionId> {
    let since = since.map(SystemTime::from);
    let mut newest: Option<(SystemTime, SessionId)> = None;
    for entry in fs_err::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
            continue;
        };
        let Ok(id) = SessionId::parse(stem) else {
            continue;
        };
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if since.is_some_and(|since| modified < since) {
            continue;
        }
        if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
            newest = Some((modified, id));
        }
    }
    newest.map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_session_ids() {
        let id = SessionId::parse("AE150251-d90a-4f85-a9da-2281e8e0518d").unwrap();
        assert_eq!(id.as_str(), "ae150251-d90a-4f85-a9da-2281e8e0518d");
        for bad in [
            "",
            "../../etc/passwd",
            "ae150251-d90a-4f85-a9da-2281e8e0518d/..",
            "ae150251d90a4f85a9da2281e8e0518d",
            "ae150251-d90a-4f85-a9da-2281e8e0518",
            "ge150251-d90a-4f85-a9da-2281e8e0518d",
            "ae150251-d90a-4f85-a9da-2281e8e0518d.jsonl",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad}");
        }
        let e = SessionId::parse("../x").unwrap_err().to_string();
        assert!(e.contains("not a session ID"), "{e}");
    }

    #[test]
    fn generated_ids_are_valid_v4_uuids_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert_eq!(&a.as_str()[14..15], "4");
    }

    #[test]
    fn serde_refuses_invalid_ids() {
        let ok: SessionId =
            serde_json::from_str("\"ae150251-d90a-4f85-a9da-2281e8e0518d\"").unwrap();
        assert_eq!(ok.as_str(), "ae150251-d90a-4f85-a9da-2281e8e0518d");
        assert!(serde_json::from_str::<SessionId>("\"../../x\"").is_err());
    }

    #[test]
    fn the_latest_session_is_the_newest_uuid_log_since_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let old = SessionId::generate();
        let new = SessionId::generate();
        let set_mtime = |path: &Path, secs: i64| {
            let f = fs_err::File::options().write(true).open(path).unwrap();
            f.set_modified(SystemTime::from(Timestamp::from_second(secs).unwrap()))
                .unwrap();
        };
        fs_err::write(old.log_file(dir.path()), b"{}\n").unwrap();
        fs_err::write(new.log_file(dir.path()), b"{}\n").unwrap();
        fs_err::write(dir.path().join("notes.jsonl"), b"").unwrap();
        set_mtime(&old.log_file(dir.path()), 1_000);
        set_mtime(&new.log_file(dir.path()), 2_000);
        assert_eq!(latest_session(dir.path(), None), Some(new.clone()));
        let since = Timestamp::from_second(1_500).unwrap();
        assert_eq!(latest_session(dir.path(), Some(since)), Some(new));
        let later = Timestamp::from_second(3_000).unwrap();
        assert_eq!(latest_session(dir.path(), Some(later)), None);
        assert_eq!(latest_session(&dir.path().join("missing"), None), None);
    }
}
