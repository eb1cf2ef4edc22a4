//! Validation requests: one GET that tells whether a credential works before it is
//! saved (`GET https://api.github.com/user` and so on).
//!
//! The requests trust what the proxy trusts (the system roots plus the extra CA
//! certificates) and honour `connect_to` entries, so enterprise networks and tests
//! reach the same servers the proxy would. The URL always names the real host: the TLS
//! name, the certificate check and the `Host` header stay those of the service.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use moat_credentials::{CredentialKind, Secret};
use moat_hosts::reroute;
use moat_proxy::ConnectTo;

use crate::error::ProviderError;
use crate::provider::{Provider, ProviderKind};

/// How long one validation request may take, connection included.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(20);

/// The network settings validation requests honour (`MOAT_EXTRA_CA_CERTS`,
/// `MOAT_CONNECT_TO`).
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// PEM CA certificates trusted in addition to the system roots.
    pub extra_roots_pem: Vec<u8>,
    /// Where connections for a host really go (curl's `--connect-to`).
    pub connect_to: Vec<ConnectTo>,
}

/// A credential that the service accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// Who the credential belongs to, when the service says (`octocat`).
    pub identity: Option<String>,
}

/// One validation request, without the secret's value in `Debug`.
struct Check {
    url: &'static str,
    custom_url: Option<String>,
    /// Header name and value; values may hold the secret.
    headers: Vec<(&'static str, Secret)>,
    custom_header: Option<(String, Secret)>,
    /// The JSON field to report as the identity.
    show: Option<String>,
    /// What the credential is called in "the … was rejected".
    what: String,
}

/// Whether `provider` can check a credential of `kind` with a request. Claude OAuth
/// tokens cannot be checked for free (only a paid `/v1/messages` call would tell), and
/// YAML providers without `validate:` have nothing to call.
pub fn can_validate(provider: &Provider, kind: &CredentialKind) -> bool {
    match provider.kind() {
        ProviderKind::Anthropic => !matches!(kind, CredentialKind::OAuthToken { .. }),
        ProviderKind::GitHub | ProviderKind::OpenAi => true,
        ProviderKind::Header(spec) => spec.validate.is_some(),
    }
}

/// Check `secret` with the provider's validation request: `Ok` if the service answered
/// 200, `Rejected` on 401/403, another error otherwise. A provider that cannot validate
/// (see [`can_validate`]) answers `Ok` with no identity, without a request.
pub async fn validate(
    provider: &Provider,
    kind: &CredentialKind,
    secret: &Secret,
    http: &HttpOptions,
) -> Result<Validated, ProviderError> {
    let Some(check) = check_for(provider, kind, secret) else {
        return Ok(Validated { identity: None });
    };
    let url_text = check
        .custom_url
        .clone()
        .unwrap_or_else(|| check.url.to_owned());
    let url = reqwest::Url::parse(&url_text).map_err(|e| ProviderError::Request {
        url: url_text.clone(),
        reason: e.to_string(),
    })?;
    let client = client_for(&url, http).await?;
    let mut request = client
        .get(url.clone())
        .header("user-agent", concat!("moat/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &check.headers {
        request = request.header(*name, sensitive(value)?);
    }
    if let Some((name, value)) = &check.custom_header {
        request = request.header(name.as_str(), sensitive(value)?);
    }
    let response = request.send().await.map_err(|e| ProviderError::Request {
        url: url_text.clone(),
        reason: describe(&e),
    })?;
    let status = response.status().as_u16();
    match status {
        200 => {}
        401 | 403 => {
            return Err(ProviderError::Rejected {
                provider: provider.name().to_string(),
                what: check.what,
                host: url.host_str().unwrap_or_default().to_owned(),
                status,
            });
        }
        _ => {
            return Err(ProviderError::UnexpectedStatus {
                url: url_text,
                status,
            });
        }
    }
    let identity = match &check.show {
        None => None,
        Some(field) => {
            // A body that is not JSON only costs the identity: the status said "valid".
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            lookup(&body, field)
        }
    };
    Ok(Validated { identity })
}

fn check_for(provider: &Provider, kind: &CredentialKind, secret: &Secret) -> Option<Check> {
    if !can_validate(provider, kind) {
        return None;
    }
    let bearer = || Secret::new(format!("Bearer {}", secret.expose()));
    let check = match provider.kind() {
        ProviderKind::Anthropic => Check {
            url: "https://api.anthropic.com/v1/models",
            custom_url: None,
            headers: vec![
                ("x-api-key", secret.clone()),
                ("anthropic-version", Secret::new("2023-06-01")),
            ],
            custom_header: None,
            show: None,
            what: "Anthropic API key".into(),
        },
        ProviderKind::GitHub => Check {
            url: "https://api.github.com/user",
            custom_url: None,
            headers: vec![
                ("authorization", bearer()),
                ("accept", Secret::new("application/vnd.github+json")),
            ],
            custom_header: None,
            show: Some("login".into()),
            what: "GitHub token".into(),
        },
        ProviderKind::OpenAi => Check {
            url: "https://api.openai.com/v1/models",
            custom_url: None,
            headers: vec![("authorization", bearer())],
            custom_header: None,
            show: None,
            what: "OpenAI API key".into(),
        },
        ProviderKind::Header(spec) => {
            let validate = spec.validate.as_ref()?;
            Check {
                url: "",
                custom_url: Some(validate.url.clone()),
                headers: vec![("accept", Secret::new("application/json"))],
                custom_header: Some((
                    spec.header.clone(),
                    Secret::new(spec.render(secret.expose())),
                )),
                show: validate.show.clone(),
                what: format!("`{}` token", provider.name()),
            }
        }
    };
    Some(check)
}

/// A header value marked sensitive (kept out of HTTP/2 compression tables); an invalid
/// one is reported without quoting it.
fn sensitive(value: &Secret) -> Result<reqwest::header::HeaderValue, ProviderError> {
    let mut header = reqwest::header::HeaderValue::from_str(value.expose()).map_err(|_| {
        ProviderError::HttpSetup("the credential is not a valid header value".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// A client for requests to `url`: the proxy's roots, no system proxy, and the
/// `connect_to` destination of the URL's host, if any.
async fn client_for(
    url: &reqwest::Url,
    http: &HttpOptions,
) -> Result<reqwest::Client, ProviderError> {
    let tls = moat_proxy::upstream_tls_config(&http.extra_roots_pem).map_err(|e| {
        ProviderError::HttpSetup(match e.hint() {
            Some(hint) => format!("{e} ({hint})"),
            None => e.to_string(),
        })
    })?;
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(VALIDATION_TIMEOUT)
        .connect_timeout(Duration::from_secs(10));
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(443);
    if let Some((to_host, to_port)) = reroute(&http.connect_to, &host, port) {
        let addrs = resolve(&to_host, to_port).await.map_err(|reason| ProviderError::Request {
            url: url.to_string(),
            reason: format!("`MOAT_CONNECT_TO` sends `{host}:{port}` to `{to_host}:{to_port}`, which {reason}"),
        })?;
        // reqwest keeps the resolved port when the URL has none; with an explicit port in
        // the URL, that port wins.
        builder = builder.resolve_to_addrs(&host, &addrs);
    }
    builder
        .build()
        .map_err(|e| ProviderError::HttpSetup(describe(&e)))
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot be resolved: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err("resolves to no address".into());
    }
    Ok(addrs)
}

/// reqwest's error and its causes in one line (its top-level text alone is "error
/// sending request"). Header values are never part of these messages.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("no answer within {} s", VALIDATION_TIMEOUT.as_secs())
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The string (or number) at a dotted path in a JSON value.
fn lookup(value: &serde_json::Value, path: &str) -> Option<String> {
    let mut current = value;
    for part in path.split('.') {
        current = current.get(part.trim())?;
    }
    match current {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProviderRegistry;

    #[test]
    fn lookup_follows_dotted_paths() {
        let json: serde_json::Value =
            serde_json::json!({"login": "octocat", "user": {"id": 7, "name": ""}});
        assert_eq!(lookup(&json, "login").as_deref(), Some("octocat"));
        assert_eq!(lookup(&json, "user.id").as_deref(), Some("7"));
        assert_eq!(lookup(&json, "user.name"), None);
        assert_eq!(lookup(&json, "user.missing"), None);
        assert_eq!(lookup(&json, "user"), None);
    }

    #[test]
    fn which_credentials_can_be_validated() {
        let registry = ProviderRegistry::builtin();
        let get = |name| registry.get(name).unwrap();
        let oauth = CredentialKind::OAuthToken {
            expires_at: None,
            subscription_type: None,
            scopes: vec![],
            refresh_token: None,
        };
        assert!(can_validate(get("anthropic"), &CredentialKind::ApiKey));
        assert!(!can_validate(get("anthropic"), &oauth));
        assert!(can_validate(get("github"), &CredentialKind::Token));
        assert!(can_validate(get("gitlab"), &CredentialKind::Header));
        assert!(!can_validate(get("linear"), &CredentialKind::Header));
    }

    #[test]
    fn checks_use_the_real_hosts_and_the_right_headers() {
        let registry = ProviderRegistry::builtin();
        let secret = Secret::new("SECRET");
        let github = check_for(
            registry.get("github").unwrap(),
            &CredentialKind::Token,
            &secret,
        )
        .unwrap();
        assert_eq!(github.url, "https://api.github.com/user");
        assert_eq!(github.headers[0].0, "authorization");
        assert_eq!(github.headers[0].1.expose(), "Bearer SECRET");
        let anthropic = check_for(
            registry.get("anthropic").unwrap(),
            &CredentialKind::ApiKey,
            &secret,
        )
        .unwrap();
        assert_eq!(anthropic.url, "https://api.anthropic.com/v1/models");
        assert_eq!(anthropic.headers[0].0, "x-api-key");
        assert_eq!(anthropic.headers[1].1.expose(), "2023-06-01");
        let gitlab = check_for(
            registry.get("gitlab").unwrap(),
            &CredentialKind::Header,
            &secret,
        )
        .unwrap();
        assert_eq!(
            gitlab.custom_url.as_deref(),
            Some("https://gitlab.com/api/v4/user")
        );
        let (name, value) = gitlab.custom_header.unwrap();
        assert_eq!((name.as_str(), value.expose()), ("PRIVATE-TOKEN", "SECRET"));
    }

    #[test]
    fn connect_to_reroutes_only_matching_entries() {
        let entries = ConnectTo::parse_list("api.github.com:443:127.0.0.1:8443").unwrap();
        assert_eq!(
            reroute(&entries, "api.github.com", 443),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(reroute(&entries, "api.anthropic.com", 443), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_request_error_that_never_shows_the_secret() {
        // A port nobody listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = HttpOptions {
            extra_roots_pem: Vec::new(),
            connect_to: ConnectTo::parse_list(&format!("api.github.com:443:127.0.0.1:{port}"))
                .unwrap(),
        };
        let registry = ProviderRegistry::builtin();
        let err = validate(
            registry.get("github").unwrap(),
            &CredentialKind::Token,
            &Secret::new("ghp_SHOULD_NOT_LEAK"),
            &http,
        )
        .await
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(
            text.starts_with("the validation request to `https://api.github.com/user` failed"),
            "{text}"
        );
        assert!(!text.contains("SHOULD_NOT_LEAK"), "{text}");
        assert!(err.hint().unwrap().contains("--no-validate"));
    }

    #[tokio::test]
    async fn invalid_extra_roots_are_a_setup_error() {
        let http = HttpOptions {
            extra_roots_pem: b"not a certificate".to_vec(),
            connect_to: Vec::new(),
        };
        let registry = ProviderRegistry::builtin();
        let err = validate(
            registry.get("openai").unwrap(),
            &CredentialKind::ApiKey,
            &Secret::new("sk-x"),
            &http,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot set up HTTPS for the validation request: the extra CA certificates are not valid PEM"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("MOAT_EXTRA_CA_CERTS"));
    }
}
