//! The rules single values must follow (env names, grants, mounts, sizes, names, URLs),
//! shared by the file checks and the command-line checks so both say the same thing.

use std::path::Path;

use crate::error::{ConfigError, SourceLocation};
use crate::yaml::shown;

/// Why a value is refused, before it is known where the value came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The problem at a place in a file.
    pub(crate) fn at(self, location: &SourceLocation) -> ConfigError {
        let error = location.error(self.message);
        match self.hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }

    /// The problem with a value from the command line or the environment; `source` names
    /// the flag or variable (`--grant`, `MOAT_CONNECT_TO`).
    pub(crate) fn for_input(self, source: &str) -> ConfigError {
        let error = ConfigError::input(format!("{source}: {}", self.message));
        match self.hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}

/// A POSIX shell variable name: letters, digits and `_`, not starting with a digit.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) fn check_env_name(name: &str) -> Result<(), Invalid> {
    if is_env_name(name) {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("`{}` is not a valid variable name", shown(name)))
                .with_hint("use letters, digits and `_`, not starting with a digit, e.g. `MY_VAR`"),
        )
    }
}

/// Values go into the container's environment, where a NUL byte cannot be represented.
/// The value itself is never shown: it may be a secret.
pub(crate) fn check_env_value(name: &str, value: &str) -> Result<(), Invalid> {
    if value.contains('\0') {
        return Err(Invalid::new(format!(
            "the value of `{name}` contains a NUL character"
        )));
    }
    Ok(())
}

/// Grant syntax: `provider` or `provider:scope`, e.g. `github`, `ssh:github.com`.
///
/// Only the shape is checked here; whether a provider exists is the credential store's
/// business (providers can be defined in files).
pub fn check_grant(grant: &str) -> Result<(), Invalid> {
    let bad = |why: String| Invalid::new(format!("invalid grant `{}`: {why}", shown(grant)));
    let (provider, scope) = match grant.split_once(':') {
        Some((provider, scope)) => (provider, Some(scope)),
        None => (grant, None),
    };
    if provider.is_empty() {
        return Err(bad("the provider name is missing".into())
            .with_hint("write a provider such as `github` or `ssh:github.com`"));
    }
    let provider_ok = provider
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !provider_ok {
        let hint = if provider.bytes().any(|b| b.is_ascii_uppercase()) {
            format!(
                "provider names are lowercase: `{}`",
                grant.to_ascii_lowercase()
            )
        } else {
            "provider names are lowercase letters, digits, `-` and `_`, e.g. `github`".into()
        };
        return Err(bad(format!("`{}` is not a provider name", shown(provider))).with_hint(hint));
    }
    match scope {
        None if provider == "ssh" => Err(bad("`ssh` needs a host".into())
            .with_hint("name the host the key is for, e.g. `ssh:github.com`")),
        None => Ok(()),
        Some("") => Err(bad("nothing follows the `:`".into())
            .with_hint(format!("write `{provider}` alone, or `{provider}:SCOPE`"))),
        Some(host) if provider == "ssh" => {
            let name = match host.rsplit_once(':') {
                Some((name, port)) => {
                    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                        return Err(bad(format!("`{}` is not a port", shown(port))).with_hint(
                            "write `ssh:HOST` or `ssh:HOST:PORT`, e.g. `ssh:github.com`",
                        ));
                    }
                    name
                }
                None => host,
            };
            crate::network::check_host_name(&name.to_ascii_lowercase()).map_err(|why| {
                bad(why).with_hint("name the host the key is for, e.g. `ssh:github.com`")
            })
        }
        Some(scope) => {
            if scope
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',')
            {
                Err(
                    bad("the scope contains a space, a comma or a control character".into())
                        .with_hint("give one grant per list entry"),
                )
            } else {
                Ok(())
            }
        }
    }
}

/// A `protect` entry: a path inside the workspace, relative, without `.` or `..` parts;
/// a trailing `/` is dropped.
pub(crate) fn check_protected_path(path: &str) -> Result<String, Invalid> {
    let trimmed = path.trim_end_matches('/');
    let plain = !trimmed.is_empty()
        && !trimmed.starts_with('/')
        && trimmed
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(trimmed.to_owned())
    } else {
        Err(Invalid::new(format!(
            "`{}` is not a path inside the workspace",
            shown(path)
        ))
        .with_hint("write it relative to the workspace, without `..`, e.g. `.vscode` or `scripts/deploy.sh`"))
    }
}

/// A run name, by the run store's own rule ([`moat_home::check_run_name`]), checked here
/// too so a bad `name:` is reported at its line.
pub(crate) fn check_run_name(name: &str) -> Result<(), Invalid> {
    check_name_as(name, "name: feature-auth")
}

