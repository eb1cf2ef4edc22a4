//! The dependency grammar: `name[@version]`, `npm:pkg[@v]` (scoped too), `pip:pkg[@v]`,
//! `cargo:crate[@v]`, `go:module[@v]` and `apt:pkg`.
//!
//! Names and versions are held to strict character sets: they end up in shell commands of
//! the Dockerfile (quoted there as well), and a typo is best caught here, with a hint.

use super::{DepError, Dependency, Source, registry, suggest};

const PREFIXES: [(&str, Source); 5] = [
    ("npm", Source::Npm),
    ("pip", Source::Pip),
    ("cargo", Source::Cargo),
    ("go", Source::Go),
    ("apt", Source::Apt),
];

/// Other words people write for a prefix.
const PREFIX_ALIASES: [(&str, &str); 9] = [
    ("pypi", "pip"),
    ("python", "pip"),
    ("uv", "pip"),
    ("node", "npm"),
    ("crate", "cargo"),
    ("crates", "cargo"),
    ("rust", "cargo"),
    ("golang", "go"),
    ("deb", "apt"),
];

pub(super) fn parse(text: &str) -> Result<Dependency, DepError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DepError::Empty);
    }
    let (source, rest) = match text.split_once(':') {
        None => (Source::Registry, text),
        Some((prefix, rest)) => (source_for(prefix)?, rest),
    };
    // A leading `@` is an npm scope, not a version.
    let (name, version) = match rest.rfind('@') {
        Some(at) if at > 0 => (&rest[..at], Some(&rest[at + 1..])),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(DepError::EmptyPart {
            text: text.to_owned(),
            part: "package name",
        });
    }
    if let Some(version) = version {
        if version.is_empty() {
            return Err(DepError::EmptyPart {
                text: text.to_owned(),
                part: "version",
            });
        }
        if !is_version_syntax(version) {
            return Err(DepError::InvalidVersionSyntax {
                text: text.to_owned(),
                version: version.to_owned(),
            });
        }
    }
    let name = match source {
        Source::Registry => {
            let entry = registry::find(name)?;
            if let Some(version) = version {
                registry::check_version(entry, version)?;
            }
            entry.name
        }
        Source::Apt => {
            check_name(source, name, is_apt_name, APT_RULE)?;
            if let Some(version) = version {
                return Err(DepError::VersionNotAccepted {
                    name: format!("apt:{name}"),
                    version: version.to_owned(),
                });
            }
            name
        }
        Source::Npm => check_name(source, name, is_npm_name, NPM_RULE)?,
        Source::Pip => check_name(source, name, is_pip_name, PIP_RULE)?,
        Source::Cargo => check_name(source, name, is_crate_name, CRATE_RULE)?,
        Source::Go => check_name(source, name, is_go_module, GO_RULE)?,
    };
    Ok(Dependency {
        source,
        name: name.to_owned(),
        version: version.map(str::to_owned),
    })
}

fn source_for(prefix: &str) -> Result<Source, DepError> {
    if let Some((_, source)) = PREFIXES.iter().find(|(p, _)| *p == prefix) {
        return Ok(*source);
    }
    let mut suggestions: Vec<String> = PREFIX_ALIASES
        .iter()
        .filter(|(alias, _)| alias.eq_ignore_ascii_case(prefix))
        .map(|(_, p)| format!("{p}:"))
        .collect();
    if suggestions.is_empty() {
        suggestions = suggest::suggestions(prefix, PREFIXES.iter().map(|(p, _)| *p))
            .into_iter()
            .map(|p| format!("{p}:"))
            .collect();
    }
    Err(DepError::UnknownPrefix {
        prefix: prefix.to_owned(),
        suggestions,
    })
}

fn check_name<'a>(
    source: Source,
    name: &'a str,
    valid: fn(&str) -> bool,
    rule: &'static str,
) -> Result<&'a str, DepError> {
    if valid(name) {
        Ok(name)
    } else {
        Err(DepError::InvalidName {
            noun: source.noun(),
            name: name.to_owned(),
            rule,
        })
    }
}

fn is_version_syntax(version: &str) -> bool {
    let first_ok = version
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '^' | '~' | '*'));
    first_ok
        && version.len() <= 64
        && version.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '~' | '^' | '*')
        })
}

const NPM_RULE: &str = "npm names are letters, digits, `-`, `.`, `_` and `~`, not starting with \
                        `.` or `_`, optionally under a scope as in `@scope/name`";
