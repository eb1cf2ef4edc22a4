//! Typed identifiers: `run_` followed by 12 lowercase hex digits.
//!
//! Ids arrive from users, files and container names, so parsing is strict: an id that
//! parses can be joined to a path without any chance of traversal.

use std::fmt;
use std::str::FromStr;

/// The id of one run, e.g. `run_a1b2c3d4e5f6`. Also the name of its container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a run id (expected `run_` followed by 12 lowercase hex digits)")]
pub struct IdError(pub String);

const PREFIX: &str = "run_";
const HEX_LEN: usize = 12;

impl RunId {
    /// A fresh random id from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; HEX_LEN / 2];
        getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
        RunId(format!("{PREFIX}{}", hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` could be the start of a run id (`run_` then up to 12 hex digits).
    pub fn is_prefix(s: &str) -> bool {
        s.strip_prefix(PREFIX).is_some_and(|hex| {
            hex.len() <= HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }
}

impl FromStr for RunId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if Self::is_prefix(s) && s.len() == PREFIX.len() + HEX_LEN {
            Ok(RunId(s.to_owned()))
        } else {
            Err(IdError(s.to_owned()))
        }
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `name` can name a run: it shows in tables and is typed on the command line,
/// so 1 to 64 letters, digits, `.`, `_` and `-`, starting with a letter or digit; and it
/// must not look like a run id. The one rule: the configuration checks `name:` with it
/// (to report the line), the run store when a run is made.
pub fn check_run_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 64 || !valid_chars || !starts_well {
        return Err(format!(
            "`{}` is not a valid run name: use 1 to 64 letters, digits, `.`, `_` or `-`, \
             starting with a letter or digit",
            name.escape_debug()
        ));
    }
    if name.starts_with("run_") {
        return Err(format!(
            "`{name}` is not a valid run name: names starting with `run_` would be mistaken \
             for run ids"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        for _ in 0..100 {
            let id = RunId::generate();
            assert_eq!(id.as_str().parse::<RunId>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_anything_that_could_escape_a_directory() {
        for bad in [
            "",
            "run_",
            "run_a1b2c3d4e5f",
            "run_a1b2c3d4e5f6a",
            "run_A1B2C3D4E5F6",
            "run_../../etc/x",
            "../run_a1b2c3d4e5f6",
            "run_a1b2c3d4e5g6",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn prefixes() {
        assert!(RunId::is_prefix("run_"));
        assert!(RunId::is_prefix("run_a1"));
        assert!(RunId::is_prefix("run_a1b2c3d4e5f6"));
        assert!(!RunId::is_prefix("run_a1b2c3d4e5f6a"));
        assert!(!RunId::is_prefix("feature-auth"));
        assert!(!RunId::is_prefix("run_x"));
    }
}
