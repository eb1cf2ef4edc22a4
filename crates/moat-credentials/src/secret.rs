//! `Secret`: a credential value that is wiped from memory when dropped and never shows
//! itself in `Debug`, `Display` or `Serialize` output.
//!
//! Reading the value takes an explicit `expose()`, so every place that handles the real
//! token is easy to find with grep.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A token, key or password.
///
/// It deliberately has no `Serialize` (the store writes it through a private wire type)
/// and no `PartialEq` (a failing `assert_eq!` would print it, were `Debug` ever changed).
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The real value. Call it only where the value must leave moat: encryption, the
    /// header the proxy injects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Why this value cannot be a credential, if it cannot: it ends up in an HTTP header,
    /// so control characters (a pasted CR/LF would inject a header) and edge whitespace
    /// are refused. The reason never quotes the value.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let value = self.expose();
        if value.is_empty() {
            Some("it is empty")
        } else if value.chars().any(char::is_control) {
            Some("it contains control characters (a line break?)")
        } else if value.trim() != value {
            Some("it starts or ends with whitespace")
        } else {
            None
        }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let secret = Secret::new("sk-ant-api03-very-secret");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(
            format!("{:#?}", Some(secret.clone())),
            "Some(\n    [REDACTED],\n)"
        );
        assert_eq!(secret.expose(), "sk-ant-api03-very-secret");
    }

    #[test]
    fn refuses_values_that_cannot_be_a_header() {
        assert_eq!(Secret::new("").problem(), Some("it is empty"));
        assert!(Secret::new("abc\r\nX-Evil: 1").problem().is_some());
        assert!(Secret::new(" abc").problem().is_some());
        assert!(Secret::new("abc\n").problem().is_some());
        assert_eq!(Secret::new("ghp_abc123").problem(), None);
    }

    #[test]
    fn deserializes_from_a_string() {
        let secret: Secret = serde_json::from_str("\"tok\"").unwrap();
        assert_eq!(secret.expose(), "tok");
    }
}
