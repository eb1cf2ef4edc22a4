//! From the grants a run names to what its proxy and container need: the proxy rules
//! holding the real secrets, the container environment holding placeholders only, the
//! hosts a strict policy must allow, and warnings (credentials about to expire).

use std::time::Duration;

use jiff::Timestamp;
use moat_credentials::{
    Credential, CredentialKind, CredentialStore, ExpiryStatus, ProviderName, Secret, SshGrant,
    SshGrantStore,
};
use moat_proxy::{GrantRule, HostPattern, basic, bearer};

use crate::error::ProviderError;
use crate::provider::{Provider, ProviderKind, ProviderRegistry, patterns};

/// The `anthropic-beta` value Claude's OAuth tokens need on every API request.
pub const ANTHROPIC_OAUTH_BETA: &str = "oauth-2025-04-20";

/// Everything the grants of one run need: proxy rules (with the real secrets), the env
/// the container gets (placeholders only), and the hosts strict policy must allow.
#[derive(Debug, Default)]
pub struct RunGrants {
    /// For `ProxyConfig::rules`. `Debug` redacts the secrets they hold.
    pub rules: Vec<GrantRule>,
    /// Variables for the container: placeholders and plain settings, never a secret.
    pub env: Vec<(String, String)>,
    /// Every host the grants need under a strict policy (their injection hosts and the
    /// other hosts their clients contact), without duplicates.
    pub hosts: Vec<HostPattern>,
    /// Things to tell the user before the run starts (a credential expiring soon).
    pub warnings: Vec<String>,
    /// The run's `ssh:` grants, as stored by `moat grant ssh` (no secret in them).
    pub ssh: Vec<SshGrant>,
    /// The container variables of each grant, by the grant as written (aliases too), for
    /// a program that must be given them explicitly (an MCP server's `env`).
    pub env_by_grant: Vec<(String, Vec<(String, String)>)>,
}

/// Turn the run's `grants` (as written in `--grant` or `grants:`; aliases allowed,
/// repeats ignored) into rules, container environment and hosts.
///
/// `run_token` is a per-run secret (the proxy's token): placeholders derive from it, so
/// two runs never share one. Fails on the first grant that cannot be used: unknown
/// provider, not granted (an `ssh:` grant included), undecryptable, or expired (at
/// `now`). `ssh:` grants are read from the store's directory (`ssh.json`) and returned in
/// [`RunGrants::ssh`].
pub fn grants_for_run(
    store: &CredentialStore,
    registry: &ProviderRegistry,
    grants: &[String],
    run_token: &str,
    now: Timestamp,
) -> Result<RunGrants, ProviderError> {
    let mut out = RunGrants::default();
    let mut env_owner: Vec<(String, String)> = Vec::new();
    let mut done: Vec<ProviderName> = Vec::new();
    for grant in grants {
        let grant = grant.trim();
        if grant.starts_with("ssh:") {
            let Some((host, port)) = ssh_target(grant) else {
                return Err(ProviderError::BadSshGrant {
                    grant: grant.chars().take(260).collect(),
                });
            };
            if out.ssh.iter().any(|g| g.host == host && g.port == port) {
                continue;
            }
            let stored = SshGrantStore::in_dir(store.dir())
                .get(&host, port)?
                .ok_or_else(|| ProviderError::SshNotGranted {
                    grant: grant.to_owned(),
                    host: host.clone(),
                    port,
                })?;
            out.ssh.push(stored);
            continue;
        }
        let provider = registry.require(grant)?;
        if done.contains(provider.name()) {
            let env = out
                .env_by_grant
                .iter()
                .find(|(g, _)| registry.get(g).map(Provider::name) == Some(provider.name()))
                .map(|(_, env)| env.clone())
                .unwrap_or_default();
            out.env_by_grant.push((grant.to_owned(), env));
            continue;
        }
        done.push(provider.name().clone());
        let credential = match store.load(provider.name())? {
            Some(credential) => credential,
            None => {
                return Err(ProviderError::NotGranted {
                    provider: provider.name().to_string(),
                });
            }
        };
        if let ExpiryStatus::ExpiresSoon(left) = credential.check_expiry(now)? {
            out.warnings.push(format!(
                "the `{name}` credential expires in {} (at {}); run `moat grant {name}` \
                 again soon",
                short_duration(left),
                credential
                    .expires_at()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                name = provider.name(),
            ));
        }
        let one = grant_for(provider, &credential, run_token)?;
        out.rules.extend(one.rules);
        out.env_by_grant.push((grant.to_owned(), one.env.clone()));
        for (var, value) in one.env {
            if let Some((_, first)) = env_owner.iter().find(|(v, _)| *v == var) {
                return Err(ProviderError::EnvConflict {
                    var,
                    first: first.clone(),
                    second: provider.name().to_string(),
                });
            }
            env_owner.push((var.clone(), provider.name().to_string()));
            out.env.push((var, value));
        }
        for host in provider.strict_hosts() {
            if !out.hosts.contains(&host) {
                out.hosts.push(host);
            }
        }
    }
    Ok(out)
}

