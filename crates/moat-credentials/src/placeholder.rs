//! The stand-in value a container sees instead of a credential (`ANTHROPIC_API_KEY`,
//! `CLAUDE_CODE_OAUTH_TOKEN`, `GH_TOKEN`…), which the proxy swaps for the real one.
//!
//! A placeholder is shaped like the real thing, so clients that check a prefix or length
//! accept it, and is a pure function of (provider, kind, run token): the same run always
//! gets the same value and two runs never share one. It is never computed from the secret,
//! so nothing about the secret can be learnt from it.
//!
//! Shapes (`F` = filler, `[A-Za-z0-9]` unless said otherwise):
//!
//! | provider, kind                   | placeholder                          | length |
//! |----------------------------------|--------------------------------------|--------|
//! | `anthropic`/`claude`, API key    | `sk-ant-api03-` + 93 F + `AA`        | 108    |
//! | `anthropic`/`claude`, OAuth      | `sk-ant-oat01-` + 93 F + `AA`        | 108    |
//! | `github`, any kind               | `ghp_` + 36 F                        | 40     |
//! | `openai`, any kind               | `sk-proj-` + 48 F                    | 56     |
//! | `gitlab`, any kind               | `glpat-` + 20 F                      | 26     |
//! | anything else                    | `moat-` + provider + `-` + 32 hex F  |        |
//!
//! The GitHub shape is not checksum-valid (real `ghp_` tokens end in a CRC32); `gh` and
//! `git` do not check it.

use sha2::{Digest, Sha256};

use crate::{CredentialKind, KindLabel, ProviderName};

const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

/// The placeholder the container sees for `provider`'s credential of `kind` in the run
/// whose proxy token (or other per-run secret) is `run_token`.
pub fn placeholder(provider: &ProviderName, kind: &CredentialKind, run_token: &str) -> String {
    let label = kind.label();
    let filler = Filler::new(provider, label, run_token);
    match (provider.as_str(), label) {
        ("anthropic" | "claude", KindLabel::OAuthToken) => {
            format!("sk-ant-oat01-{}AA", filler.take(93, BASE62))
        }
        ("anthropic" | "claude", _) => format!("sk-ant-api03-{}AA", filler.take(93, BASE62)),
        ("github", _) => format!("ghp_{}", filler.take(36, BASE62)),
        ("openai", _) => format!("sk-proj-{}", filler.take(48, BASE62)),
        ("gitlab", _) => format!("glpat-{}", filler.take(20, BASE62)),
        (name, _) => format!("moat-{name}-{}", filler.take(32, HEX)),
    }
}

/// Characters from SHA-256 in counter mode over a domain-separated, length-prefixed input.
struct Filler {
    seed: Sha256,
}

impl Filler {
    fn new(provider: &ProviderName, kind: KindLabel, run_token: &str) -> Self {
        let mut seed = Sha256::new();
        seed.update(b"moat-placeholder-v1");
        for part in [provider.as_str(), kind.as_str(), run_token] {
            seed.update((part.len() as u64).to_be_bytes());
            seed.update(part.as_bytes());
        }
        Filler { seed }
    }

    fn take(&self, count: usize, alphabet: &[u8]) -> String {
        let mut out = String::with_capacity(count);
        let mut block = 0u64;
        while out.len() < count {
            let mut hasher = self.seed.clone();
            hasher.update(block.to_be_bytes());
            for byte in hasher.finalize() {
                if out.len() == count {
                    break;
                }
                // The slight bias of `%` does not matter: this is not a secret.
                out.push(alphabet[usize::from(byte) % alphabet.len()] as char);
            }
            block += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credential, CredentialSource, Secret};

    fn name(s: &str) -> ProviderName {
        ProviderName::parse(s).unwrap()
    }

    fn oauth() -> CredentialKind {
        CredentialKind::OAuthToken {
            expires_at: None,
            subscription_type: None,
            scopes: vec![],
            refresh_token: None,
        }
    }

    fn is_base62(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn shapes() {
        let api = placeholder(&name("anthropic"), &CredentialKind::ApiKey, "run-token");
        assert!(
            api.starts_with("sk-ant-api03-") && api.ends_with("AA"),
            "{api}"
        );
        assert_eq!(api.len(), 108);
        assert!(is_base62(&api["sk-ant-api03-".len()..]));

        let oat = placeholder(&name("anthropic"), &oauth(), "run-token");
        assert!(
            oat.starts_with("sk-ant-oat01-") && oat.ends_with("AA"),
            "{oat}"
        );
        assert_eq!(oat.len(), 108);

        let gh = placeholder(&name("github"), &CredentialKind::Token, "run-token");
        assert!(gh.starts_with("ghp_") && is_base62(&gh[4..]), "{gh}");
        assert_eq!(gh.len(), 40);

        let openai = placeholder(&name("openai"), &CredentialKind::ApiKey, "run-token");
        assert!(
            openai.starts_with("sk-proj-") && openai.len() == 56,
            "{openai}"
        );

        let gitlab = placeholder(&name("gitlab"), &CredentialKind::Header, "run-token");
        assert!(
            gitlab.starts_with("glpat-") && gitlab.len() == 26,
            "{gitlab}"
        );

        let other = placeholder(&name("brave-search"), &CredentialKind::Header, "run-token");
        let filler = other.strip_prefix("moat-brave-search-").unwrap();
        assert_eq!(filler.len(), 32);
        assert!(filler.bytes().all(|b| b.is_ascii_hexdigit()), "{other}");
    }

    #[test]
    fn deterministic_per_run_and_distinct_across_runs_providers_and_kinds() {
        let a = placeholder(&name("github"), &CredentialKind::Token, "run-a");
        assert_eq!(
            a,
            placeholder(&name("github"), &CredentialKind::Token, "run-a")
        );
        assert_ne!(
            a,
            placeholder(&name("github"), &CredentialKind::Token, "run-b")
        );
        assert_ne!(
            placeholder(&name("anthropic"), &CredentialKind::ApiKey, "run-a"),
            placeholder(&name("claude"), &CredentialKind::ApiKey, "run-a"),
        );
        assert_ne!(
            placeholder(&name("mcp-x"), &CredentialKind::Token, "run-a"),
            placeholder(&name("mcp-x"), &CredentialKind::Header, "run-a"),
        );
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            placeholder(&name("ab"), &CredentialKind::Token, "c"),
            placeholder(&name("a"), &CredentialKind::Token, "bc"),
        );
    }

    #[test]
    fn independent_of_the_secret() {
        let make = |secret: &str| {
            Credential::new(
                name("github"),
                CredentialKind::Token,
                Secret::new(secret),
                CredentialSource::Pasted,
                "2026-01-01T00:00:00Z".parse().unwrap(),
            )
            .unwrap()
        };
        let one = make("ghp_realtokenONE").placeholder("run-a");
        let two = make("ghp_realtokenTWO").placeholder("run-a");
        assert_eq!(one, two);
        assert!(!one.contains("realtoken"));
    }

    #[test]
    fn a_long_filler_spans_several_hash_blocks() {
        let filler = Filler::new(&name("x"), KindLabel::Token, "t").take(100, BASE62);
        assert_eq!(filler.len(), 100);
        assert_ne!(filler[..32], filler[32..64]);
    }
}
