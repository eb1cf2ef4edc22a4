//! Turning Claude Code's own credential record (`~/.claude/.credentials.json` on Linux,
//! the same JSON in the macOS keychain item `Claude Code-credentials`) into an `anthropic`
//! OAuth credential. Pure parsing: the caller reads the bytes.
//!
//! The access token, expiry, scopes and subscription type are kept; the refresh token is
//! not. moat never refreshes an imported token (refreshing would rotate Claude Code's own
//! refresh token and log the host out), so storing it would only widen what a leak exposes.

use jiff::Timestamp;
use serde::Deserialize;

use crate::{Credential, CredentialError, CredentialKind, CredentialSource, ProviderName, Secret};

/// Where Claude Code keeps its credentials on Linux, relative to the home directory.
pub const CLAUDE_CODE_CREDENTIALS_PATH: &str = ".claude/.credentials.json";

/// Parse Claude Code's credential JSON into an `anthropic` OAuth credential granted `now`.
///
/// `origin` names where the bytes came from (`~/.claude/.credentials.json`); it goes into
/// the credential's source and the error messages. An expired token is refused.
pub fn import_claude_code_credentials(
    bytes: &[u8],
    origin: &str,
    now: Timestamp,
) -> Result<Credential, CredentialError> {
    let not_found = |reason: String| CredentialError::NoClaudeCodeCredentials {
        origin: origin.to_owned(),
        reason,
    };
    let file: ClaudeCodeFile = serde_json::from_slice(bytes).map_err(|e| {
        // serde's message could quote a token; say only where it broke.
        not_found(format!(
            "the file is not the JSON Claude Code writes (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Some(oauth) = file.claude_ai_oauth else {
        return Err(not_found("it has no `claudeAiOauth` entry".into()));
    };
    let Some(access_token) = oauth.access_token.filter(|t| !t.is_empty()) else {
        return Err(not_found("it has no access token".into()));
    };
    let expires_at = match oauth.expires_at {
        None => None,
        Some(ms) => Some(Timestamp::from_millisecond(ms).map_err(|_| {
            not_found("its `expiresAt` is not a time in milliseconds since 1970".into())
        })?),
    };
    if let Some(expired_at) = expires_at.filter(|at| *at <= now) {
        return Err(CredentialError::ClaudeCodeCredentialsExpired {
            origin: origin.to_owned(),
            expired_at,
        });
    }
    Credential::new(
        ProviderName::anthropic(),
        CredentialKind::OAuthToken {
            expires_at,
            subscription_type: oauth.subscription_type,
            scopes: oauth.scopes,
            refresh_token: None,
        },
        access_token,
        CredentialSource::Imported {
            from: origin.to_owned(),
        },
        now,
    )
}

#[derive(Deserialize)]
struct ClaudeCodeFile {
    #[serde(rename = "claudeAiOauth")]
    claude_ai_oauth: Option<ClaudeAiOauth>,
}

/// The fields moat reads; others (`refreshToken`, `rateLimitTier`) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaudeAiOauth {
    access_token: Option<Secret>,
    expires_at: Option<i64>,
    #[serde(default)]
    scopes: Vec<String>,
    subscription_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExpiryStatus;

    const ORIGIN: &str = "~/.claude/.credentials.json";
    const TOKEN: &str = "sk-ant-oat01-FIXTURETOKEN-0123456789abcdefghijklmnopqrstuvwxyz";

    /// A fixture shaped like the file Claude Code 2.x writes (values made up).
    fn fixture(expires_at_ms: i64) -> String {
        format!(
            r#"{{
  "claudeAiOauth": {{
    "accessToken": "{TOKEN}",
    "refreshToken": "sk-ant-ort01-FIXTUREREFRESH-abcdef",
    "expiresAt": {expires_at_ms},
    "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
    "subscriptionType": "pro",
    "rateLimitTier": "default_claude_ai"
  }}
}}"#
        )
    }

    fn now() -> Timestamp {
        "2026-02-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn imports_a_valid_record() {
        let expires: Timestamp = "2026-02-15T10:30:00Z".parse().unwrap();
        let json = fixture(expires.as_millisecond());
        let cred = import_claude_code_credentials(json.as_bytes(), ORIGIN, now()).unwrap();
        assert_eq!(cred.provider().as_str(), "anthropic");
        assert_eq!(cred.secret().expose(), TOKEN);
        assert_eq!(cred.granted_at(), now());
        assert_eq!(cred.expires_at(), Some(expires));
        assert_eq!(
            cred.source().to_string(),
            "imported ~/.claude/.credentials.json"
        );
        let CredentialKind::OAuthToken {
            subscription_type,
            scopes,
            refresh_token,
            ..
        } = cred.kind()
        else {
            panic!("not OAuth: {:?}", cred.kind());
        };
        assert_eq!(subscription_type.as_deref(), Some("pro"));
        assert_eq!(scopes.len(), 3);
        assert!(refresh_token.is_none(), "the refresh token is not kept");
        assert_eq!(cred.expiry_status(now()), ExpiryStatus::Fresh);
        assert!(!format!("{cred:?}").contains("FIXTURE"));
    }

    #[test]
    fn refuses_an_expired_token() {
        let expired: Timestamp = "2026-01-31T23:59:59Z".parse().unwrap();
        let json = fixture(expired.as_millisecond());
        let err = import_claude_code_credentials(json.as_bytes(), ORIGIN, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Claude Code credentials in `~/.claude/.credentials.json` expired at \
             2026-01-31T23:59:59Z"
        );
        let hint = err.hint().unwrap();
        assert!(hint.contains("run `moat grant anthropic` again"), "{hint}");
        assert!(!format!("{err:?}").contains("FIXTURE"));
    }

    #[test]
    fn missing_or_garbled_records_say_no_credentials_found() {
        let cases: &[(&str, &str)] = &[
            ("", "not the JSON Claude Code writes (line 1, column 0)"),
            ("{\"accessToken\": \"sk-ant-oat01-LEAK", "not the JSON"),
            ("{}", "no `claudeAiOauth` entry"),
            ("{\"claudeAiOauth\": {}}", "no access token"),
            (
                "{\"claudeAiOauth\": {\"accessToken\": \"\"}}",
                "no access token",
            ),
            (
                // A token where a number belongs: serde would quote it.
                "{\"claudeAiOauth\": {\"accessToken\": \"x\", \"expiresAt\": \"sk-ant-oat01-LEAK\"}}",
                "line 1",
            ),
            ("[1, 2, 3]", "not the JSON"),
        ];
        for (json, expected) in cases {
            let err = import_claude_code_credentials(json.as_bytes(), ORIGIN, now()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "no Claude Code credentials found in `~/.claude/.credentials.json`: "
                ),
                "{text}"
            );
            assert!(text.contains(expected), "{json:?}: {text}");
            assert!(!format!("{text} {err:?}").contains("LEAK"), "{text}");
            let hint = err.hint().unwrap();
            assert!(hint.contains("install Claude Code and log in"), "{hint}");
            assert!(hint.contains("ANTHROPIC_API_KEY"), "{hint}");
        }
    }

    #[test]
    fn a_token_with_a_line_break_is_refused() {
        let json = r#"{"claudeAiOauth": {"accessToken": "sk-ant-oat01-abc\r\nX: y"}}"#;
        let err = import_claude_code_credentials(json.as_bytes(), ORIGIN, now()).unwrap_err();
        assert!(
            matches!(err, CredentialError::InvalidSecret { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_record_without_expiry_is_accepted() {
        let json = format!(r#"{{"claudeAiOauth": {{"accessToken": "{TOKEN}"}}}}"#);
        let cred = import_claude_code_credentials(json.as_bytes(), ORIGIN, now()).unwrap();
        assert_eq!(cred.expires_at(), None);
    }
}
