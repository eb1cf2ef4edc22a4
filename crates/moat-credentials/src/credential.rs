//! `Credential`: what one grant holds (provider, kind, secret, where it came from, when),
//! its expiry classification, and the secret-free `CredentialSummary` that listings show.
//!
//! The JSON written inside the encrypted file is a private wire type, so no public type
//! here can be serialized with its secret by accident.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CredentialError, ProviderName, Secret};

/// How close to its expiry a credential counts as "expires soon" (a warning, not an error).
pub const EXPIRES_SOON_WITHIN: Duration = Duration::from_secs(24 * 60 * 60);

/// The kind of secret, which decides how the proxy injects it and what placeholder the
/// container sees.
#[derive(Debug, Clone)]
pub enum CredentialKind {
    /// An API key (`sk-ant-api03-…`, `sk-proj-…`).
    ApiKey,
    /// An OAuth access token, such as the one `claude setup-token` prints.
    OAuthToken {
        expires_at: Option<Timestamp>,
        /// Claude's plan as Claude Code records it (`pro`, `max`), shown by `moat grant list`.
        subscription_type: Option<String>,
        scopes: Vec<String>,
        /// Kept only when moat itself can refresh the token; Claude Code imports leave it
        /// out, because using Claude Code's refresh token would rotate it and log the host
        /// out.
        refresh_token: Option<Secret>,
    },
    /// A bearer token such as a GitHub personal access token or `gh auth token`.
    Token,
    /// A token a YAML-defined provider puts into the header its definition names.
    Header,
}

impl CredentialKind {
    pub fn label(&self) -> KindLabel {
        match self {
            CredentialKind::ApiKey => KindLabel::ApiKey,
            CredentialKind::OAuthToken { .. } => KindLabel::OAuthToken,
            CredentialKind::Token => KindLabel::Token,
            CredentialKind::Header => KindLabel::Header,
        }
    }

    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            CredentialKind::OAuthToken { expires_at, .. } => *expires_at,
            _ => None,
        }
    }
}

/// The kind without its data, for listings (`moat grant list --json` shows the serde form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KindLabel {
    ApiKey,
    #[serde(rename = "oauth-token")]
    OAuthToken,
    Token,
    Header,
}

impl KindLabel {
    /// The machine form, as serde writes it: `api-key`, `oauth-token`, `token`, `header`.
    pub fn as_str(self) -> &'static str {
        match self {
            KindLabel::ApiKey => "api-key",
            KindLabel::OAuthToken => "oauth-token",
            KindLabel::Token => "token",
            KindLabel::Header => "header",
        }
    }
}

impl fmt::Display for KindLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KindLabel::ApiKey => "API key",
            KindLabel::OAuthToken => "OAuth token",
            KindLabel::Token => "token",
            KindLabel::Header => "header token",
        })
    }
}

/// Where a credential came from. `Display` gives the short form listings show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CredentialSource {
    /// An environment variable: `env:ANTHROPIC_API_KEY`.
    Env { var: String },
    /// The output of a command: `claude setup-token`, `gh auth token`.
    Command { command: String },
    /// Copied from another tool's store: `imported ~/.claude/.credentials.json`.
    Imported { from: String },
    /// Typed or pasted at a prompt.
    Pasted,
    /// Piped into `moat grant` on standard input.
    Stdin,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Env { var } => write!(f, "env:{var}"),
            CredentialSource::Command { command } => f.write_str(command),
            CredentialSource::Imported { from } => write!(f, "imported {from}"),
            CredentialSource::Pasted => f.write_str("pasted"),
            CredentialSource::Stdin => f.write_str("stdin"),
        }
    }
}

/// Whether a credential can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStatus {
    /// No expiry, or further away than the warning window.
    Fresh,
    /// Still valid for this long (less than the window): warn.
    ExpiresSoon(Duration),
    /// At or past its expiry: refuse.
    Expired,
}

/// Classify `expires_at` against `now`; a credential that expires exactly now is expired.
pub fn classify_expiry(
    expires_at: Option<Timestamp>,
    now: Timestamp,
    soon_within: Duration,
) -> ExpiryStatus {
    let Some(expires_at) = expires_at else {
        return ExpiryStatus::Fresh;
    };
    if expires_at <= now {
        return ExpiryStatus::Expired;
    }
    let remaining = Duration::try_from(expires_at.duration_since(now)).unwrap_or(Duration::ZERO);
    if remaining < soon_within {
        ExpiryStatus::ExpiresSoon(remaining)
    } else {
        ExpiryStatus::Fresh
    }
}

