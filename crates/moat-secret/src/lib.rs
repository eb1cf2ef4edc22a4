//! `Secret`: a credential or token that can be used but never shown. One type for the
//! whole workspace — the credential store, the proxy and the CLI all hold the same one —
//! so the rules below hold wherever a secret travels.
//!
//! * `Debug` and `Display` print [`REDACTED`]: a secret in a log line, an error message
//!   or a panic shows nothing.
//! * Reading the value takes an explicit [`Secret::expose`], so every place that handles
//!   the real value is found with grep.
//! * The bytes are wiped when the value is dropped (copies made through `expose` are the
//!   caller's to look after).
//! * No `Serialize` (a store writes through its own wire type) and no `PartialEq` (a
//!   failing `assert_eq!` would print both sides, were `Debug` ever changed).

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A token, key or password.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// A fresh random token: 32 bytes from the OS, hex encoded (64 characters, safe in a
    /// URL's user-info part). A run's proxy password is one.
    pub fn random_token() -> Result<Self, getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut())?;
        Ok(Secret::new(hex::encode(bytes.as_ref())))
    }

    /// The real value. Call it only where the value must leave moat: encryption, the
    /// header the proxy injects, the file the proxy token is kept in.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
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
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("ghp_realtoken123");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(
            format!("{:#?}", Some(secret.clone())),
            "Some(\n    [REDACTED],\n)"
        );
        assert_eq!(secret.expose(), "ghp_realtoken123");
    }

    #[test]
    fn random_tokens_are_long_hex_and_differ() {
        let a = Secret::random_token().unwrap();
        let b = Secret::random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn deserializes_from_a_string() {
        let secret: Secret = serde_json::from_str("\"tok\"").unwrap();
        assert_eq!(secret.expose(), "tok");
    }
}
