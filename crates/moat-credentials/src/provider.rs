//! `ProviderName`: the validated name of a grant (`anthropic`, `github`, `mcp-notion`).
//!
//! The name becomes a file name (`<provider>.enc`) and the AAD of its encryption, so only
//! lowercase letters, digits and `-` are allowed: no `/`, no `..`, no hidden files.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CredentialError;

/// Longest accepted name; far beyond any real provider, well within file-name limits.
pub const MAX_PROVIDER_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderName(String);

impl ProviderName {
    pub fn parse(name: &str) -> Result<Self, CredentialError> {
        let invalid = |reason| CredentialError::InvalidProvider {
            name: name.chars().take(MAX_PROVIDER_NAME_LEN + 8).collect(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > MAX_PROVIDER_NAME_LEN {
            return Err(invalid("it is longer than 64 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "only lowercase letters, digits and `-` are allowed",
            ));
        }
        if name.starts_with('-') {
            // It would read as an option on a command line.
            return Err(invalid("it starts with `-`"));
        }
        Ok(ProviderName(name.to_owned()))
    }

    /// The provider Claude Code credentials are stored under (`anthropic.enc`).
    pub fn anthropic() -> Self {
        ProviderName("anthropic".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProviderName {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderName::parse(s)
    }
}

impl TryFrom<String> for ProviderName {
    type Error = CredentialError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        ProviderName::parse(&value)
    }
}

impl From<ProviderName> for String {
    fn from(name: ProviderName) -> Self {
        name.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProviderName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in [
            "anthropic",
            "github",
            "mcp-notion",
            "brave-search",
            "a",
            "x1",
        ] {
            assert_eq!(ProviderName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_traversal_and_odd_names() {
        for name in [
            "",
            "../etc/passwd",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "GitHub",
            "ssh:github.com",
            "-rf",
            "name with space",
            "a\0b",
            "café",
        ] {
            let err = ProviderName::parse(name).unwrap_err();
            assert!(
                matches!(err, CredentialError::InvalidProvider { .. }),
                "{name:?} gave {err:?}"
            );
        }
        assert!(ProviderName::parse(&"a".repeat(65)).is_err());
        assert!(ProviderName::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn error_names_the_rule() {
        let err = ProviderName::parse("../x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid provider name `../x`: only lowercase letters, digits and `-` are allowed"
        );
        assert!(err.hint().unwrap().contains("moat grant"));
    }

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<ProviderName>("\"github\"").is_ok());
        assert!(serde_json::from_str::<ProviderName>("\"../github\"").is_err());
    }
}