/// [`check_run_name`] for `--name`: its hint shows the flag, not the file's key.
pub(crate) fn check_run_name_flag(name: &str) -> Result<(), Invalid> {
    check_name_as(name, "--name feature-auth")
}

fn check_name_as(name: &str, example: &str) -> Result<(), Invalid> {
    moat_home::check_run_name(name).map_err(|message| {
        let hint = if name.starts_with("run_") {
            "choose a name without the `run_` prefix".to_owned()
        } else {
            format!("for example `{example}`")
        };
        Invalid::new(message).with_hint(hint)
    })
}

/// A mount as written: `src:dst`, `src:dst:ro` or `src:dst:rw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountSpec<'a> {
    pub source: &'a str,
    pub target: &'a str,
    pub read_only: bool,
}

pub(crate) fn parse_mount(spec: &str) -> Result<MountSpec<'_>, Invalid> {
    let bad = |why: &str| {
        Invalid::new(format!("invalid mount `{}`: {why}", shown(spec)))
            .with_hint("write `SOURCE:TARGET` or `SOURCE:TARGET:ro`, e.g. `./data:/data:ro`")
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [source, target] => (*source, *target, false),
        [source, target, "ro"] => (*source, *target, true),
        [source, target, "rw"] => (*source, *target, false),
        [_, _, mode] => {
            return Err(Invalid::new(format!(
                "invalid mount `{}`: unknown mode `{mode}`",
                shown(spec)
            ))
            .with_hint("the mode is `ro` (read-only) or `rw` (read-write, the default)"));
        }
        [_] => return Err(bad("the target is missing")),
        _ => return Err(bad("too many `:`; paths containing `:` cannot be mounted")),
    };
    if source.is_empty() {
        return Err(bad("the source is empty"));
    }
    if source.starts_with('~') {
        return Err(Invalid::new(format!(
            "invalid mount `{}`: `~` is not expanded",
            shown(spec)
        ))
        .with_hint("write the source as an absolute path, or relative to the workspace"));
    }
    if !target.starts_with('/') {
        return Err(Invalid::new(format!(
            "invalid mount `{}`: the target `{}` is not an absolute path",
            shown(spec),
            shown(target)
        ))
        .with_hint("the target is a path inside the container, e.g. `/data`"));
    }
    if Path::new(target)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad("the target contains `..`"));
    }
    let trimmed = target.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == "/workspace" {
        return Err(Invalid::new(format!(
            "invalid mount `{}`: `{target}` cannot be a mount target",
            shown(spec)
        ))
        .with_hint("the workspace is already mounted at `/workspace`; choose another target"));
    }
    Ok(MountSpec {
        source,
        target,
        read_only,
    })
}

/// `container.memory`: a whole number of megabytes, or a whole number with a unit.
///
/// Units (case-insensitive, binary like Docker's): `m`, `mb`, `mib` for megabytes, `g`,
/// `gb`, `gib` for 1024 megabytes. At least 128 MB.
pub(crate) fn parse_memory(text: &str) -> Result<u64, Invalid> {
    let bad = || {
        Invalid::new(format!(
            "invalid memory size `{}`: expected megabytes or a size such as `512m` or `4g`",
            shown(text)
        ))
        .with_hint("write `memory: 4096` (megabytes) or `memory: 4g`")
    };
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        _ => return Err(bad()),
    };
    let megabytes = number.checked_mul(factor).ok_or_else(bad)?;
    check_memory(megabytes)?;
    Ok(megabytes)
}

pub(crate) fn check_memory(megabytes: u64) -> Result<(), Invalid> {
    if megabytes < 128 {
        return Err(Invalid::new(format!(
            "memory limit {megabytes} MB is below the minimum of 128 MB"
        ))
        .with_hint("remove `memory` for no limit, or give at least 128 (megabytes)"));
    }
    Ok(())
}

/// A name used as a key elsewhere (MCP servers, marketplaces): letters, digits, `-`, `_`.
pub(crate) fn check_simple_name(what: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("`{}` is not a valid {what} name", shown(name)))
                .with_hint("use letters, digits, `-` and `_`"),
        )
    }
}

/// A `ports` entry name: it becomes a DNS label (`<endpoint>.<run>.localhost`).
pub(crate) fn check_endpoint_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("`{}` is not a valid endpoint name", shown(name))).with_hint(
                "endpoint names become host names: lowercase letters, digits and `-`, e.g. `web`",
            ),
        )
    }
}

/// An HTTP header name (RFC 9110 token).
pub(crate) fn check_header_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("`{}` is not a valid HTTP header name", shown(name)))
                .with_hint("for example `Authorization` or `X-API-Key`"),
        )
    }
}