const PIP_RULE: &str = "PyPI names are letters, digits, `.`, `-` and `_`, starting and ending \
                        with a letter or digit, optionally with extras as in `httpx[http2]`";
const CRATE_RULE: &str = "crate names are letters, digits, `-` and `_`, starting with a letter";
const GO_RULE: &str = "a Go module path starts with a domain, as in \
                       `golang.org/x/tools/cmd/goimports`";
const APT_RULE: &str = "Debian package names are lowercase letters, digits, `+`, `-` and `.`, \
                        starting with a letter or digit";

fn is_npm_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with(['.', '_'])
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

fn is_npm_name(name: &str) -> bool {
    let bare = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, bare)) if is_npm_part(scope) => bare,
            _ => return false,
        },
        None => name,
    };
    name.len() <= 214 && is_npm_part(bare)
}

fn is_pip_name(name: &str) -> bool {
    let (base, extras) = match name.split_once('[') {
        Some((base, rest)) => match rest.strip_suffix(']') {
            Some(extras) => (base, Some(extras)),
            None => return false,
        },
        None => (name, None),
    };
    let base_ok = base.len() <= 100
        && base.starts_with(|c: char| c.is_ascii_alphanumeric())
        && base.ends_with(|c: char| c.is_ascii_alphanumeric())
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let extras_ok = extras.is_none_or(|extras| {
        extras.split(',').all(|extra| {
            !extra.is_empty()
                && extra
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        })
    });
    base_ok && extras_ok
}

fn is_crate_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn is_go_module(path: &str) -> bool {
    let mut elements = path.split('/');
    let domain_ok = elements.next().is_some_and(|d| d.contains('.'));
    domain_ok
        && path.len() <= 300
        && path.split('/').all(|element| {
            !element.is_empty()
                && element != "."
                && element != ".."
                && !element.starts_with('-')
                && element
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~'))
        })
}

