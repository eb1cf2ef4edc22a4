//! Injection rules: what each grant does to the requests for its hosts.
//!
//! A rule sets, merges or removes headers, and replaces placeholder tokens (the
//! format-valid fakes the container holds) with the real value. Real values are marked
//! sensitive so HTTP/2 never puts them in a compression table and `Debug` hides them.

use std::fmt;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::ConfigError;
use crate::scrub::Needles;
use crate::secret::Secret;
use moat_hosts::HostPattern;

/// The requests a grant changes, and how.
#[derive(Clone)]
pub struct GrantRule {
    grant: String,
    hosts: Vec<HostPattern>,
    ops: Vec<HeaderOp>,
    placeholders: Vec<Placeholder>,
    /// The credentials this rule puts on the wire, blanked in the answers to its
    /// requests (see `scrub`).
    needles: Needles,
}

/// One header operation of a rule, applied in the order the rule lists them.
#[derive(Clone)]
enum HeaderOp {
    /// Replace every value of the header with this one (a credential).
    Set {
        name: HeaderName,
        value: HeaderValue,
    },
    /// Add an item to a comma-separated header unless the client already sent it;
    /// the client's items stay. The value is not a secret.
    Merge { name: HeaderName, item: String },
    /// Drop the header.
    Remove { name: HeaderName },
}

#[derive(Clone)]
struct Placeholder {
    header: HeaderName,
    placeholder: String,
    real: Secret,
}

/// What applying a rule did, for the network trace.
#[derive(Default)]
pub(crate) struct Injected {
    /// The grant, if the rule wrote anything.
    pub grant: Option<String>,
    /// Headers whose value now holds a credential; the trace shows them `[REDACTED]`.
    pub secret_headers: Vec<HeaderName>,
}

impl GrantRule {
    /// A rule for `grant` that applies to requests for any of `hosts`.
    pub fn new(grant: impl Into<String>, hosts: Vec<HostPattern>) -> Self {
        GrantRule {
            grant: grant.into(),
            hosts,
            ops: Vec::new(),
            placeholders: Vec::new(),
            needles: Needles::default(),
        }
    }

    /// The grant's name.
    pub fn grant(&self) -> &str {
        &self.grant
    }

    /// The hosts the rule applies to (and that a strict policy therefore allows).
    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    /// Set `name` to `value`, replacing what the client sent
    /// (`x-api-key: KEY`, `authorization: Bearer TOKEN`, see [`bearer`] and [`basic`]).
    pub fn set_header(mut self, name: &str, value: &Secret) -> Result<Self, ConfigError> {
        let name = self.header_name(name)?;
        let value = self.secret_value(&name, value.expose())?;
        if let Ok(text) = value.to_str() {
            self.needles.add_header_value(text);
        }
        self.ops.push(HeaderOp::Set { name, value });
        Ok(self)
    }

    /// Add `item` to the comma-separated header `name` unless it is already one of its
    /// items, keeping the client's items (`anthropic-beta: oauth-2025-04-20`). The item
    /// is not treated as a secret.
    pub fn merge_header(mut self, name: &str, item: &str) -> Result<Self, ConfigError> {
        let name = self.header_name(name)?;
        let item = item.trim();
        if item.is_empty() || item.contains(',') || HeaderValue::from_str(item).is_err() {
            return Err(ConfigError::HeaderValue {
                grant: self.grant.clone(),
                name: name.to_string(),
            });
        }
        self.ops.push(HeaderOp::Merge {
            name,
            item: item.to_owned(),
        });
        Ok(self)
    }

    /// Remove header `name` from requests.
    pub fn remove_header(mut self, name: &str) -> Result<Self, ConfigError> {
        let name = self.header_name(name)?;
        self.ops.push(HeaderOp::Remove { name });
        Ok(self)
    }

    /// Replace `placeholder` with `real` wherever it occurs in header `header`
    /// (`Authorization: Bearer PLACEHOLDER` becomes `Authorization: Bearer REAL`).
    /// Only requests for this rule's hosts are touched; a placeholder sent anywhere else
    /// goes out unchanged.
    pub fn replace_placeholder(
        mut self,
        header: &str,
        placeholder: &str,
        real: &Secret,
    ) -> Result<Self, ConfigError> {
        let header = self.header_name(header)?;
        if placeholder.is_empty() || placeholder == real.expose() {
            return Err(ConfigError::Placeholder {
                grant: self.grant.clone(),
            });
        }
        self.secret_value(&header, real.expose())?;
        if HeaderValue::from_str(placeholder).is_err() {
            return Err(ConfigError::HeaderValue {
                grant: self.grant.clone(),
                name: header.to_string(),
            });
        }
        self.needles.add_header_value(real.expose());
        self.placeholders.push(Placeholder {
            header,
            placeholder: placeholder.to_owned(),
            real: real.clone(),
        });
        Ok(self)
    }