/// `ssh:HOST[:PORT]` → the lowercase host and the port (22 unless given).
fn ssh_target(grant: &str) -> Option<(String, u16)> {
    let rest = grant.strip_prefix("ssh:")?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => (rest, 22),
    };
    (!host.is_empty() && !host.contains(':')).then(|| (host.to_ascii_lowercase(), port))
}

/// One provider's rules and environment.
struct OneGrant {
    rules: Vec<GrantRule>,
    env: Vec<(String, String)>,
}

fn grant_for(
    provider: &Provider,
    credential: &Credential,
    run_token: &str,
) -> Result<OneGrant, ProviderError> {
    let name = provider.name().as_str();
    let rule_error = |source| ProviderError::Rule {
        grant: name.to_owned(),
        source,
    };
    let secret = proxy_secret(credential.secret());
    let placeholder = credential.placeholder(run_token);
    let mut env = Vec::new();
    let rules = match provider.kind() {
        ProviderKind::Anthropic => match credential.kind() {
            CredentialKind::OAuthToken { .. } => {
                env.push(("CLAUDE_CODE_OAUTH_TOKEN".to_owned(), placeholder));
                vec![
                    GrantRule::new(name, provider.injection_hosts())
                        .remove_header("x-api-key")
                        .and_then(|r| r.set_header("authorization", &bearer(&secret)))
                        .and_then(|r| r.merge_header("anthropic-beta", ANTHROPIC_OAUTH_BETA))
                        .map_err(rule_error)?,
                ]
            }
            _ => {
                env.push(("ANTHROPIC_API_KEY".to_owned(), placeholder));
                vec![
                    GrantRule::new(name, provider.injection_hosts())
                        .set_header("x-api-key", &secret)
                        .map_err(rule_error)?,
                ]
            }
        },
        ProviderKind::GitHub => {
            env.push(("GH_TOKEN".to_owned(), placeholder.clone()));
            env.push(("GITHUB_TOKEN".to_owned(), placeholder));
            // git must fail rather than wait for a password nobody can type.
            env.push(("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()));
            vec![
                GrantRule::new(name, patterns(&["api.github.com"]))
                    .set_header("authorization", &bearer(&secret))
                    .map_err(rule_error)?,
                // GitHub's smart-HTTP endpoints refuse Bearer; git needs Basic.
                GrantRule::new(name, patterns(&["github.com"]))
                    .set_header("authorization", &basic("x-access-token", &secret))
                    .map_err(rule_error)?,
            ]
        }
        ProviderKind::OpenAi => {
            env.push(("OPENAI_API_KEY".to_owned(), placeholder));
            vec![
                GrantRule::new(name, provider.injection_hosts())
                    .set_header("authorization", &bearer(&secret))
                    .map_err(rule_error)?,
            ]
        }
        ProviderKind::Header(spec) => {
            for var in &spec.container_env {
                env.push((var.clone(), placeholder.clone()));
            }
            let value = moat_proxy::Secret::new(spec.render(credential.secret().expose()));
            vec![
                GrantRule::new(name, spec.hosts.clone())
                    .set_header(&spec.header, &value)
                    .map_err(rule_error)?,
            ]
        }
    };
    Ok(OneGrant { rules, env })
}

/// The proxy's secret type for a stored secret (the copy wipes itself on drop too).
fn proxy_secret(secret: &Secret) -> moat_proxy::Secret {
    moat_proxy::Secret::new(secret.expose())
}

/// `3h 20m`, `45m`, `30s`: how long until a credential expires, for warnings.
fn short_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (hours, minutes) = (secs / 3600, secs % 3600 / 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_credentials::{CredentialSource, EncryptionKey};

    const RUN_TOKEN: &str = "run-token-for-tests";

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn now() -> Timestamp {
        ts("2026-03-01T12:00:00Z")
    }

    struct World {
        _dir: tempfile::TempDir,
        store: CredentialStore,
        registry: ProviderRegistry,
    }

    impl World {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = CredentialStore::new(
                dir.path().join("credentials"),
                EncryptionKey::from_bytes([7; 32]),
            );
            let providers = dir.path().join("providers");
            fs_err::create_dir(&providers).unwrap();
            fs_err::write(
                providers.join("acme.yaml"),
                "name: acme\ndescription: Acme\ntoken_env: ACME_TOKEN\nhosts: [api.acme.test, \"*.acme.dev\"]\ninject: {header: X-Acme-Key, value: \"Key {token}\"}\ncontainer_env: [ACME_TOKEN, ACME_KEY]\n",
            )
            .unwrap();
            let registry = ProviderRegistry::load(&providers).unwrap();
            World {
                _dir: dir,
                store,
                registry,
            }
        }

        fn grant(&self, provider: &str, kind: CredentialKind, secret: &str) {
            let credential = Credential::new(
                ProviderName::parse(provider).unwrap(),
                kind,
                Secret::new(secret),
                CredentialSource::Pasted,
                ts("2026-01-01T00:00:00Z"),
            )
            .unwrap();
            self.store.save(&credential).unwrap();
        }

        fn run(&self, grants: &[&str]) -> Result<RunGrants, ProviderError> {
            let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
            grants_for_run(&self.store, &self.registry, &grants, RUN_TOKEN, now())
        }
    }

    fn oauth(expires_at: Option<&str>) -> CredentialKind {
        CredentialKind::OAuthToken {
            expires_at: expires_at.map(ts),
            subscription_type: Some("max".into()),
            scopes: vec![],
            refresh_token: None,
        }
    }

    fn hosts(grants: &RunGrants) -> Vec<String> {
        grants.hosts.iter().map(ToString::to_string).collect()
    }

    fn env<'a>(grants: &'a RunGrants, var: &str) -> Option<&'a str> {
        grants
            .env
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }

    fn rules_debug(grants: &RunGrants) -> String {
        format!("{:?}", grants.rules)
    }

    #[test]
    fn anthropic_api_key() {
        let world = World::new();
        world.grant("anthropic", CredentialKind::ApiKey, "sk-ant-api03-REAL");
        let grants = world.run(&["anthropic"]).unwrap();
        let placeholder = env(&grants, "ANTHROPIC_API_KEY").unwrap();
        assert!(placeholder.starts_with("sk-ant-api03-"), "{placeholder}");
        assert!(!placeholder.contains("REAL"));
        assert_eq!(grants.env.len(), 1);
        assert_eq!(grants.rules.len(), 1);
        assert_eq!(grants.rules[0].grant(), "anthropic");
        assert_eq!(
            grants.rules[0]
                .hosts()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["api.anthropic.com"]
        );
        assert_eq!(
            rules_debug(&grants),
            "[GrantRule { grant: \"anthropic\", hosts: [HostPattern(api.anthropic.com)], ops: [\"set x-api-key: [REDACTED]\"] }]"
        );
        assert!(hosts(&grants).contains(&"claude.ai".to_owned()));
        assert!(grants.warnings.is_empty());
    }

    #[test]
    fn claude_oauth_token() {
        let world = World::new();
        world.grant(
            "anthropic",
            oauth(Some("2026-06-01T00:00:00Z")),
            "sk-ant-oat01-REAL",
        );
        let grants = world.run(&["claude"]).unwrap();
        let placeholder = env(&grants, "CLAUDE_CODE_OAUTH_TOKEN").unwrap();
        assert!(placeholder.starts_with("sk-ant-oat01-"), "{placeholder}");
        assert!(env(&grants, "ANTHROPIC_API_KEY").is_none());
        assert_eq!(
            rules_debug(&grants),
            "[GrantRule { grant: \"anthropic\", hosts: [HostPattern(api.anthropic.com)], ops: [\"remove x-api-key\", \"set authorization: [REDACTED]\", \"merge anthropic-beta: oauth-2025-04-20\"] }]"
        );
    }

    #[test]
    fn github_token_for_the_api_and_git() {
        let world = World::new();
        world.grant("github", CredentialKind::Token, "ghp_REAL");
        let grants = world.run(&["github"]).unwrap();
        let gh = env(&grants, "GH_TOKEN").unwrap();
        assert!(gh.starts_with("ghp_") && gh.len() == 40, "{gh}");
        assert_eq!(env(&grants, "GITHUB_TOKEN"), Some(gh));
        assert_eq!(env(&grants, "GIT_TERMINAL_PROMPT"), Some("0"));
        assert_eq!(
            rules_debug(&grants),
            "[GrantRule { grant: \"github\", hosts: [HostPattern(api.github.com)], ops: [\"set authorization: [REDACTED]\"] }, \
             GrantRule { grant: \"github\", hosts: [HostPattern(github.com)], ops: [\"set authorization: [REDACTED]\"] }]"
        );
        assert_eq!(
            hosts(&grants),
            [
                "api.github.com",
                "github.com",
                "*.github.com",
                "*.githubusercontent.com"
            ]
        );
    }

    #[test]
    fn openai_and_yaml_providers() {
        let world = World::new();
        world.grant("openai", CredentialKind::ApiKey, "sk-proj-REAL");
        world.grant("acme", CredentialKind::Header, "acme-REAL");
        let grants = world.run(&["openai", "acme"]).unwrap();
        assert!(
            env(&grants, "OPENAI_API_KEY")
                .unwrap()
                .starts_with("sk-proj-")
        );
        let acme = env(&grants, "ACME_TOKEN").unwrap();
        assert!(acme.starts_with("moat-acme-"), "{acme}");
        assert_eq!(env(&grants, "ACME_KEY"), Some(acme));
        assert_eq!(
            rules_debug(&grants),
            "[GrantRule { grant: \"openai\", hosts: [HostPattern(api.openai.com)], ops: [\"set authorization: [REDACTED]\"] }, \
             GrantRule { grant: \"acme\", hosts: [HostPattern(api.acme.test), HostPattern(*.acme.dev)], ops: [\"set x-acme-key: [REDACTED]\"] }]"
        );
        assert_eq!(
            hosts(&grants),
            [
                "api.openai.com",
                "*.openai.com",
                "chatgpt.com",
                "api.acme.test",
                "*.acme.dev"
            ]
        );
    }

    #[test]
    fn placeholders_differ_per_run_and_never_hold_the_secret() {
        let world = World::new();
        world.grant("github", CredentialKind::Token, "ghp_REAL");
        let grants: Vec<String> = vec!["github".into()];
        let a = grants_for_run(&world.store, &world.registry, &grants, "run-a", now()).unwrap();
        let b = grants_for_run(&world.store, &world.registry, &grants, "run-b", now()).unwrap();
        assert_ne!(env(&a, "GH_TOKEN"), env(&b, "GH_TOKEN"));
        for (_, value) in a.env.iter().chain(&b.env) {
            assert!(!value.contains("REAL"), "{value}");
        }
        assert!(!format!("{a:?}").contains("REAL"));
    }

    #[test]
    fn repeated_grants_and_aliases_count_once() {
        let world = World::new();
        world.grant("github", CredentialKind::Token, "ghp_REAL");
        let grants = world.run(&["github", "gh", "github"]).unwrap();
        assert_eq!(grants.rules.len(), 2);
        assert_eq!(grants.env.len(), 3);
        // Each grant as written knows its variables, aliases too.
        let names: Vec<&str> = grants
            .env_by_grant
            .iter()
            .map(|(g, _)| g.as_str())
            .collect();
        assert_eq!(names, ["github", "gh", "github"]);
        assert!(
            grants
                .env_by_grant
                .iter()
                .all(|(_, env)| *env == grants.env)
        );
    }

    #[test]
    fn missing_credential_says_run_moat_grant() {
        let world = World::new();
        let err = world.run(&["github"]).unwrap_err();
        assert_eq!(err.to_string(), "`github` is not granted");
        assert_eq!(err.hint().unwrap(), "run `moat grant github`");
        let err = world.run(&["gl"]).unwrap_err();
        assert_eq!(err.to_string(), "`gitlab` is not granted");
    }

    #[test]
    fn unknown_and_ssh_grants() {
        let world = World::new();
        let err = world.run(&["nope"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown provider `nope`");
        assert!(err.hint().unwrap().contains("moat grant providers"));
        let err = world.run(&["ssh:github.com"]).unwrap_err();
        assert_eq!(err.to_string(), "`ssh:github.com` is not granted");
        assert_eq!(
            err.hint().unwrap(),
            "run `moat grant ssh --host github.com`"
        );
        let err = world.run(&["ssh:git.corp.test:2222"]).unwrap_err();
        assert_eq!(
            err.hint().unwrap(),
            "run `moat grant ssh --host git.corp.test:2222`"
        );
        assert!(world.run(&["ssh:h:x"]).is_err());
        SshGrantStore::in_dir(world.store.dir())
            .put(moat_credentials::SshGrant {
                host: "github.com".into(),
                port: 22,
                key: "ssh-ed25519 AAAA".into(),
                fingerprint: "SHA256:x".into(),
                comment: "me".into(),
                host_keys: vec![],
                host_keys_from: "built-in".into(),
                granted_at: now(),
            })
            .unwrap();
        let grants = world.run(&["ssh:GitHub.com", "ssh:github.com:22"]).unwrap();
        assert_eq!(grants.ssh.len(), 1);
        assert!(grants.rules.is_empty() && grants.env.is_empty());
    }

    #[test]
    fn expired_oauth_is_refused_with_the_grant_hint() {
        let world = World::new();
        world.grant(
            "anthropic",
            oauth(Some("2026-03-01T11:00:00Z")),
            "sk-ant-oat01-REAL",
        );
        let err = world.run(&["anthropic"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential expired: the `anthropic` credential expired at 2026-03-01T11:00:00Z"
        );
        assert_eq!(err.hint().unwrap(), "run `moat grant anthropic` again");
    }

    #[test]
    fn oauth_expiring_within_a_day_is_a_warning() {
        let world = World::new();
        world.grant(
            "anthropic",
            oauth(Some("2026-03-01T17:30:00Z")),
            "sk-ant-oat01-REAL",
        );
        let grants = world.run(&["anthropic"]).unwrap();
        assert_eq!(
            grants.warnings,
            [
                "the `anthropic` credential expires in 5h 30m (at 2026-03-01T17:30:00Z); run \
              `moat grant anthropic` again soon"
            ]
        );
    }

    #[test]
    fn undecryptable_credential_is_an_error_with_the_grant_hint() {
        let world = World::new();
        world.grant("github", CredentialKind::Token, "ghp_REAL");
        let path = world.store.path_of(&ProviderName::parse("github").unwrap());
        let mut bytes = fs_err::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs_err::write(&path, bytes).unwrap();
        let err = world.run(&["github"]).unwrap_err();
        assert!(err.to_string().starts_with("cannot decrypt"), "{err}");
        assert!(
            err.hint()
                .unwrap()
                .starts_with("run `moat grant github` again")
        );
    }

    #[test]
    fn two_grants_may_not_set_the_same_variable() {
        let world = World::new();
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("ghe.yaml"),
            "name: ghe\ndescription: GHE\ntoken_env: GHE_TOKEN\nhosts: [ghe.test]\ninject: {header: Authorization}\ncontainer_env: GH_TOKEN\n",
        )
        .unwrap();
        let registry = ProviderRegistry::load(dir.path()).unwrap();
        world.grant("github", CredentialKind::Token, "ghp_REAL");
        world.grant("ghe", CredentialKind::Header, "ghe_REAL");
        let grants: Vec<String> = vec!["github".into(), "ghe".into()];
        let err = grants_for_run(&world.store, &registry, &grants, RUN_TOKEN, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "grants `github` and `ghe` both set `GH_TOKEN` in the container"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(short_duration(Duration::from_secs(30)), "30s");
        assert_eq!(short_duration(Duration::from_secs(45 * 60)), "45m");
        assert_eq!(short_duration(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(short_duration(Duration::from_secs(3 * 3600 + 60)), "3h 1m");
    }
}
