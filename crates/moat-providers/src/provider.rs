//! The providers moat knows: the three with code of their own (`anthropic`, `github`,
//! `openai`), the YAML built-ins embedded in this crate, and the user's YAML files; and
//! the registry that finds one by name or alias.

use std::path::{Path, PathBuf};

use moat_credentials::{CredentialKind, ProviderName};
use moat_proxy::HostPattern;
use serde::Serialize;

use crate::error::{DefinitionError, ProviderError};
use crate::yaml::{Definition, HeaderSpec, parse_definition};

/// The YAML providers shipped with moat, as (file name, text).
const BUILTIN_YAML: &[(&str, &str)] = &[
    ("gitlab.yaml", include_str!("builtin/gitlab.yaml")),
    (
        "brave-search.yaml",
        include_str!("builtin/brave-search.yaml"),
    ),
    ("linear.yaml", include_str!("builtin/linear.yaml")),
    ("huggingface.yaml", include_str!("builtin/huggingface.yaml")),
];

/// What a provider does with its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic: an API key (`x-api-key`) or a Claude OAuth token (`Authorization:
    /// Bearer` with the OAuth beta), on `api.anthropic.com`.
    Anthropic,
    /// GitHub: Bearer on `api.github.com`, Basic `x-access-token` on `github.com` (git).
    GitHub,
    /// OpenAI: Bearer on `api.openai.com`.
    OpenAi,
    /// A YAML provider: one header on its hosts.
    Header(HeaderSpec),
}

/// Where a provider's definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOrigin {
    Builtin,
    /// A file in the user's providers directory.
    Custom(PathBuf),
}

/// One provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    name: ProviderName,
    aliases: Vec<ProviderName>,
    description: String,
    origin: ProviderOrigin,
    kind: ProviderKind,
}

/// What `moat grant providers --json` shows of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderSummary {
    pub name: String,
    pub description: String,
    pub aliases: Vec<String>,
    /// `builtin` or `custom`.
    pub origin: &'static str,
    /// The file of a custom provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Host variables `moat grant` reads the credential from.
    pub token_env: Vec<String>,
    /// Hosts the credential is injected into.
    pub hosts: Vec<String>,
}

const ANTHROPIC_HOSTS: &[&str] = &["api.anthropic.com"];
const GITHUB_API_HOSTS: &[&str] = &["api.github.com"];
const GITHUB_GIT_HOSTS: &[&str] = &["github.com"];
const OPENAI_HOSTS: &[&str] = &["api.openai.com"];

/// Hosts a strict network policy allows for a grant beyond those its credential goes to.
///
/// * anthropic: Claude Code also talks to other Anthropic services (`statsig.anthropic.com`
///   feature flags, the console) and to `claude.ai`/`claude.com` (WebFetch safeguards,
///   `platform.claude.com` at start-up, the installer). Third-party telemetry
///   (`sentry.io`, `statsig.com`) is not included: Claude Code works without it, and an
///   allowed `sentry.io` would let any process post data to any Sentry project. Add it
///   with `network.allow` if wanted.
/// * github: `*.github.com` (uploads, codeload) and `*.githubusercontent.com` (raw files,
///   release assets, avatars).
/// * openai: `*.openai.com` and `chatgpt.com` (Codex sign-in).
const ANTHROPIC_EXTRA_HOSTS: &[&str] = &[
    "*.anthropic.com",
    "claude.ai",
    "*.claude.ai",
    "claude.com",
    "*.claude.com",
];
const GITHUB_EXTRA_HOSTS: &[&str] = &["*.github.com", "*.githubusercontent.com"];
const OPENAI_EXTRA_HOSTS: &[&str] = &["*.openai.com", "chatgpt.com"];

pub(crate) fn patterns(hosts: &[&str]) -> Vec<HostPattern> {
    hosts
        .iter()
        .map(|h| HostPattern::parse(h).expect("built-in host patterns are valid"))
        .collect()
}

fn name(text: &str) -> ProviderName {
    ProviderName::parse(text).expect("built-in provider names are valid")
}

impl Provider {
    fn anthropic() -> Self {
        Provider {
            name: ProviderName::anthropic(),
            aliases: vec![name("claude")],
            description: "Anthropic API key or Claude subscription (OAuth token)".into(),
            origin: ProviderOrigin::Builtin,
            kind: ProviderKind::Anthropic,
        }
    }