/// One granted credential.
///
/// `Debug` is safe to log: the secret and any refresh token print as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct Credential {
    provider: ProviderName,
    kind: CredentialKind,
    secret: Secret,
    source: CredentialSource,
    granted_at: Timestamp,
}

impl Credential {
    /// Refuses secrets that could not be sent in a header (empty, control characters,
    /// edge whitespace): better now than as a confusing 401 inside a run.
    pub fn new(
        provider: ProviderName,
        kind: CredentialKind,
        secret: Secret,
        source: CredentialSource,
        granted_at: Timestamp,
    ) -> Result<Self, CredentialError> {
        let refresh_problem = match &kind {
            CredentialKind::OAuthToken {
                refresh_token: Some(token),
                ..
            } => crate::secret::problem(token).map(|_| "its refresh token is malformed"),
            _ => None,
        };
        if let Some(reason) = crate::secret::problem(&secret).or(refresh_problem) {
            return Err(CredentialError::InvalidSecret { provider, reason });
        }
        Ok(Credential {
            provider,
            kind,
            secret,
            source,
            granted_at,
        })
    }

    pub fn provider(&self) -> &ProviderName {
        &self.provider
    }

    pub fn kind(&self) -> &CredentialKind {
        &self.kind
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    pub fn granted_at(&self) -> Timestamp {
        self.granted_at
    }

    pub fn expires_at(&self) -> Option<Timestamp> {
        self.kind.expires_at()
    }

    /// `Fresh`, `ExpiresSoon` (within [`EXPIRES_SOON_WITHIN`]) or `Expired`.
    pub fn expiry_status(&self, now: Timestamp) -> ExpiryStatus {
        classify_expiry(self.expires_at(), now, EXPIRES_SOON_WITHIN)
    }

    /// For run start: `Err(Expired)` (with the "run `moat grant …` again" hint) when the
    /// credential cannot be used, else its status, so the caller can warn on `ExpiresSoon`.
    pub fn check_expiry(&self, now: Timestamp) -> Result<ExpiryStatus, CredentialError> {
        match self.expiry_status(now) {
            ExpiryStatus::Expired => Err(CredentialError::Expired {
                provider: self.provider.clone(),
                expired_at: self.expires_at().unwrap_or(now),
            }),
            status => Ok(status),
        }
    }

    /// The stand-in the container sees for this credential in the run `run_token`
    /// (see [`crate::placeholder`]).
    pub fn placeholder(&self, run_token: &str) -> String {
        crate::placeholder(&self.provider, &self.kind, run_token)
    }

    pub fn summary(&self) -> CredentialSummary {
        let subscription_type = match &self.kind {
            CredentialKind::OAuthToken {
                subscription_type, ..
            } => subscription_type.clone(),
            _ => None,
        };
        CredentialSummary {
            provider: self.provider.clone(),
            kind: self.kind.label(),
            subscription_type,
            source: self.source.clone(),
            expires_at: self.expires_at(),
            granted_at: self.granted_at,
        }
    }

    /// The JSON that gets encrypted. It holds the secret: the buffer wipes itself on drop.
    pub(crate) fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        let (kind, refresh_token) = match &self.kind {
            CredentialKind::ApiKey => (WireKind::ApiKey, None),
            CredentialKind::Token => (WireKind::Token, None),
            CredentialKind::Header => (WireKind::Header, None),
            CredentialKind::OAuthToken {
                expires_at,
                subscription_type,
                scopes,
                refresh_token,
            } => (
                WireKind::OauthToken {
                    expires_at: *expires_at,
                    subscription_type: subscription_type.clone(),
                    scopes: scopes.clone(),
                },
                refresh_token.as_ref().map(Secret::expose),
            ),
        };
        let wire = WireOut {
            version: WIRE_VERSION,
            provider: self.provider.as_str(),
            kind,
            secret: self.secret.expose(),
            refresh_token,
            source: &self.source,
            granted_at: self.granted_at,
        };
        // Measured first and allocated once: a growing Vec would leave copies of the
        // secret in the freed smaller buffers.
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, &wire).expect("serializing cannot fail");
        let mut buf = Zeroizing::new(Vec::with_capacity(counter.0));
        serde_json::to_writer(&mut *buf, &wire).expect("serializing to a Vec cannot fail");
        debug_assert_eq!(buf.len(), counter.0);
        buf
    }

    /// Parse decrypted JSON. The error text never quotes the content (serde's messages
    /// may: "invalid type: string \"sk-…\""), only where it went wrong.
    pub(crate) fn from_plaintext(
        plaintext: &[u8],
        expected_provider: &ProviderName,
    ) -> Result<Self, String> {
        let describe = |e: serde_json::Error| {
            format!(
                "not a credential record ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
            .to_lowercase()
        };
        // The version first, so that a newer format is reported as such rather than as
        // damage.
        let version: WireVersion = serde_json::from_slice(plaintext).map_err(describe)?;
        if version.version > WIRE_VERSION {
            return Err(format!(
                "written by a newer moat (format version {})",
                version.version
            ));
        }
        let wire: WireIn = serde_json::from_slice(plaintext).map_err(describe)?;
        if wire.provider != *expected_provider {
            return Err(format!(
                "it holds the `{}` credential, not `{expected_provider}`",
                wire.provider
            ));
        }
        let kind = match wire.kind {
            WireKind::ApiKey => CredentialKind::ApiKey,
            WireKind::Token => CredentialKind::Token,
            WireKind::Header => CredentialKind::Header,
            WireKind::OauthToken {
                expires_at,
                subscription_type,
                scopes,
            } => CredentialKind::OAuthToken {
                expires_at,
                subscription_type,
                scopes,
                refresh_token: wire.refresh_token,
            },
        };
        Credential::new(
            wire.provider,
            kind,
            wire.secret,
            wire.source,
            wire.granted_at,
        )
        .map_err(|e| e.to_string())
    }
}