fn is_apt_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (Source, String, Option<String>) {
        let d = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (d.source, d.name.clone(), d.version.clone())
    }

    /// The message and the hint, as the CLI prints them.
    fn err(text: &str) -> String {
        let e = parse(text).expect_err(text);
        format!("error: {e}\nhint: {}", e.hint().unwrap_or_default())
    }

    #[test]
    fn good_inputs() {
        let cases: &[(&str, Source, &str, Option<&str>)] = &[
            ("node", Source::Registry, "node", None),
            ("node@22", Source::Registry, "node", Some("22")),
            ("  node@22.11.0 ", Source::Registry, "node", Some("22.11.0")),
            ("python@3.12", Source::Registry, "python", Some("3.12")),
            ("rg", Source::Registry, "ripgrep", None),
            ("claude", Source::Registry, "claude-code", None),
            (
                "claude-code@2.1.0",
                Source::Registry,
                "claude-code",
                Some("2.1.0"),
            ),
            ("go@1.26.2", Source::Registry, "go", Some("1.26.2")),
            ("rust@nightly", Source::Registry, "rust", Some("nightly")),
            ("npm:left-pad", Source::Npm, "left-pad", None),
            (
                "npm:typescript@^5.4",
                Source::Npm,
                "typescript",
                Some("^5.4"),
            ),
            ("npm:@scope/pkg", Source::Npm, "@scope/pkg", None),
            (
                "npm:@scope/pkg@1.2.3",
                Source::Npm,
                "@scope/pkg",
                Some("1.2.3"),
            ),
            ("pip:six", Source::Pip, "six", None),
            ("pip:Django@5.0", Source::Pip, "Django", Some("5.0")),
            (
                "pip:httpx[http2,brotli]@0.27.0",
                Source::Pip,
                "httpx[http2,brotli]",
                Some("0.27.0"),
            ),
            (
                "cargo:cargo-nextest@0.9",
                Source::Cargo,
                "cargo-nextest",
                Some("0.9"),
            ),
            (
                "go:golang.org/x/tools/cmd/goimports@latest",
                Source::Go,
                "golang.org/x/tools/cmd/goimports",
                Some("latest"),
            ),
            ("apt:graphviz", Source::Apt, "graphviz", None),
            ("apt:libssl-dev", Source::Apt, "libssl-dev", None),
            ("apt:g++", Source::Apt, "g++", None),
        ];
        for (text, source, name, version) in cases {
            assert_eq!(
                ok(text),
                (*source, (*name).to_owned(), version.map(str::to_owned)),
                "{text}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "node@22",
            "npm:@scope/pkg@1.2.3",
            "pip:httpx[http2]",
            "go:golang.org/x/tools/cmd/goimports@v0.30.0",
            "apt:graphviz",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
        assert_eq!(parse("rg").unwrap().to_string(), "ripgrep");
    }

    #[test]
    fn error_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "error: empty dependency\nhint: remove the empty entry, or write a name such as `git` or `npm:typescript`",
            ),
            (
                "nod",
                "error: unknown dependency `nod`\nhint: did you mean `node`? `moat deps list` shows them all",
            ),
            (
                "pyhton@3.12",
                "error: unknown dependency `pyhton`\nhint: did you mean `python`? `moat deps list` shows them all",
            ),
            (
                "typescript",
                "error: unknown dependency `typescript`\nhint: `moat deps list` shows the registry; a package of another registry takes a prefix: `npm:NAME`, `pip:NAME`, `cargo:NAME`, `go:MODULE` or `apt:NAME`",
            ),
            (
                "node@21",
                "error: `node` has no version `21`\nhint: valid versions: 18, 20, 22, 24, or a full version under one of them (`24.1.0`)",
            ),
            (
                "python@3.9",
                "error: `python` has no version `3.9`\nhint: valid versions: 3.10, 3.11, 3.12, 3.13, 3.14",
            ),
            (
                "go@1.20",
                "error: `go` has no version `1.20`\nhint: valid versions: `1.N` (the newest patch of Go 1.N) or `1.N.P`, from Go 1.21 on",
            ),
            (
                "git@2.40",
                "error: `git` takes no version\nhint: moat installs Debian's `git`; write `git` without a version",
            ),
            (
                "apt:curl@7",
                "error: `apt:curl` takes no version\nhint: Debian packages come in Debian's version; drop the `@` and the version",
            ),
            (
                "node@",
                "error: `node@` has an empty version\nhint: write a version after `@`, or drop the `@` for the default",
            ),
            (
                "npm:",
                "error: `npm:` has an empty package name\nhint: write the package name after the prefix",
            ),
            (
                "node@22 ; rm -rf /",
                "error: invalid version `22 ; rm -rf /` in `node@22 ; rm -rf /`\nhint: a version is letters, digits and `.`, `-`, `_`, `+`, `~`, `^`, `*`",
            ),
            (
                "pypi:six",
                "error: unknown dependency prefix `pypi:`\nhint: did you mean `pip:`? the prefixes are `npm:`, `pip:`, `cargo:`, `go:` and `apt:`; registry names take none",
            ),
            (
                "nmp:x",
                "error: unknown dependency prefix `nmp:`\nhint: did you mean `npm:`? the prefixes are `npm:`, `pip:`, `cargo:`, `go:` and `apt:`; registry names take none",
            ),
            (
                "docker:host",
                "error: unknown dependency prefix `docker:`\nhint: the prefixes are `npm:`, `pip:`, `cargo:`, `go:` and `apt:`; registry names take none",
            ),
            (
                "npm:.hidden",
                "error: invalid npm package name `.hidden`\nhint: npm names are letters, digits, `-`, `.`, `_` and `~`, not starting with `.` or `_`, optionally under a scope as in `@scope/name`",
            ),
            (
                "npm:@scope",
                "error: invalid npm package name `@scope`\nhint: npm names are letters, digits, `-`, `.`, `_` and `~`, not starting with `.` or `_`, optionally under a scope as in `@scope/name`",
            ),
            (
                "pip:-six",
                "error: invalid PyPI package name `-six`\nhint: PyPI names are letters, digits, `.`, `-` and `_`, starting and ending with a letter or digit, optionally with extras as in `httpx[http2]`",
            ),
            (
                "cargo:1up",
                "error: invalid crate name `1up`\nhint: crate names are letters, digits, `-` and `_`, starting with a letter",
            ),
            (
                "go:goimports",
                "error: invalid Go module name `goimports`\nhint: a Go module path starts with a domain, as in `golang.org/x/tools/cmd/goimports`",
            ),
            (
                "apt:Graphviz",
                "error: invalid Debian package name `Graphviz`\nhint: Debian package names are lowercase letters, digits, `+`, `-` and `.`, starting with a letter or digit",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(err(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn shell_metacharacters_never_pass() {
        for text in [
            "npm:a$(id)",
            "npm:a;b",
            "pip:a'b",
            "cargo:a b",
            "go:example.com/a`id`",
            "apt:a|b",
            "npm:a@1'",
            "go:example.com/../x",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
