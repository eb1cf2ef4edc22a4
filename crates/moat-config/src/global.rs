//! The global file, `$MOAT_HOME/config.yaml`: settings of this machine rather than of a
//! project (trusted CAs, connection overrides, download mirrors, network defaults,
//! credential key storage, log retention).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{ConfigErrors, Problems};
use crate::network::ConnectTo;
use crate::settings::{DebugSettings, KeyringMode, Mirrors, NetworkSection, ProxySettings};
use crate::values::{self, Invalid};
use crate::workspace::{Check, RawNetwork, choice_error};
use crate::yaml::{self, FieldNotes, StringOrList, shown};

/// Everything the global file says, checked, with defaults for what it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalConfig {
    /// The file this came from.
    pub path: PathBuf,
    /// A PEM file of extra CA certificates (absolute; it exists and holds a certificate).
    pub extra_ca_certs: Option<PathBuf>,
    pub connect_to: Vec<ConnectTo>,
    pub mirrors: Mirrors,
    /// Defaults for every workspace; a workspace's `network.policy` wins, `allow` lists add up.
    pub network: NetworkSection,
    pub keyring: KeyringMode,
    pub debug: DebugSettings,
    pub proxy: ProxySettings,
    /// Paths every workspace protects, besides moat's defaults.
    pub protect: Vec<String>,
    /// Settings the file sets that no run carries out yet (see `WorkspaceConfig`).
    pub not_yet: Vec<crate::ConfigError>,
}

/// Read and check the global file. `Ok(None)` when it does not exist: defaults apply.
pub fn load_global(path: &Path) -> Result<Option<GlobalConfig>, ConfigErrors> {
    if path.symlink_metadata().is_err() {
        return Ok(None);
    }
    let text = crate::read_config_file(path, moat_home::FileKind::GLOBAL_CONFIG)?;
    parse_global(path, &text).map(Some)
}

/// Check the text of a global file; `path` names it in errors, and relative paths in it
/// are resolved against its directory.
pub fn parse_global(path: &Path, text: &str) -> Result<GlobalConfig, ConfigErrors> {
    let raw: RawGlobal = yaml::parse(path, text, &NOTES)?;
    let mut not_yet = Vec::new();
    if raw
        .debug
        .as_ref()
        .is_some_and(|d| d.retention_days.is_some())
    {
        not_yet.push(crate::workspace::not_supported(
            path,
            "debug.retention_days",
            "moat keeps no debug logs yet",
        ));
    }
    if raw.proxy.as_ref().is_some_and(|p| p.port.is_some()) {
        not_yet.push(crate::workspace::not_supported(
            path,
            "proxy.port",
            "moat does not route to services in a run's container yet",
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut check = Check {
        path,
        workspace: base,
        problems: Problems::default(),
    };
    let extra_ca_certs = raw
        .extra_ca_certs
        .and_then(|file| check.accept(&file, |f| check_ca_file(&base.join(f))));
    let connect_to = raw
        .connect_to
        .and_then(|rules| {
            check.accept(&rules, |rules| match rules {
                StringOrList::One(text) => Ok(ConnectTo::parse_list(text)?),
                StringOrList::List(rules) => Ok(rules
                    .iter()
                    .map(|r| ConnectTo::parse(r))
                    .collect::<Result<_, _>>()?),
                StringOrList::Wrong(found) => Err(Invalid::new(format!(
                    "`connect_to` must be a string or a list of strings, not {found}"
                ))
                .with_hint("for example `connect_to: \"api.example.com:443:127.0.0.1:8443\"`")),
            })
        })
        .unwrap_or_default();
    let mirrors = mirrors(&mut check, raw.mirrors.unwrap_or_default());
    let network = check.network(raw.network.unwrap_or_default());
    let keyring = raw
        .keyring
        .and_then(|word| {
            check.accept(&word, |w| {
                KeyringMode::parse(w).ok_or_else(|| choice_error("keyring", w, KeyringMode::WORDS))
            })
        })
        .unwrap_or_default();
    let mut debug = DebugSettings::default();
    if let Some(days) = raw.debug.unwrap_or_default().retention_days
        && let Some(days) = check.accept(&days, |&d| {
            if d == 0 {
                Err(Invalid::new("`retention_days` must be at least 1")
                    .with_hint("debug logs are kept this many days, e.g. `retention_days: 14`"))
            } else {
                Ok(d)
            }
        })
    {
        debug.retention_days = days;
    }
    let mut proxy = ProxySettings::default();
    if let Some(port) = raw.proxy.unwrap_or_default().port
        && let Some(port) = check.accept(&port, |&p| {
            u16::try_from(p)
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| Invalid::new(format!("`{p}` is not a port (1 to 65535)")))
        })
    {
        proxy.port = port;
    }
    let protect = check.protect(raw.protect.unwrap_or_default());
    let config = GlobalConfig {
        path: path.to_owned(),
        extra_ca_certs,
        connect_to,
        mirrors,
        network,
        keyring,
        debug,
        proxy,
        protect,
        not_yet,
    };
    check.problems.finish(config)
}

fn mirrors(check: &mut Check<'_>, raw: RawMirrors) -> Mirrors {
    let mut url = |raw: Option<Spanned<String>>| {
        raw.and_then(|u| check.accept(&u, |u| values::check_http_url(u, false)))
    };
    Mirrors {
        debian: url(raw.debian),
        debian_security: url(raw.debian_security),
        node: url(raw.node),
        python: url(raw.python),
        go: url(raw.go),
        rust: url(raw.rust),
        npm: url(raw.npm),
        pypi: url(raw.pypi),
        github: url(raw.github),
    }
}

/// The extra CA file must exist and hold at least one PEM certificate: a wrong file would
/// otherwise only show up as TLS failures inside image builds. It is read as every
/// file someone points moat at is: a regular file, bounded, never waiting.
pub(crate) fn check_ca_file(path: &Path) -> Result<PathBuf, Invalid> {
    let resolved = fs_err::canonicalize(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            Invalid::new(format!("CA file `{}` does not exist", path.display()))
                .with_hint("point it at a PEM file of CA certificates, e.g. `/usr/local/share/ca-certificates/corp.crt`")
        } else {
            Invalid::new(format!("cannot use CA file `{}`: {error}", path.display()))
        }
    })?;
    let text = moat_home::read_bounded(&resolved, moat_home::FileKind::CA_CERTIFICATES).map_err(
        |error| {
            let invalid = Invalid::new(format!(
                "cannot use CA file `{}`: {}",
                shown(&path.display().to_string()),
                error.problem()
            ));
            match error.hint() {
                Some(hint) => invalid.with_hint(hint),
                None => invalid,
            }
        },
    )?;
    let pem = String::from_utf8_lossy(&text);
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Invalid::new(format!(
            "CA file `{}` holds no PEM certificate",
            shown(&path.display().to_string())
        ))
        .with_hint("the file must contain `-----BEGIN CERTIFICATE-----` blocks; convert DER with `openssl x509 -inform der`"));
    }
    Ok(resolved)
}