    fn github() -> Self {
        Provider {
            name: name("github"),
            aliases: vec![name("gh")],
            description: "GitHub API and git over HTTPS (token from `gh`, env or pasted)".into(),
            origin: ProviderOrigin::Builtin,
            kind: ProviderKind::GitHub,
        }
    }

    fn openai() -> Self {
        Provider {
            name: name("openai"),
            aliases: vec![name("codex")],
            description: "OpenAI API key".into(),
            origin: ProviderOrigin::Builtin,
            kind: ProviderKind::OpenAi,
        }
    }

    fn from_definition(definition: Definition, origin: ProviderOrigin) -> Self {
        Provider {
            name: definition.name,
            aliases: definition.aliases,
            description: definition.description,
            origin,
            kind: ProviderKind::Header(definition.spec),
        }
    }

    /// The grant name, which is also the credential's file name (`<name>.enc`).
    pub fn name(&self) -> &ProviderName {
        &self.name
    }

    pub fn aliases(&self) -> &[ProviderName] {
        &self.aliases
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn origin(&self) -> &ProviderOrigin {
        &self.origin
    }

    pub fn kind(&self) -> &ProviderKind {
        &self.kind
    }

    /// How people call the service in sentences: `Anthropic`, `GitHub`, `OpenAI`, or the
    /// YAML provider's name.
    pub fn display_name(&self) -> &str {
        match self.kind {
            ProviderKind::Anthropic => "Anthropic",
            ProviderKind::GitHub => "GitHub",
            ProviderKind::OpenAi => "OpenAI",
            ProviderKind::Header(_) => self.name.as_str(),
        }
    }

    /// The host variables `moat grant` takes the credential from, in order of preference.
    pub fn token_env(&self) -> Vec<&str> {
        match &self.kind {
            ProviderKind::Anthropic => vec!["ANTHROPIC_API_KEY"],
            ProviderKind::GitHub => vec!["GITHUB_TOKEN", "GH_TOKEN"],
            ProviderKind::OpenAi => vec!["OPENAI_API_KEY"],
            ProviderKind::Header(spec) => spec.token_env.iter().map(String::as_str).collect(),
        }
    }

    /// The label of the hidden prompt (`API Key`, `Token`).
    pub fn prompt(&self) -> &str {
        match &self.kind {
            ProviderKind::Anthropic | ProviderKind::OpenAi => "API Key",
            ProviderKind::GitHub => "Token",
            ProviderKind::Header(spec) => spec.prompt.as_deref().unwrap_or("Token"),
        }
    }

    /// The kind a credential entered for this provider is stored as. An Anthropic value
    /// that looks like an OAuth token (`sk-ant-oat…`) is one.
    pub fn credential_kind_for(&self, secret: &str) -> CredentialKind {
        match &self.kind {
            ProviderKind::Anthropic if is_claude_oauth_token(secret) => {
                CredentialKind::OAuthToken {
                    expires_at: None,
                    subscription_type: None,
                    scopes: Vec::new(),
                    refresh_token: None,
                }
            }
            ProviderKind::Anthropic | ProviderKind::OpenAi => CredentialKind::ApiKey,
            ProviderKind::GitHub => CredentialKind::Token,
            ProviderKind::Header(_) => CredentialKind::Header,
        }
    }

    /// The hosts the credential is injected into.
    pub fn injection_hosts(&self) -> Vec<HostPattern> {
        match &self.kind {
            ProviderKind::Anthropic => patterns(ANTHROPIC_HOSTS),
            ProviderKind::GitHub => {
                let mut hosts = patterns(GITHUB_API_HOSTS);
                hosts.extend(patterns(GITHUB_GIT_HOSTS));
                hosts
            }
            ProviderKind::OpenAi => patterns(OPENAI_HOSTS),
            ProviderKind::Header(spec) => spec.hosts.clone(),
        }
    }

    /// Every host a strict network policy allows when this provider is granted: the
    /// injection hosts and the other hosts its clients need (see the constants above).
    pub fn strict_hosts(&self) -> Vec<HostPattern> {
        let mut hosts = self.injection_hosts();
        let extra: &[&str] = match self.kind {
            ProviderKind::Anthropic => ANTHROPIC_EXTRA_HOSTS,
            ProviderKind::GitHub => GITHUB_EXTRA_HOSTS,
            ProviderKind::OpenAi => OPENAI_EXTRA_HOSTS,
            ProviderKind::Header(_) => &[],
        };
        for pattern in patterns(extra) {
            if !hosts.contains(&pattern) {
                hosts.push(pattern);
            }
        }
        hosts
    }

    pub fn summary(&self) -> ProviderSummary {
        ProviderSummary {
            name: self.name.to_string(),
            description: self.description.clone(),
            aliases: self.aliases.iter().map(ToString::to_string).collect(),
            origin: match self.origin {
                ProviderOrigin::Builtin => "builtin",
                ProviderOrigin::Custom(_) => "custom",
            },
            path: match &self.origin {
                ProviderOrigin::Builtin => None,
                ProviderOrigin::Custom(path) => Some(path.clone()),
            },
            token_env: self.token_env().into_iter().map(str::to_owned).collect(),
            hosts: self
                .injection_hosts()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// Whether an Anthropic credential value is a Claude OAuth token (`sk-ant-oat01-…`)
/// rather than an API key (`sk-ant-api03-…`).
pub fn is_claude_oauth_token(value: &str) -> bool {
    value.starts_with("sk-ant-oat")
}

/// Every provider moat knows, found by name or alias.
#[derive(Debug, Clone)]
pub struct ProviderRegistry {
    providers: Vec<Provider>,
}

impl ProviderRegistry {
    /// The built-in providers only.
    pub fn builtin() -> Self {
        let mut providers = vec![
            Provider::anthropic(),
            Provider::github(),
            Provider::openai(),
        ];
        for (file, text) in BUILTIN_YAML {
            let definition = parse_definition(Path::new(file), text)
                .unwrap_or_else(|e| panic!("built-in provider {file} is invalid: {e}"));
            providers.push(Provider::from_definition(
                definition,
                ProviderOrigin::Builtin,
            ));
        }
        ProviderRegistry { providers }
    }

    /// The built-ins plus every `*.yaml`/`*.yml` in `user_providers_dir` (usually
    /// `$MOAT_HOME/providers`; a missing directory is no providers). Any invalid file is
    /// an error naming it: a grant must never silently mean something else.
    pub fn load(user_providers_dir: &Path) -> Result<Self, ProviderError> {
        let mut registry = Self::builtin();
        let entries = match fs_err::read_dir(user_providers_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(registry),
            Err(source) => {
                return Err(ProviderError::Read {
                    path: user_providers_dir.to_owned(),
                    source,
                });
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ProviderError::Read {
                path: user_providers_dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            let is_yaml = path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if is_yaml && !hidden {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            let bytes = moat_home::read_bounded(&path, moat_home::FileKind::PROVIDER_FILE)?;
            let text = String::from_utf8(bytes).map_err(|_| DefinitionError {
                path: path.clone(),
                position: None,
                message: "the file is not valid UTF-8".into(),
                hint: Some("save it as UTF-8 text".into()),
            })?;
            let definition = parse_definition(&path, &text)?;
            registry.add_custom(definition, path)?;
        }
        Ok(registry)
    }

    fn add_custom(&mut self, definition: Definition, path: PathBuf) -> Result<(), ProviderError> {
        for name in std::iter::once(&definition.name).chain(&definition.aliases) {
            if let Some(existing) = self.get(name.as_str()) {
                let message = match existing.origin() {
                    ProviderOrigin::Builtin => format!(
                        "`{name}` is already the name of the built-in provider `{}`",
                        existing.name()
                    ),
                    ProviderOrigin::Custom(other) => {
                        format!("`{name}` is already defined in `{}`", other.display())
                    }
                };
                return Err(DefinitionError {
                    path,
                    position: None,
                    message,
                    hint: Some("give this provider another `name` (and `aliases`)".into()),
                }
                .into());
            }
        }
        self.providers.push(Provider::from_definition(
            definition,
            ProviderOrigin::Custom(path),
        ));
        Ok(())
    }

    /// The provider called `name` (or with `name` as an alias).
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|p| p.name.as_str() == name || p.aliases.iter().any(|a| a.as_str() == name))
    }

    /// Like `get`, but an unknown name is an error with a hint.
    pub fn require(&self, name: &str) -> Result<&Provider, ProviderError> {
        self.get(name)
            .ok_or_else(|| ProviderError::UnknownProvider {
                name: name.chars().take(80).collect(),
            })
    }

    /// Every provider: the built-ins first, then the user's, by file name.
    pub fn list(&self) -> &[Provider] {
        &self.providers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
        let path = dir.join(file);
        fs_err::write(&path, text).unwrap();
        path
    }

    const ACME: &str = "name: acme\ndescription: Acme\naliases: [ac]\ntoken_env: ACME_TOKEN\nhosts: [api.acme.test]\ninject: {header: X-Acme-Key}\ncontainer_env: ACME_TOKEN\n";

    #[test]
    fn a_provider_file_that_is_a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("acme.yaml"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = ProviderRegistry::load(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a named pipe (FIFO), not a regular file"),
            "{err}"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn builtins_parse_and_are_found_by_alias() {
        let registry = ProviderRegistry::builtin();
        let names: Vec<&str> = registry.list().iter().map(|p| p.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "anthropic",
                "github",
                "openai",
                "gitlab",
                "brave-search",
                "linear",
                "huggingface"
            ]
        );
        assert_eq!(registry.get("claude").unwrap().name().as_str(), "anthropic");
        assert_eq!(registry.get("gl").unwrap().name().as_str(), "gitlab");
        assert!(registry.get("nope").is_none());
        let gitlab = registry.get("gitlab").unwrap();
        let ProviderKind::Header(spec) = gitlab.kind() else {
            panic!("gitlab is a header provider")
        };
        assert_eq!(spec.header, "PRIVATE-TOKEN");
        assert_eq!(gitlab.token_env(), ["GITLAB_TOKEN", "GL_TOKEN"]);
        assert_eq!(
            gitlab.summary().hosts,
            ["gitlab.com".to_owned(), "*.gitlab.com".to_owned()]
        );
    }

    #[test]
    fn loads_user_providers_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "acme.yaml", ACME);
        write(dir.path(), "README.md", "not a provider");
        write(dir.path(), ".acme.yaml.swp", "garbage: [");
        let registry = ProviderRegistry::load(dir.path()).unwrap();
        let acme = registry.get("ac").unwrap();
        assert_eq!(acme.name().as_str(), "acme");
        assert_eq!(acme.origin(), &ProviderOrigin::Custom(path.clone()));
        let summary = acme.summary();
        assert_eq!(summary.origin, "custom");
        assert_eq!(summary.path, Some(path));
        assert_eq!(
            registry.list().len(),
            ProviderRegistry::builtin().list().len() + 1
        );
    }

    #[test]
    fn a_missing_directory_means_builtins_only() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ProviderRegistry::load(&dir.path().join("providers")).unwrap();
        assert_eq!(
            registry.list().len(),
            ProviderRegistry::builtin().list().len()
        );
    }

    #[test]
    fn a_user_provider_cannot_take_a_builtin_or_taken_name() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "mine.yaml",
            &ACME.replace("name: acme", "name: github"),
        );
        let err = ProviderRegistry::load(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: `github` is already the name of the built-in provider `github`",
                dir.path().join("mine.yaml").display()
            )
        );
        assert!(err.hint().unwrap().contains("another `name`"));

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", ACME);
        write(
            dir.path(),
            "b.yml",
            &ACME.replace("name: acme", "name: other"),
        );
        let err = ProviderRegistry::load(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: `ac` is already defined in `{}`",
                dir.path().join("b.yml").display(),
                dir.path().join("a.yaml").display()
            )
        );
    }

    #[test]
    fn an_invalid_user_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "bad.yaml", "name: bad\ndescription: x\n");
        let err = ProviderRegistry::load(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&dir.path().join("bad.yaml").display().to_string()),
            "{err}"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn strict_hosts_include_what_the_clients_need() {
        let registry = ProviderRegistry::builtin();
        let hosts = |name: &str| -> Vec<String> {
            registry
                .get(name)
                .unwrap()
                .strict_hosts()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            hosts("anthropic"),
            [
                "api.anthropic.com",
                "*.anthropic.com",
                "claude.ai",
                "*.claude.ai",
                "claude.com",
                "*.claude.com"
            ]
        );
        assert_eq!(
            hosts("github"),
            [
                "api.github.com",
                "github.com",
                "*.github.com",
                "*.githubusercontent.com"
            ]
        );
        assert_eq!(
            hosts("openai"),
            ["api.openai.com", "*.openai.com", "chatgpt.com"]
        );
        assert_eq!(hosts("gitlab"), ["gitlab.com", "*.gitlab.com"]);
    }

    #[test]
    fn anthropic_oauth_tokens_are_recognised() {
        let anthropic = ProviderRegistry::builtin()
            .get("anthropic")
            .unwrap()
            .clone();
        assert!(matches!(
            anthropic.credential_kind_for("sk-ant-oat01-abc"),
            CredentialKind::OAuthToken { .. }
        ));
        assert!(matches!(
            anthropic.credential_kind_for("sk-ant-api03-abc"),
            CredentialKind::ApiKey
        ));
    }
}