    fn header_name(&self, name: &str) -> Result<HeaderName, ConfigError> {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConfigError::HeaderName {
            grant: self.grant.clone(),
            name: name.to_owned(),
        })
    }

    fn secret_value(&self, name: &HeaderName, value: &str) -> Result<HeaderValue, ConfigError> {
        let mut value = HeaderValue::from_str(value).map_err(|_| ConfigError::HeaderValue {
            grant: self.grant.clone(),
            name: name.to_string(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    pub(crate) fn applies_to(&self, host: &str, port: u16) -> bool {
        self.hosts.iter().any(|p| p.matches_normalized(host, port))
    }

    fn carries_placeholder(&self, headers: &HeaderMap) -> bool {
        self.placeholders.iter().any(|p| {
            headers
                .get_all(&p.header)
                .iter()
                .any(|v| contains(v.as_bytes(), p.placeholder.as_bytes()))
        })
    }

    /// Apply the rule to a request's headers.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) -> Injected {
        let mut wrote = false;
        let mut secret_headers = Vec::new();
        for p in &self.placeholders {
            let values: Vec<HeaderValue> = headers.get_all(&p.header).iter().cloned().collect();
            if !values
                .iter()
                .any(|v| contains(v.as_bytes(), p.placeholder.as_bytes()))
            {
                continue;
            }
            headers.remove(&p.header);
            for value in values {
                let replaced = match value.to_str() {
                    Ok(text) if text.contains(&p.placeholder) => {
                        let mut new =
                            HeaderValue::from_str(&text.replace(&p.placeholder, p.real.expose()))
                                // Both parts were checked to be valid header text.
                                .unwrap_or(value);
                        new.set_sensitive(true);
                        new
                    }
                    _ => value,
                };
                headers.append(p.header.clone(), replaced);
            }
            wrote = true;
            secret_headers.push(p.header.clone());
        }
        for op in &self.ops {
            match op {
                HeaderOp::Set { name, value } => {
                    headers.insert(name.clone(), value.clone());
                    wrote = true;
                    secret_headers.push(name.clone());
                }
                HeaderOp::Merge { name, item } => {
                    if merge(headers, name, item) {
                        wrote = true;
                    }
                }
                HeaderOp::Remove { name } => {
                    headers.remove(name);
                }
            }
        }
        secret_headers.dedup();
        Injected {
            grant: wrote.then(|| self.grant.clone()),
            secret_headers,
        }
    }
}

/// The rule to apply to a request for `host:port` (normalized), if any. At most one grant
/// is injected into a request: the first rule for the host that finds one of its
/// placeholders in the request, otherwise the first rule for the host with header
/// operations (a rule with placeholders only has nothing to do without one). So with
/// two grants on one host, the client picks the credential by the placeholder it sends.
pub(crate) fn select<'a>(
    rules: &'a [GrantRule],
    host: &str,
    port: u16,
    headers: &HeaderMap,
) -> Option<&'a GrantRule> {
    let mut fallback = None;
    for rule in rules.iter().filter(|r| r.applies_to(host, port)) {
        if rule.carries_placeholder(headers) {
            return Some(rule);
        }
        if !rule.ops.is_empty() {
            fallback.get_or_insert(rule);
        }
    }
    fallback
}

/// The credentials of every rule for `host:port` (normalized), to search an answer from
/// it for; `None` when no rule covers the host or none has a credential.
pub(crate) fn needles_for(rules: &[GrantRule], host: &str, port: u16) -> Option<Needles> {
    let mut covering = rules
        .iter()
        .filter(|r| r.applies_to(host, port) && !r.needles.is_empty());
    let first = covering.next()?;
    let mut needles = first.needles.clone();
    for rule in covering {
        needles.extend(&rule.needles);
    }
    Some(needles)
}

