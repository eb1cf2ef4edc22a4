//! Credentials are the workspace's one [`moat_secret::Secret`]; what this crate adds is
//! the check that a value can be a credential at all.

pub use moat_secret::{REDACTED, Secret};

/// Why `secret` cannot be a credential, if it cannot: it ends up in an HTTP header, so
/// control characters (a pasted CR/LF would inject a header) and edge whitespace are
/// refused. The reason never quotes the value.
pub(crate) fn problem(secret: &Secret) -> Option<&'static str> {
    let value = secret.expose();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_values_that_cannot_be_a_header() {
        assert_eq!(problem(&Secret::new("")), Some("it is empty"));
        assert!(problem(&Secret::new("abc\r\nX-Evil: 1")).is_some());
        assert!(problem(&Secret::new(" abc")).is_some());
        assert!(problem(&Secret::new("abc\n")).is_some());
        assert_eq!(problem(&Secret::new("ghp_abc123")), None);
    }
}