const NOTES: FieldNotes = FieldNotes {
    example,
    unsupported,
};

fn example(path: &str) -> Option<&'static str> {
    Some(match path {
        "extra_ca_certs" => "extra_ca_certs: /usr/local/share/ca-certificates/corp.crt",
        "connect_to" => "connect_to: \"api.example.com:443:127.0.0.1:8443\"",
        "mirrors" => "mirrors: {node: \"https://mirror.example/node\"}",
        p if p.starts_with("mirrors.") => "node: \"https://mirror.example/node\"",
        "network" => "network: {policy: strict, allow: [\"*.corp.example\"]}",
        "network.policy" => "policy: strict",
        "network.allow" => "allow: [\"*.corp.example\"]",
        "keyring" => "keyring: file",
        "debug" => "debug: {retention_days: 14}",
        "debug.retention_days" => "retention_days: 14",
        "proxy" => "proxy: {port: 8080}",
        "proxy.port" => "port: 8080",
        "protect" => "protect: [.envrc]",
        "protect[]" => "- .envrc",
        _ => return None,
    })
}

fn unsupported(path: &str) -> Option<&'static str> {
    Some(match path {
        "mounts" => "global `mounts` are not supported; put mounts in the workspace's `moat.yaml`",
        "grants" | "dependencies" | "env" | "name" | "command" => {
            "this belongs in the workspace's `moat.yaml` (or `agent.yaml`), not in the global file"
        }
        _ => return None,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    extra_ca_certs: Option<Spanned<String>>,
    connect_to: Option<Spanned<StringOrList>>,
    mirrors: Option<RawMirrors>,
    network: Option<RawNetwork>,
    keyring: Option<Spanned<String>>,
    debug: Option<RawDebug>,
    proxy: Option<RawProxy>,
    protect: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirrors {
    debian: Option<Spanned<String>>,
    debian_security: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    python: Option<Spanned<String>>,
    go: Option<Spanned<String>>,
    rust: Option<Spanned<String>>,
    npm: Option<Spanned<String>>,
    pypi: Option<Spanned<String>>,
    github: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDebug {
    retention_days: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    port: Option<Spanned<u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkPolicy;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// A `$MOAT_HOME` with `corp.pem` in it.
    fn home() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("corp.pem"), PEM).unwrap();
        fs_err::write(dir.path().join("not-a-cert.txt"), "hello").unwrap();
        dir
    }

    fn errors(text: &str) -> String {
        let dir = home();
        let path = dir.path().join("config.yaml");
        let errors = parse_global(&path, text).expect_err("the file should be refused");
        errors
            .iter()
            .map(|e| match e.hint() {
                Some(hint) => format!("{e}\nhint: {hint}"),
                None => e.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace(&dir.path().display().to_string(), "<home>")
    }

    #[test]
    fn every_field_parses() {
        let dir = home();
        let path = dir.path().join("config.yaml");
        let text = r#"
extra_ca_certs: corp.pem
connect_to:
  - api.anthropic.com:443:127.0.0.1:8443
  - ":80:proxy.corp:3128"
mirrors:
  debian: http://deb.corp.example/debian/
  debian_security: http://deb.corp.example/debian-security
  node: https://mirror.corp.example/node
  python: https://mirror.corp.example/python
  go: https://mirror.corp.example/go
  rust: https://mirror.corp.example/rust
  npm: https://npm.corp.example
  pypi: https://pypi.corp.example/simple
  github: https://gh.corp.example
network:
  policy: strict
  allow: ["*.corp.example"]
keyring: file
debug:
  retention_days: 3
proxy:
  port: 9090
"#;
        let config = parse_global(&path, text).unwrap();
        assert_eq!(
            config.extra_ca_certs,
            Some(fs_err::canonicalize(dir.path().join("corp.pem")).unwrap())
        );
        let rules: Vec<String> = config.connect_to.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rules,
            [
                "api.anthropic.com:443:127.0.0.1:8443",
                ":80:proxy.corp:3128"
            ]
        );
        assert_eq!(
            config.mirrors.debian.as_deref(),
            Some("http://deb.corp.example/debian")
        );
        assert_eq!(
            config.mirrors.debian_security.as_deref(),
            Some("http://deb.corp.example/debian-security")
        );
        assert_eq!(
            config.mirrors.pypi.as_deref(),
            Some("https://pypi.corp.example/simple")
        );
        assert!(config.mirrors.github.is_some() && config.mirrors.rust.is_some());
        assert_eq!(config.network.policy, Some(NetworkPolicy::Strict));
        assert_eq!(config.network.allow[0].to_string(), "*.corp.example");
        assert_eq!(config.keyring, KeyringMode::File);
        assert_eq!(config.debug.retention_days, 3);
        assert_eq!(config.proxy.port, 9090);
    }

    #[test]
    fn connect_to_may_be_one_comma_separated_string() {
        let config = parse_global(
            Path::new("config.yaml"),
            "connect_to: \"a.com:443:127.0.0.1:1, b.com:443:127.0.0.1:2\"\n",
        )
        .unwrap();
        assert_eq!(config.connect_to.len(), 2);
    }

    #[test]
    fn missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_global(&dir.path().join("config.yaml")), Ok(None));
        let empty = parse_global(Path::new("config.yaml"), "").unwrap();
        assert_eq!(empty.keyring, KeyringMode::Auto);
        assert_eq!(empty.debug.retention_days, 14);
        assert_eq!(empty.proxy.port, 8080);
        assert_eq!(empty.mirrors, Mirrors::default());
    }

    #[test]
    fn load_reads_the_file() {
        let dir = home();
        let path = dir.path().join("config.yaml");
        fs_err::write(&path, "keyring: file\n").unwrap();
        let config = load_global(&path).unwrap().unwrap();
        assert_eq!(config.keyring, KeyringMode::File);
        assert_eq!(config.path, path);
    }

    #[test]
    fn problems_are_reported_with_hints() {
        insta::assert_snapshot!(errors("mirrors:\n  nod: https://x.example\n"), @"
        <home>/config.yaml:2:3: unknown field `nod` in `mirrors`
        hint: did you mean `node`?
        ");
        insta::assert_snapshot!(errors("extra_ca_certs: missing.pem\n"), @"
        <home>/config.yaml:1:17: CA file `<home>/missing.pem` does not exist
        hint: point it at a PEM file of CA certificates, e.g. `/usr/local/share/ca-certificates/corp.crt`
        ");
        insta::assert_snapshot!(errors("extra_ca_certs: not-a-cert.txt\n"), @"
        <home>/config.yaml:1:17: CA file `<home>/not-a-cert.txt` holds no PEM certificate
        hint: the file must contain `-----BEGIN CERTIFICATE-----` blocks; convert DER with `openssl x509 -inform der`
        ");
        insta::assert_snapshot!(errors("keyring: keychain\nconnect_to: a.com:443\n"), @"
        <home>/config.yaml:1:10: unknown keyring `keychain`: expected `auto` or `file`
        hint: use `auto` or `file`
        <home>/config.yaml:2:13: invalid connect-to rule `a.com:443`: expected 4 parts separated by `:`, found 2
        hint: write `HOST1:PORT1:HOST2:PORT2`, for example `api.example.com:443:127.0.0.1:8443`
        ");
        insta::assert_snapshot!(errors("mirrors:\n  node: mirror.corp.example\ndebug:\n  retention_days: 0\nproxy:\n  port: 0\n"), @"
        <home>/config.yaml:2:9: `mirror.corp.example` is not an `http://` or `https://` URL
        hint: for example `https://example.com/path`
        <home>/config.yaml:4:19: `retention_days` must be at least 1
        hint: debug logs are kept this many days, e.g. `retention_days: 14`
        <home>/config.yaml:6:9: `0` is not a port (1 to 65535)
        ");
        insta::assert_snapshot!(errors("grants: [github]\n"), @"
        <home>/config.yaml:1:1: unknown field `grants`
        hint: this belongs in the workspace's `moat.yaml` (or `agent.yaml`), not in the global file
        ");
        insta::assert_snapshot!(errors("network:\n  policy: closed\n"), @"
        <home>/config.yaml:2:11: unknown network policy `closed`: expected `permissive` or `strict`
        hint: use `permissive` or `strict`
        ");
    }
}