/// Returns whether the header changed.
fn merge(headers: &mut HeaderMap, name: &HeaderName, item: &str) -> bool {
    let existing: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if existing.iter().any(|v| v.eq_ignore_ascii_case(item)) {
        return false;
    }
    let mut items = existing;
    items.push(item.to_owned());
    match HeaderValue::from_str(&items.join(",")) {
        Ok(value) => {
            headers.insert(name.clone(), value);
            true
        }
        Err(_) => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `Bearer TOKEN`, for an `Authorization` header.
pub fn bearer(token: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", token.expose()))
}

/// `Basic base64(USER:PASSWORD)`, for an `Authorization` header (GitHub's git endpoints
/// want `basic("x-access-token", token)`).
pub fn basic(user: &str, password: &Secret) -> Secret {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    Secret::new(format!("Basic {encoded}"))
}

impl fmt::Debug for GrantRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|op| match op {
                HeaderOp::Set { name, .. } => format!("set {name}: [REDACTED]"),
                HeaderOp::Merge { name, item } => format!("merge {name}: {item}"),
                HeaderOp::Remove { name } => format!("remove {name}"),
            })
            .chain(
                self.placeholders
                    .iter()
                    .map(|p| format!("replace placeholder in {}: [REDACTED]", p.header)),
            )
            .collect();
        f.debug_struct("GrantRule")
            .field("grant", &self.grant)
            .field("hosts", &self.hosts)
            .field("ops", &ops)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<HostPattern> {
        list.iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn values(map: &HeaderMap, name: &str) -> Vec<String> {
        map.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn set_replaces_the_clients_value_and_marks_it_sensitive() {
        let rule = GrantRule::new("anthropic", hosts(&["api.anthropic.com"]))
            .set_header("x-api-key", &Secret::new("sk-ant-api-REAL"))
            .unwrap();
        let mut map = headers(&[("x-api-key", "sk-ant-api-PLACEHOLDER")]);
        let injected = rule.apply(&mut map);
        assert_eq!(values(&map, "x-api-key"), ["sk-ant-api-REAL"]);
        assert!(map.get("x-api-key").unwrap().is_sensitive());
        assert_eq!(injected.grant.as_deref(), Some("anthropic"));
        assert_eq!(
            injected.secret_headers,
            [HeaderName::from_static("x-api-key")]
        );
    }

    #[test]
    fn bearer_and_basic_forms() {
        let token = Secret::new("TOKEN");
        assert_eq!(bearer(&token).expose(), "Bearer TOKEN");
        // base64("x-access-token:TOKEN")
        assert_eq!(
            basic("x-access-token", &token).expose(),
            "Basic eC1hY2Nlc3MtdG9rZW46VE9LRU4="
        );
    }

    #[test]
    fn merge_adds_the_item_once_and_keeps_the_clients_items() {
        let rule = GrantRule::new("claude", hosts(&["api.anthropic.com"]))
            .merge_header("anthropic-beta", "oauth-2025-04-20")
            .unwrap();

        let mut absent = HeaderMap::new();
        rule.apply(&mut absent);
        assert_eq!(values(&absent, "anthropic-beta"), ["oauth-2025-04-20"]);

        let mut other = headers(&[("anthropic-beta", "prompt-caching-2024-07-31")]);
        let injected = rule.apply(&mut other);
        assert_eq!(
            values(&other, "anthropic-beta"),
            ["prompt-caching-2024-07-31,oauth-2025-04-20"]
        );
        assert_eq!(injected.grant.as_deref(), Some("claude"));
        assert!(
            injected.secret_headers.is_empty(),
            "merge values are not secret"
        );

        let mut present = headers(&[
            ("anthropic-beta", "a-1"),
            ("anthropic-beta", "oauth-2025-04-20, b-2"),
        ]);
        let injected = rule.apply(&mut present);
        assert_eq!(
            values(&present, "anthropic-beta"),
            ["a-1", "oauth-2025-04-20, b-2"],
            "untouched when already there"
        );
        assert_eq!(injected.grant, None);
    }

    #[test]
    fn remove_drops_the_header() {
        let rule = GrantRule::new("claude", hosts(&["api.anthropic.com"]))
            .remove_header("x-api-key")
            .unwrap()
            .set_header("authorization", &bearer(&Secret::new("oat-REAL")))
            .unwrap();
        let mut map = headers(&[("x-api-key", "k"), ("authorization", "Bearer fake")]);
        rule.apply(&mut map);
        assert!(map.get("x-api-key").is_none());
        assert_eq!(values(&map, "authorization"), ["Bearer oat-REAL"]);
    }

    #[test]
    fn placeholder_is_replaced_inside_the_header_value() {
        let rule = GrantRule::new("github", hosts(&["api.github.com"]))
            .replace_placeholder("authorization", "ghp_PLACEHOLDER", &Secret::new("ghp_REAL"))
            .unwrap();
        let mut map = headers(&[("authorization", "token ghp_PLACEHOLDER")]);
        let injected = rule.apply(&mut map);
        assert_eq!(values(&map, "authorization"), ["token ghp_REAL"]);
        assert!(map.get("authorization").unwrap().is_sensitive());
        assert_eq!(injected.grant.as_deref(), Some("github"));

        let mut without = headers(&[("authorization", "token something-else")]);
        let injected = rule.apply(&mut without);
        assert_eq!(values(&without, "authorization"), ["token something-else"]);
        assert_eq!(injected.grant, None);
    }

    #[test]
    fn rules_apply_only_to_their_hosts() {
        let rule = GrantRule::new(
            "github",
            hosts(&["api.github.com", "*.githubusercontent.com"]),
        );
        assert!(rule.applies_to("api.github.com", 443));
        assert!(rule.applies_to("raw.githubusercontent.com", 443));
        assert!(!rule.applies_to("github.com", 443));
        assert!(!rule.applies_to("api.github.com", 8443));
        let rules = [rule];
        let map = headers(&[("authorization", "token ghp_PLACEHOLDER")]);
        assert!(select(&rules, "evil.example", 443, &map).is_none());
    }

    #[test]
    fn the_placeholder_sent_picks_the_grant_on_a_shared_host() {
        let api_key = GrantRule::new("anthropic", hosts(&["api.anthropic.com"]))
            .replace_placeholder("x-api-key", "sk-ant-api03-FAKE", &Secret::new("real-key"))
            .unwrap();
        let oauth = GrantRule::new("claude", hosts(&["api.anthropic.com"]))
            .replace_placeholder(
                "authorization",
                "sk-ant-oat01-FAKE",
                &Secret::new("real-oauth"),
            )
            .unwrap();
        let rules = [api_key, oauth];
        let oauth_request = headers(&[("authorization", "Bearer sk-ant-oat01-FAKE")]);
        assert_eq!(
            select(&rules, "api.anthropic.com", 443, &oauth_request)
                .unwrap()
                .grant(),
            "claude"
        );
        let key_request = headers(&[("x-api-key", "sk-ant-api03-FAKE")]);
        assert_eq!(
            select(&rules, "api.anthropic.com", 443, &key_request)
                .unwrap()
                .grant(),
            "anthropic"
        );
        assert!(
            select(&rules, "api.anthropic.com", 443, &HeaderMap::new()).is_none(),
            "placeholder-only rules need their placeholder"
        );
        let with_ops = GrantRule::new("claude-oauth", hosts(&["api.anthropic.com"]))
            .set_header("authorization", &bearer(&Secret::new("real-oauth")))
            .unwrap();
        let rules = [rules[0].clone(), with_ops];
        assert_eq!(
            select(&rules, "api.anthropic.com", 443, &HeaderMap::new())
                .unwrap()
                .grant(),
            "claude-oauth",
            "otherwise the first rule with header operations"
        );
    }

    #[test]
    fn invalid_rules_are_refused_without_quoting_the_value() {
        let rule = || GrantRule::new("g", hosts(&["x.test"]));
        let err = rule()
            .set_header("authorization", &Secret::new("Bearer a\r\nInjected: yes"))
            .unwrap_err();
        assert!(!err.to_string().contains("Injected"), "{err}");
        assert!(matches!(err, ConfigError::HeaderValue { .. }));
        assert!(matches!(
            rule()
                .set_header("bad header", &Secret::new("v"))
                .unwrap_err(),
            ConfigError::HeaderName { .. }
        ));
        assert!(matches!(
            rule()
                .replace_placeholder("authorization", "", &Secret::new("v"))
                .unwrap_err(),
            ConfigError::Placeholder { .. }
        ));
        assert!(matches!(
            rule()
                .replace_placeholder("authorization", "same", &Secret::new("same"))
                .unwrap_err(),
            ConfigError::Placeholder { .. }
        ));
        assert!(rule().merge_header("anthropic-beta", "a,b").is_err());
    }

    #[test]
    fn debug_never_shows_values() {
        let rule = GrantRule::new("github", hosts(&["api.github.com"]))
            .set_header("authorization", &bearer(&Secret::new("ghp_REAL")))
            .unwrap()
            .replace_placeholder("authorization", "ghp_FAKE", &Secret::new("ghp_REAL"))
            .unwrap();
        let text = format!("{rule:?}");
        assert!(!text.contains("ghp_REAL"), "{text}");
        assert!(text.contains("set authorization: [REDACTED]"), "{text}");
    }
}
