//! Header-injecting providers defined in YAML: the built-ins embedded in this crate and
//! the user's own `$MOAT_HOME/providers/*.yaml`, parsed and checked with errors that name
//! the file, line and column.
//!
//! The schema (every field but `name`, `description`, `token_env`, `hosts` and
//! `inject.header` is optional):
//!
//! ```yaml
//! name: acme                          # the grant name: lowercase letters, digits, `-`
//! description: Acme API               # shown by `moat grant providers`
//! aliases: [ac]                       # other names for the same grant
//! token_env: [ACME_TOKEN]             # host variables `moat grant acme` takes the token from
//! prompt: Acme API token              # label of the hidden prompt when none is set
//! hosts: [api.acme.com, "*.acme.dev"] # where the token is injected (strict policy allows them)
//! inject:
//!   header: Authorization             # the request header the proxy sets
//!   value: "Bearer {token}"           # default `{token}`
//! container_env: [ACME_TOKEN]         # variables that hold a placeholder in the container
//! validate:                           # `moat grant` checks the token with one GET
//!   url: https://api.acme.com/v1/me   # https, on one of `hosts`; gets the `inject` header
//!   show: user.name                   # JSON field printed as `Authenticated as: …`
//! ```
//!
//! `token_env` and `container_env` take one name or a list.

use std::path::Path;

use moat_credentials::ProviderName;
use moat_proxy::HostPattern;
use serde::Deserialize;
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

use crate::error::DefinitionError;

/// The part of a provider that only YAML providers have: how their token is injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSpec {
    pub token_env: Vec<String>,
    pub prompt: Option<String>,
    pub hosts: Vec<HostPattern>,
    /// The header name, as written (`PRIVATE-TOKEN`).
    pub header: String,
    /// The header value with `{token}` where the token goes.
    pub value_template: String,
    pub container_env: Vec<String>,
    pub validate: Option<ValidateSpec>,
}

impl HeaderSpec {
    /// The header value for `token`.
    pub fn render(&self, token: &str) -> String {
        self.value_template.replacen(TOKEN_MARK, token, 1)
    }
}

/// The request `moat grant` makes to check a YAML provider's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateSpec {
    pub url: String,
    /// A dotted path into the JSON answer (`user.login`), printed on success.
    pub show: Option<String>,
}

/// A parsed definition: its name, aliases, description and injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: ProviderName,
    pub aliases: Vec<ProviderName>,
    pub description: String,
    pub spec: HeaderSpec,
}

const TOKEN_MARK: &str = "{token}";

/// Headers the proxy or HTTP itself owns; a provider setting them would break requests
/// or the proxy's own authentication.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Variables moat sets in every container (proxy, CA bundles) or that would break it.
const RESERVED_ENV: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PATH",
    "HOME",
    "USER",
    "SHELL",
    "TERM",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    aliases: Vec<Spanned<String>>,
    token_env: Spanned<OneOrMany>,
    prompt: Option<Spanned<String>>,
    hosts: Spanned<Vec<Spanned<String>>>,
    inject: Spanned<RawInject>,
    container_env: Option<Spanned<OneOrMany>>,
    validate: Option<Spanned<RawValidate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    header: Spanned<String>,
    value: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidate {
    url: Spanned<String>,
    show: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// Parse and check one definition; `path` names it in errors.
pub fn parse_definition(path: &Path, text: &str) -> Result<Definition, DefinitionError> {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.reject_unsupported_tags = true;
    options.with_snippet = false;
    let raw: RawDefinition = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| parse_error(path, text, &e))?;
    check(path, raw)
}

