//! `Secret`: a credential value that can be used but never shown.

use std::fmt;

use zeroize::Zeroize;

/// A credential or token: the real value is reachable only through [`Secret::expose`],
/// and `Debug`/`Display` print `[REDACTED]`, so a secret that ends up in a log line,
/// an error message or a panic shows nothing.
///
/// The bytes are wiped when the value is dropped (copies made by callers through
/// `expose` are theirs to look after).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// A fresh random token: 32 bytes from the OS, hex encoded (64 characters, safe in a
    /// URL's user-info part). Used as the per-run proxy password.
    pub fn random_token() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token = hex::encode(bytes);
        bytes.zeroize();
        Ok(Secret(token))
    }

    /// The real value. Call this only where the value goes to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("ghp_realtoken123");
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret([REDACTED]))");
        assert_eq!(secret.expose(), "ghp_realtoken123");
    }

    #[test]
    fn random_tokens_are_long_hex_and_differ() {
        let a = Secret::random_token().unwrap();
        let b = Secret::random_token().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