/// An `http://` or `https://` URL with a host; returned without a trailing `/`.
pub(crate) fn check_http_url(url: &str, https_only: bool) -> Result<String, Invalid> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| (!https_only).then(|| url.strip_prefix("http://")).flatten());
    let wanted = if https_only {
        "an `https://` URL"
    } else {
        "an `http://` or `https://` URL"
    };
    let Some(rest) = rest else {
        return Err(Invalid::new(format!("`{}` is not {wanted}", shown(url)))
            .with_hint("for example `https://example.com/path`"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(format!("`{}` is not {wanted}", shown(url)))
            .with_hint("for example `https://example.com/path`"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// `http://localhost:PORT/REST` (or `127.0.0.1`, `[::1]`): a server on the user's own
/// machine, as an MCP server's URL may name one. `None` for any other URL.
pub fn local_mcp_url(url: &str) -> Option<LocalUrl<'_>> {
    let rest = url.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    [
        ("localhost:", "127.0.0.1"),
        ("127.0.0.1:", "127.0.0.1"),
        ("[::1]:", "[::1]"),
    ]
    .iter()
    .find_map(|(prefix, connect_to)| {
        let port = authority.strip_prefix(prefix)?.parse::<u16>().ok()?;
        Some(LocalUrl {
            connect_to,
            port,
            rest,
        })
    })
}

/// What [`local_mcp_url`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalUrl<'a> {
    /// The loopback address to connect to (`127.0.0.1`, or `[::1]`).
    pub connect_to: &'static str,
    pub port: u16,
    /// The path, query and fragment, as written (`/mcp`, or empty).
    pub rest: &'a str,
}

/// A remote MCP server's URL: `https://`, or `http://` to the host's own loopback
/// (`localhost`, `127.0.0.1`, `[::1]`) with a port, a server on the user's machine.
pub(crate) fn check_mcp_url(url: &str) -> Result<String, Invalid> {
    if url.starts_with("http://") {
        let local = local_mcp_url(url).is_some_and(|local| local.port > 0);
        if !local {
            return Err(Invalid::new(format!(
                "`{}` is neither an `https://` URL nor `http://` to this machine",
                shown(url)
            ))
            .with_hint(
                "use `https://`; plain HTTP only reaches a server on this machine, \
                 e.g. `http://localhost:8080/mcp`",
            ));
        }
        return check_http_url(url, false);
    }
    check_http_url(url, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(invalid: Invalid) -> String {
        match invalid.hint {
            Some(hint) => format!("{} (hint: {hint})", invalid.message),
            None => invalid.message,
        }
    }

    #[test]
    fn env_names_follow_posix() {
        for good in ["A", "_", "my_var", "PATH2", "_X_1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", "A=B"] {
            assert!(!is_env_name(bad), "{bad}");
        }
        insta::assert_snapshot!(text(check_env_name("1FOO").unwrap_err()), @"`1FOO` is not a valid variable name (hint: use letters, digits and `_`, not starting with a digit, e.g. `MY_VAR`)");
    }

    #[test]
    fn env_values_never_appear_in_errors() {
        let error = check_env_value("TOKEN", "secret\0value").unwrap_err();
        assert!(!error.message.contains("secret"));
    }

    #[test]
    fn grants_accept_the_documented_shapes() {
        for good in [
            "github",
            "anthropic",
            "ssh:github.com",
            "ssh:git.corp.example:2222",
            "mcp-linear",
            "mcp:linear",
            "aws:role/admin",
            "npm",
        ] {
            assert_eq!(check_grant(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn bad_grants_say_why() {
        let error = |g: &str| text(check_grant(g).unwrap_err());
        insta::assert_snapshot!(error("GitHub"), @"invalid grant `GitHub`: `GitHub` is not a provider name (hint: provider names are lowercase: `github`)");
        insta::assert_snapshot!(error("ssh"), @"invalid grant `ssh`: `ssh` needs a host (hint: name the host the key is for, e.g. `ssh:github.com`)");
        insta::assert_snapshot!(error("ssh:h:22x"), @"invalid grant `ssh:h:22x`: `22x` is not a port (hint: write `ssh:HOST` or `ssh:HOST:PORT`, e.g. `ssh:github.com`)");
        insta::assert_snapshot!(error("ssh:bad host"), @"invalid grant `ssh:bad host`: `bad host` contains ` ` (hint: name the host the key is for, e.g. `ssh:github.com`)");
        insta::assert_snapshot!(error(":scope"), @"invalid grant `:scope`: the provider name is missing (hint: write a provider such as `github` or `ssh:github.com`)");
        insta::assert_snapshot!(error("github:"), @"invalid grant `github:`: nothing follows the `:` (hint: write `github` alone, or `github:SCOPE`)");
        insta::assert_snapshot!(error("github,anthropic"), @"invalid grant `github,anthropic`: `github,anthropic` is not a provider name (hint: provider names are lowercase letters, digits, `-` and `_`, e.g. `github`)");
    }

    #[test]
    fn mounts_parse_modes() {
        assert_eq!(
            parse_mount("./data:/data:ro").unwrap(),
            MountSpec {
                source: "./data",
                target: "/data",
                read_only: true
            }
        );
        assert!(!parse_mount("/a:/b:rw").unwrap().read_only);
        assert!(!parse_mount("/a:/b").unwrap().read_only);
    }

    #[test]
    fn bad_mounts_say_why() {
        let error = |m: &str| text(parse_mount(m).unwrap_err());
        insta::assert_snapshot!(error("./data"), @"invalid mount `./data`: the target is missing (hint: write `SOURCE:TARGET` or `SOURCE:TARGET:ro`, e.g. `./data:/data:ro`)");
        insta::assert_snapshot!(error("./data:data"), @"invalid mount `./data:data`: the target `data` is not an absolute path (hint: the target is a path inside the container, e.g. `/data`)");
        insta::assert_snapshot!(error("./data:/data:readonly"), @"invalid mount `./data:/data:readonly`: unknown mode `readonly` (hint: the mode is `ro` (read-only) or `rw` (read-write, the default))");
        insta::assert_snapshot!(error("~/x:/x"), @"invalid mount `~/x:/x`: `~` is not expanded (hint: write the source as an absolute path, or relative to the workspace)");
        insta::assert_snapshot!(error(":/x"), @"invalid mount `:/x`: the source is empty (hint: write `SOURCE:TARGET` or `SOURCE:TARGET:ro`, e.g. `./data:/data:ro`)");
        insta::assert_snapshot!(error("/a:/workspace"), @"invalid mount `/a:/workspace`: `/workspace` cannot be a mount target (hint: the workspace is already mounted at `/workspace`; choose another target)");
        insta::assert_snapshot!(error("/a:/x/../etc"), @"invalid mount `/a:/x/../etc`: the target contains `..` (hint: write `SOURCE:TARGET` or `SOURCE:TARGET:ro`, e.g. `./data:/data:ro`)");
        insta::assert_snapshot!(error("/a:/b:ro:x"), @"invalid mount `/a:/b:ro:x`: too many `:`; paths containing `:` cannot be mounted (hint: write `SOURCE:TARGET` or `SOURCE:TARGET:ro`, e.g. `./data:/data:ro`)");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert_eq!(parse_memory("512m"), Ok(512));
        assert_eq!(parse_memory("512MB"), Ok(512));
        assert_eq!(parse_memory("4g"), Ok(4096));
        assert_eq!(parse_memory("2 GiB"), Ok(2048));
        insta::assert_snapshot!(text(parse_memory("1.5g").unwrap_err()), @"invalid memory size `1.5g`: expected megabytes or a size such as `512m` or `4g` (hint: write `memory: 4096` (megabytes) or `memory: 4g`)");
        insta::assert_snapshot!(text(parse_memory("4t").unwrap_err()), @"invalid memory size `4t`: expected megabytes or a size such as `512m` or `4g` (hint: write `memory: 4096` (megabytes) or `memory: 4g`)");
        insta::assert_snapshot!(text(parse_memory("64m").unwrap_err()), @"memory limit 64 MB is below the minimum of 128 MB (hint: remove `memory` for no limit, or give at least 128 (megabytes))");
    }

    #[test]
    fn run_names_follow_the_run_store_rules() {
        assert_eq!(check_run_name("feature-auth"), Ok(()));
        assert!(check_run_name("run_abc").is_err());
        assert!(check_run_name("-x").is_err());
        assert!(check_run_name(&"a".repeat(65)).is_err());
        assert_eq!(
            check_run_name_flag("bad name").unwrap_err().hint.as_deref(),
            Some("for example `--name feature-auth`")
        );
    }

    #[test]
    fn urls_and_headers() {
        assert_eq!(
            check_http_url("https://mirror.example/node/", false),
            Ok("https://mirror.example/node".into())
        );
        assert!(check_http_url("http://mirror.example", true).is_err());
        assert!(check_http_url("https://", false).is_err());
        assert!(check_http_url("ftp://x", false).is_err());
        assert!(check_mcp_url("https://mcp.example/x").is_ok());
        assert_eq!(
            check_mcp_url("http://localhost:8080/mcp/").unwrap(),
            "http://localhost:8080/mcp"
        );
        assert!(check_mcp_url("http://127.0.0.1:9/").is_ok());
        assert!(check_mcp_url("http://[::1]:9/").is_ok());
        assert!(
            check_mcp_url("http://localhost/mcp").is_err(),
            "a port is needed"
        );
        assert!(check_mcp_url("http://mcp.example/x").is_err());
        assert_eq!(check_header_name("X-API-Key"), Ok(()));
        assert!(check_header_name("Bad Header").is_err());
        assert_eq!(check_endpoint_name("web"), Ok(()));
        assert!(check_endpoint_name("Web").is_err());
    }
}