/// What `moat grant list` shows about a credential: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialSummary {
    pub provider: ProviderName,
    pub kind: KindLabel,
    pub subscription_type: Option<String>,
    pub source: CredentialSource,
    pub expires_at: Option<Timestamp>,
    pub granted_at: Timestamp,
}

impl CredentialSummary {
    pub fn expiry_status(&self, now: Timestamp) -> ExpiryStatus {
        classify_expiry(self.expires_at, now, EXPIRES_SOON_WITHIN)
    }
}

/// A writer that only counts, to size the plaintext buffer exactly.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bumped when the plaintext changes incompatibly; older moats then say so instead of
/// misreading it.
const WIRE_VERSION: u32 = 1;

#[derive(Serialize)]
struct WireOut<'a> {
    version: u32,
    provider: &'a str,
    kind: WireKind,
    secret: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    source: &'a CredentialSource,
    granted_at: Timestamp,
}

#[derive(Deserialize)]
struct WireVersion {
    version: u32,
}

#[derive(Deserialize)]
struct WireIn {
    provider: ProviderName,
    kind: WireKind,
    secret: Secret,
    #[serde(default)]
    refresh_token: Option<Secret>,
    source: CredentialSource,
    granted_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum WireKind {
    ApiKey,
    OauthToken {
        #[serde(default)]
        expires_at: Option<Timestamp>,
        #[serde(default)]
        subscription_type: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
    },
    Token,
    Header,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn oauth(expires_at: Option<Timestamp>) -> Credential {
        Credential::new(
            ProviderName::anthropic(),
            CredentialKind::OAuthToken {
                expires_at,
                subscription_type: Some("max".into()),
                scopes: vec!["user:inference".into()],
                refresh_token: Some(Secret::new("sk-ant-ort01-refresh-me")),
            },
            Secret::new("sk-ant-oat01-the-real-token"),
            CredentialSource::Command {
                command: "claude setup-token".into(),
            },
            ts("2026-01-01T00:00:00Z"),
        )
        .unwrap()
    }

    #[test]
    fn expiry_classification() {
        let now = ts("2026-03-01T12:00:00Z");
        let status = |at: Option<&str>| classify_expiry(at.map(ts), now, EXPIRES_SOON_WITHIN);
        assert_eq!(status(None), ExpiryStatus::Fresh);
        assert_eq!(status(Some("2026-03-10T00:00:00Z")), ExpiryStatus::Fresh);
        assert_eq!(status(Some("2026-03-02T12:00:00Z")), ExpiryStatus::Fresh);
        assert_eq!(
            status(Some("2026-03-02T11:00:00Z")),
            ExpiryStatus::ExpiresSoon(Duration::from_secs(23 * 3600))
        );
        assert_eq!(status(Some("2026-03-01T12:00:00Z")), ExpiryStatus::Expired);
        assert_eq!(status(Some("2025-12-31T00:00:00Z")), ExpiryStatus::Expired);
    }

    #[test]
    fn check_expiry_refuses_expired_with_the_grant_hint() {
        let now = ts("2026-03-01T12:00:00Z");
        let expired = oauth(Some(ts("2026-03-01T11:00:00Z")));
        let err = expired.check_expiry(now).unwrap_err();
        assert!(matches!(err, CredentialError::Expired { .. }));
        assert!(err.to_string().starts_with("credential expired"));
        assert_eq!(err.hint().unwrap(), "run `moat grant anthropic` again");

        let soon = oauth(Some(ts("2026-03-01T13:00:00Z")));
        assert_eq!(
            soon.check_expiry(now).unwrap(),
            ExpiryStatus::ExpiresSoon(Duration::from_secs(3600))
        );
        assert_eq!(oauth(None).check_expiry(now).unwrap(), ExpiryStatus::Fresh);
    }

    #[test]
    fn plaintext_round_trip() {
        let cred = oauth(Some(ts("2026-06-01T00:00:00Z")));
        let plain = cred.to_plaintext();
        let back = Credential::from_plaintext(&plain, &ProviderName::anthropic()).unwrap();
        assert_eq!(back.summary(), cred.summary());
        assert_eq!(back.secret().expose(), "sk-ant-oat01-the-real-token");
        let CredentialKind::OAuthToken {
            refresh_token,
            scopes,
            ..
        } = back.kind()
        else {
            panic!("kind changed: {:?}", back.kind())
        };
        assert_eq!(
            refresh_token.as_ref().unwrap().expose(),
            "sk-ant-ort01-refresh-me"
        );
        assert_eq!(scopes, &["user:inference"]);
    }

    #[test]
    fn plaintext_of_another_provider_is_refused() {
        let plain = oauth(None).to_plaintext();
        let err = Credential::from_plaintext(&plain, &ProviderName::parse("github").unwrap())
            .unwrap_err();
        assert_eq!(err, "it holds the `anthropic` credential, not `github`");
    }

    #[test]
    fn plaintext_from_a_newer_moat_says_so() {
        let newer = br#"{"version":2,"provider":"anthropic","something":"else"}"#;
        let err = Credential::from_plaintext(newer, &ProviderName::anthropic()).unwrap_err();
        assert_eq!(err, "written by a newer moat (format version 2)");
    }

    #[test]
    fn plaintext_errors_never_quote_the_content() {
        // A secret where a number belongs: serde's own message would quote it.
        let bad = br#"{"version":1,"provider":"anthropic","kind":{"type":"api-key"},
            "secret":"sk-ant-api03-LEAKME","source":{"type":"pasted"},
            "granted_at":"sk-ant-api03-LEAKME"}"#;
        let err = Credential::from_plaintext(bad, &ProviderName::anthropic()).unwrap_err();
        assert!(!err.contains("LEAKME"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cred = oauth(None);
        let debug = format!("{cred:?} {cred:#?} {:?}", cred.summary());
        assert!(!debug.contains("the-real-token"), "{debug}");
        assert!(!debug.contains("refresh-me"), "{debug}");
        assert!(debug.contains("[REDACTED]"));
    }

    #[test]
    fn new_refuses_a_header_breaking_secret_without_quoting_it() {
        let err = Credential::new(
            ProviderName::parse("github").unwrap(),
            CredentialKind::Token,
            Secret::new("ghp_secretvalue\nX-Injected: yes"),
            CredentialSource::Pasted,
            ts("2026-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert!(matches!(err, CredentialError::InvalidSecret { .. }));
        assert!(!err.to_string().contains("secretvalue"));
        assert_eq!(
            err.hint().unwrap(),
            "check the value and run `moat grant github` again"
        );
    }

    #[test]
    fn source_display() {
        let cases = [
            (
                CredentialSource::Env {
                    var: "ANTHROPIC_API_KEY".into(),
                },
                "env:ANTHROPIC_API_KEY",
            ),
            (
                CredentialSource::Command {
                    command: "gh auth token".into(),
                },
                "gh auth token",
            ),
            (
                CredentialSource::Imported {
                    from: "~/.claude/.credentials.json".into(),
                },
                "imported ~/.claude/.credentials.json",
            ),
            (CredentialSource::Pasted, "pasted"),
        ];
        for (source, text) in cases {
            assert_eq!(source.to_string(), text);
        }
    }

    #[test]
    fn kind_labels_serialize_as_their_machine_form() {
        for label in [
            KindLabel::ApiKey,
            KindLabel::OAuthToken,
            KindLabel::Token,
            KindLabel::Header,
        ] {
            let json = serde_json::to_string(&label).unwrap();
            assert_eq!(json, format!("\"{}\"", label.as_str()));
        }
    }

    #[test]
    fn summary_serializes_without_the_secret() {
        let json = serde_json::to_string(&oauth(None).summary()).unwrap();
        assert!(!json.contains("the-real-token"));
        assert!(json.contains(r#""kind":"oauth-token""#), "{json}");
        assert!(json.contains(r#""source":{"type":"command","command":"claude setup-token"}"#));
    }
}