fn parse_error(path: &Path, text: &str, error: &serde_saphyr::Error) -> DefinitionError {
    let error = error.without_snippet();
    let position = error
        .location()
        .map(|l| (l.line(), l.column()))
        .filter(|&(line, _)| line > 0);
    let empty = text.trim().is_empty();
    let position = position.filter(|_| !empty);
    // An alias bomb or absurd nesting: serde-saphyr's own words for these are Rust values.
    if let Some(limit) = moat_text::yaml_limit(error, text) {
        return DefinitionError {
            path: path.to_owned(),
            position,
            message: limit.message,
            hint: Some(limit.hint.to_owned()),
        };
    }
    let (message, hint) = match error {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown field `{field}`"),
            Some(format!(
                "the fields allowed here are {}",
                expected
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        _ if empty => (
            "the file is empty".to_owned(),
            Some(schema_hint().to_owned()),
        ),
        other => (
            // serde-saphyr's own message already says what was expected; the position is
            // ours to print.
            strip_position(&other.to_string()),
            Some(schema_hint().to_owned()),
        ),
    };
    DefinitionError {
        path: path.to_owned(),
        position,
        message,
        hint,
    }
}

fn schema_hint() -> &'static str {
    "a provider needs `name`, `description`, `token_env`, `hosts` and `inject.header`; see \
     `moat grant providers` for the built-in ones"
}

/// serde-saphyr ends some messages with ` at line L column C`; the error already
/// carries the position.
fn strip_position(message: &str) -> String {
    let message = message.trim();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
    .trim_end_matches('.')
    .to_owned()
}

fn at<T>(path: &Path, spanned: &Spanned<T>, message: impl Into<String>) -> DefinitionError {
    let line = spanned.referenced.line();
    DefinitionError {
        path: path.to_owned(),
        position: (line > 0).then(|| (line, spanned.referenced.column())),
        message: message.into(),
        hint: None,
    }
}

fn with_hint(mut error: DefinitionError, hint: impl Into<String>) -> DefinitionError {
    error.hint = Some(hint.into());
    error
}

fn check(path: &Path, raw: RawDefinition) -> Result<Definition, DefinitionError> {
    let name = ProviderName::parse(raw.name.value.trim()).map_err(|e| {
        with_hint(
            at(path, &raw.name, format!("`name`: {e}")),
            "use lowercase letters, digits and `-`, as in `name: acme-api`",
        )
    })?;
    if name.as_str() == "ssh" {
        return Err(at(
            path,
            &raw.name,
            "`name`: `ssh` is reserved for SSH grants",
        ));
    }
    let mut aliases = Vec::new();
    for alias in &raw.aliases {
        let parsed = ProviderName::parse(alias.value.trim())
            .map_err(|e| at(path, alias, format!("`aliases`: {e}")))?;
        if parsed == name || aliases.contains(&parsed) {
            return Err(at(
                path,
                alias,
                format!("`aliases`: `{parsed}` is listed twice"),
            ));
        }
        aliases.push(parsed);
    }
    let description = raw.description.value.trim().to_owned();
    if description.is_empty() || description.chars().any(char::is_control) {
        return Err(at(
            path,
            &raw.description,
            "`description` must be one line of text",
        ));
    }
    let token_env = env_names(path, "token_env", raw.token_env, &[])?;
    if token_env.is_empty() {
        return Err(at_none(path, "`token_env` must name at least one variable"));
    }
    let prompt = match raw.prompt {
        Some(prompt) => {
            let text = prompt.value.trim().to_owned();
            if text.is_empty() || text.chars().any(char::is_control) {
                return Err(at(path, &prompt, "`prompt` must be one line of text"));
            }
            Some(text)
        }
        None => None,
    };
    if raw.hosts.value.is_empty() {
        return Err(with_hint(
            at(path, &raw.hosts, "`hosts` must not be empty"),
            "list the API hosts the token is for, as in `hosts: [api.example.com]`",
        ));
    }
    let mut hosts = Vec::new();
    for host in &raw.hosts.value {
        let pattern = HostPattern::parse(host.value.trim()).map_err(|e| {
            let error = at(path, host, format!("`hosts`: {e}"));
            match e.hint() {
                Some(hint) => with_hint(error, hint),
                None => error,
            }
        })?;
        if !hosts.contains(&pattern) {
            hosts.push(pattern);
        }
    }
    let header = raw.inject.value.header.value.trim().to_owned();
    if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
        return Err(at(
            path,
            &raw.inject.value.header,
            format!("`inject.header`: `{header}` is not a valid header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
        return Err(at(
            path,
            &raw.inject.value.header,
            format!("`inject.header`: moat does not let a provider set `{header}`"),
        ));
    }
    let value_template = match &raw.inject.value.value {
        Some(value) => {
            check_template(&value.value).map_err(|why| {
                with_hint(
                    at(path, value, format!("`inject.value`: {why}")),
                    "write the header value with `{token}` where the token goes, as in \
                     `value: \"Bearer {token}\"`",
                )
            })?;
            value.value.clone()
        }
        None => TOKEN_MARK.to_owned(),
    };
    let container_env = match raw.container_env {
        Some(names) => env_names(path, "container_env", names, RESERVED_ENV)?,
        None => Vec::new(),
    };
    let validate = match raw.validate {
        Some(validate) => Some(check_validate(path, &validate.value, &hosts)?),
        None => None,
    };
    Ok(Definition {
        name,
        aliases,
        description,
        spec: HeaderSpec {
            token_env,
            prompt,
            hosts,
            header,
            value_template,
            container_env,
            validate,
        },
    })
}

fn at_none(path: &Path, message: &str) -> DefinitionError {
    DefinitionError {
        path: path.to_owned(),
        position: None,
        message: message.to_owned(),
        hint: None,
    }
}

fn env_names(
    path: &Path,
    field: &str,
    names: Spanned<OneOrMany>,
    reserved: &[&str],
) -> Result<Vec<String>, DefinitionError> {
    let mut out: Vec<String> = Vec::new();
    let place = names.referenced_only();
    for name in names.value.into_vec() {
        let name = name.trim().to_owned();
        if !is_env_name(&name) {
            return Err(with_hint(
                at(
                    path,
                    &place,
                    format!("`{field}`: `{name}` is not a variable name"),
                ),
                "names are letters, digits and `_`, not starting with a digit, as in `ACME_TOKEN`",
            ));
        }
        if reserved.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
            return Err(at(
                path,
                &place,
                format!("`{field}`: moat sets `{name}` itself"),
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// A `Spanned<()>` at the same place, to point errors at a field whose value was moved.
trait ReferencedOnly {
    fn referenced_only(&self) -> Spanned<()>;
}

impl<T> ReferencedOnly for Spanned<T> {
    fn referenced_only(&self) -> Spanned<()> {
        Spanned::new((), self.referenced, self.defined)
    }
}

/// Whether `name` is a POSIX environment variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_template(template: &str) -> Result<(), String> {
    if template.matches(TOKEN_MARK).count() != 1 {
        return Err("it must contain `{token}` exactly once".into());
    }
    let rest = template.replacen(TOKEN_MARK, "", 1);
    if rest.contains('{') || rest.contains('}') {
        return Err("`{token}` is the only placeholder; other braces are not allowed".into());
    }
    if template.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err("it must be printable ASCII on one line".into());
    }
    if template.trim() != template {
        return Err("it must not start or end with whitespace".into());
    }
    Ok(())
}

fn check_validate(
    path: &Path,
    raw: &RawValidate,
    hosts: &[HostPattern],
) -> Result<ValidateSpec, DefinitionError> {
    let text = raw.url.value.trim();
    let bad = |why: String| {
        with_hint(
            at(path, &raw.url, format!("`validate.url`: {why}")),
            "give an https URL on one of the provider's `hosts`, as in \
             `url: https://api.example.com/v1/me`",
        )
    };
    let url = reqwest::Url::parse(text).map_err(|e| bad(format!("`{text}` is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad(
            "only https URLs are allowed: the token is sent with it".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the URL must not hold a user name or password".into()));
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    if !hosts.iter().any(|p| p.matches(host, port)) {
        return Err(bad(format!(
            "`{host}` is not one of the provider's `hosts`, so the token may not go there"
        )));
    }
    let show = match &raw.show {
        Some(show) => {
            let field = show.value.trim();
            if field.is_empty() || field.split('.').any(|part| part.trim().is_empty()) {
                return Err(at(
                    path,
                    show,
                    "`validate.show`: give a JSON field, or a dotted path such as `user.login`",
                ));
            }
            Some(field.to_owned())
        }
        None => None,
    };
    Ok(ValidateSpec {
        url: url.to_string(),
        show,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
name: acme
description: Acme API
aliases: [ac]
token_env: [ACME_TOKEN, ACME_API_KEY]
prompt: Acme API token
hosts: [api.acme.com, \"*.acme.dev\"]
inject:
  header: Authorization
  value: \"Bearer {token}\"
container_env: ACME_TOKEN
validate:
  url: https://api.acme.com/v1/me
  show: user.name
";

    fn parse(text: &str) -> Result<Definition, DefinitionError> {
        parse_definition(Path::new("/p/acme.yaml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn an_alias_bomb_is_said_in_words() {
        let text = format!(
            "name: &a acme\ndescription: x\ntoken_env: [{}]\nhosts: [a.test]\ninject: {{header: X}}\n",
            vec!["*a"; 2000].join(", ")
        );
        let err = parse(&text).unwrap_err();
        assert!(
            err.message
                .starts_with("the file uses YAML aliases beyond moat's limit"),
            "{err}"
        );
        assert!(!err.message.contains('{'), "no Rust values: {err}");
        assert!(err.hint.unwrap().starts_with("remove the YAML aliases"));
    }

    #[test]
    fn parses_a_full_definition() {
        let def = parse(GOOD).unwrap();
        assert_eq!(def.name.as_str(), "acme");
        assert_eq!(def.aliases[0].as_str(), "ac");
        assert_eq!(def.description, "Acme API");
        assert_eq!(def.spec.token_env, ["ACME_TOKEN", "ACME_API_KEY"]);
        assert_eq!(def.spec.prompt.as_deref(), Some("Acme API token"));
        let hosts: Vec<String> = def.spec.hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["api.acme.com", "*.acme.dev"]);
        assert_eq!(def.spec.header, "Authorization");
        assert_eq!(def.spec.render("T0K"), "Bearer T0K");
        assert_eq!(def.spec.container_env, ["ACME_TOKEN"]);
        assert_eq!(
            def.spec.validate,
            Some(ValidateSpec {
                url: "https://api.acme.com/v1/me".into(),
                show: Some("user.name".into())
            })
        );
    }

    #[test]
    fn minimal_definition_defaults_to_the_bare_token() {
        let def = parse(
            "name: x\ndescription: X\ntoken_env: X_TOKEN\nhosts: [x.test]\ninject: {header: X-Key}\n",
        )
        .unwrap();
        assert_eq!(def.spec.render("abc"), "abc");
        assert!(def.spec.container_env.is_empty());
        assert!(def.spec.validate.is_none());
    }

    #[test]
    fn exact_messages_for_bad_definitions() {
        let cases: &[(&str, &str)] = &[
            (
                "name: Acme\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: X}\n",
                "/p/acme.yaml:1:7: `name`: invalid provider name `Acme`: only lowercase letters, digits and `-` are allowed",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: []\ninject: {header: X}\n",
                "/p/acme.yaml:4:8: `hosts` must not be empty",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts:\n  - a.test\n  - https://b.test/x\ninject: {header: X}\n",
                "/p/acme.yaml:6:5: `hosts`: invalid host pattern `https://b.test/x`: it is a URL, not a host",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: Host}\n",
                "/p/acme.yaml:5:18: `inject.header`: moat does not let a provider set `Host`",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: \"X Y\"}\n",
                "/p/acme.yaml:5:18: `inject.header`: `X Y` is not a valid header name",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject:\n  header: X\n  value: Bearer\n",
                "/p/acme.yaml:7:10: `inject.value`: it must contain `{token}` exactly once",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject:\n  header: X\n  value: \"{token} {user}\"\n",
                "/p/acme.yaml:7:10: `inject.value`: `{token}` is the only placeholder; other braces are not allowed",
            ),
            (
                "name: a\ndescription: A\ntoken_env: 1BAD\nhosts: [a.test]\ninject: {header: X}\n",
                "/p/acme.yaml:3:12: `token_env`: `1BAD` is not a variable name",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: X}\ncontainer_env: [HTTPS_PROXY]\n",
                "/p/acme.yaml:6:16: `container_env`: moat sets `HTTPS_PROXY` itself",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: X}\nvalidate: {url: \"https://evil.test/collect\"}\n",
                "/p/acme.yaml:6:17: `validate.url`: `evil.test` is not one of the provider's `hosts`, so the token may not go there",
            ),
            (
                "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: X}\nvalidate: {url: \"http://a.test/me\"}\n",
                "/p/acme.yaml:6:17: `validate.url`: only https URLs are allowed: the token is sent with it",
            ),
            (
                "name: ssh\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: X}\n",
                "/p/acme.yaml:1:7: `name`: `ssh` is reserved for SSH grants",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&error(text), expected, "{text}");
        }
    }

    #[test]
    fn unknown_and_missing_fields() {
        let err = parse(
            "name: a\ndescription: A\ntoken_env: A\nhosts: [a.test]\ninject: {header: X}\nheader: X\n",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "/p/acme.yaml:6:1: unknown field `header`");
        assert!(err.hint.unwrap().contains("`inject`"));

        let err = parse("name: a\ndescription: A\n").unwrap_err();
        assert!(err.to_string().starts_with("/p/acme.yaml"), "{err}");
        assert!(err.to_string().contains("token_env"), "{err}");
        assert!(err.hint.unwrap().contains("`inject.header`"));

        let err = parse("").unwrap_err();
        assert_eq!(err.to_string(), "/p/acme.yaml: the file is empty");

        let err = parse("name: a\nname: b\n").unwrap_err();
        assert!(err.to_string().starts_with("/p/acme.yaml:2:"), "{err}");
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("GITLAB_TOKEN"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
    }
}
