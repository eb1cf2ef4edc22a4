//! The registry: the dependencies moat knows by name, how each is installed, which versions
//! it takes and what it needs. The data is a Rust table so the compiler checks its shape and
//! a test checks its consistency (sorted, unique, every requirement known).

use serde::Serialize;

use super::{DepError, Source, suggest};
use crate::mirrors::{Mirror, MirrorUse, Mirrors};

/// One named dependency of the registry.
pub(crate) struct Entry {
    pub name: &'static str,
    /// Other names accepted for it (`rg` for `ripgrep`); they resolve to `name`.
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub install: Install,
    pub versions: Versions,
    /// Registry names installed with it.
    pub requires: &'static [&'static str],
}

/// How an entry gets into the image.
pub(crate) enum Install {
    /// Debian packages, then a shell step (a compatibility link, or nothing).
    Apt {
        packages: &'static [&'static str],
        after: Option<&'static str>,
    },
    /// A language runtime from its official distribution (see `install.rs`).
    Runtime(Runtime),
    /// `npm install -g <package>`.
    NpmGlobal(&'static str),
    /// `pip install <package>` into moat's Python environment.
    Pip(&'static str),
}

/// The language runtimes, in the order their layers appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Runtime {
    Node,
    Python,
    Go,
    Rust,
}

/// Which versions an entry accepts.
pub(crate) enum Versions {
    /// The distribution's version only; a version is refused.
    Distribution,
    /// One of `list`; with `finer`, also a fuller version under one of them (`22.11.0`).
    Listed {
        list: &'static [&'static str],
        default: &'static str,
        finer: bool,
    },
    /// Any version `check` accepts, described by `rule`.
    Pattern {
        default: &'static str,
        rule: &'static str,
        check: fn(&str) -> bool,
    },
    /// Whatever the installer accepts (an npm or PyPI version); the newest when none.
    Installer,
}

impl Versions {
    pub(crate) fn default_version(&self) -> Option<&'static str> {
        match self {
            Versions::Listed { default, .. } | Versions::Pattern { default, .. } => Some(default),
            Versions::Distribution | Versions::Installer => None,
        }
    }

    /// A sentence saying what is accepted, for errors and `moat deps info`.
    pub(crate) fn rule(&self) -> String {
        match self {
            Versions::Distribution => "none: Debian's version is installed".to_owned(),
            Versions::Listed {
                list, finer: true, ..
            } => format!(
                "{}, or a full version under one of them (`{}.1.0`)",
                list.join(", "),
                list.last().copied().unwrap_or("1")
            ),
            Versions::Listed { list, .. } => list.join(", "),
            Versions::Pattern { rule, .. } => (*rule).to_owned(),
            Versions::Installer => {
                "any version the installer accepts; the newest when none is given".to_owned()
            }
        }
    }

    fn accepts(&self, version: &str) -> bool {
        match self {
            Versions::Distribution => false,
            Versions::Listed { list, finer, .. } => list.iter().any(|listed| {
                *listed == version
                    || (*finer
                        && version
                            .strip_prefix(listed)
                            .and_then(|rest| rest.strip_prefix('.'))
                            .is_some_and(|rest| is_dotted_numbers(rest, 2)))
            }),
            Versions::Pattern { check, .. } => check(version),
            Versions::Installer => true,
        }
    }
}

/// `parts` dot-separated runs of digits: `11.0` for 2.
fn is_dotted_numbers(text: &str, parts: usize) -> bool {
    let pieces: Vec<&str> = text.split('.').collect();
    pieces.len() == parts
        && pieces
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `1.N` or `1.N.P` with N at least 21: the Go releases whose archives are named `go1.N.P`.
fn is_go_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix("1.") else {
        return false;
    };
    let minor = rest.split('.').next().unwrap_or("");
    (is_dotted_numbers(rest, 1) || is_dotted_numbers(rest, 2))
        && minor.parse::<u32>().is_ok_and(|m| m >= 21)
}

/// A rustup toolchain: a channel or a `1.N[.P]` release.
fn is_rust_version(version: &str) -> bool {
    matches!(version, "stable" | "beta" | "nightly")
        || version
            .strip_prefix("1.")
            .is_some_and(|rest| is_dotted_numbers(rest, 1) || is_dotted_numbers(rest, 2))
}

/// The registry, sorted by name.
pub(crate) static ENTRIES: &[Entry] = &[
    Entry {
        name: "aws",
        aliases: &["awscli", "aws-cli"],
        description: "AWS command-line interface (`aws`)",
        install: Install::Pip("awscli"),
        versions: Versions::Installer,
        requires: &["python"],
    },
    Entry {
        name: "build-essential",
        aliases: &[],
        description: "C and C++ compilers, `make` and the C library headers",
        install: Install::Apt {
            packages: &["build-essential"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "bun",
        aliases: &[],
        description: "Bun JavaScript runtime, bundler and package manager (`bun`)",
        install: Install::NpmGlobal("bun"),
        versions: Versions::Installer,
        requires: &["node"],
    },
    Entry {
        name: "claude-code",
        aliases: &["claude"],
        description: "Anthropic's Claude Code agent (`claude`)",
        install: Install::NpmGlobal("@anthropic-ai/claude-code"),
        versions: Versions::Installer,
        requires: &["git", "node"],
    },
    Entry {
        name: "codex",
        aliases: &["codex-cli"],
        description: "OpenAI's Codex agent (`codex`)",
        install: Install::NpmGlobal("@openai/codex"),
        versions: Versions::Installer,
        requires: &["node"],
    },
    Entry {
        name: "curl",
        aliases: &[],
        description: "HTTP client (`curl`)",
        install: Install::Apt {
            packages: &["curl"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "docker",
        aliases: &["docker-cli"],
        description: "Docker command-line client (`docker`); it needs a daemon's socket to talk to",
        install: Install::Apt {
            packages: &["docker.io"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "fd",
        aliases: &["fd-find"],
        description: "Fast file finder (`fd`)",
        install: Install::Apt {
            packages: &["fd-find"],
            after: Some("ln -sf /usr/bin/fdfind /usr/local/bin/fd"),
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "gemini-cli",
        aliases: &["gemini"],
        description: "Google's Gemini CLI agent (`gemini`)",
        install: Install::NpmGlobal("@google/gemini-cli"),
        versions: Versions::Installer,
        requires: &["node"],
    },
    Entry {
        name: "gh",
        aliases: &[],
        description: "GitHub CLI (`gh`)",
        install: Install::Apt {
            packages: &["gh"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &["git"],
    },
    Entry {
        name: "git",
        aliases: &[],
        description: "Git version control, with an SSH client for SSH remotes (`git`, `ssh`)",
        install: Install::Apt {
            packages: &["git", "openssh-client"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "go",
        aliases: &["golang"],
        description: "Go toolchain (`go`, `gofmt`)",
        install: Install::Runtime(Runtime::Go),
        versions: Versions::Pattern {
            default: "1.26",
            rule: "`1.N` (the newest patch of Go 1.N) or `1.N.P`, from Go 1.21 on",
            check: is_go_version,
        },
        requires: &[],
    },
    Entry {
        name: "jq",
        aliases: &[],
        description: "JSON processor (`jq`)",
        install: Install::Apt {
            packages: &["jq"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "make",
        aliases: &[],
        description: "GNU Make (`make`)",
        install: Install::Apt {
            packages: &["make"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "node",
        aliases: &["nodejs"],
        description: "Node.js runtime with npm (`node`, `npm`, `npx`)",
        install: Install::Runtime(Runtime::Node),
        versions: Versions::Listed {
            list: &["18", "20", "22", "24"],
            default: "24",
            finer: true,
        },
        requires: &[],
    },
    Entry {
        name: "pnpm",
        aliases: &[],
        description: "pnpm package manager (`pnpm`)",
        install: Install::NpmGlobal("pnpm"),
        versions: Versions::Installer,
        requires: &["node"],
    },
    Entry {
        name: "postgresql-client",
        aliases: &["psql"],
        description: "PostgreSQL client (`psql`, `pg_dump`)",
        install: Install::Apt {
            packages: &["postgresql-client"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "python",
        aliases: &["python3"],
        description: "Python with pip, in a virtual environment on `PATH` (`python`, `python3`, `pip`)",
        install: Install::Runtime(Runtime::Python),
        versions: Versions::Listed {
            list: &["3.10", "3.11", "3.12", "3.13", "3.14"],
            default: "3.11",
            finer: false,
        },
        requires: &[],
    },
    Entry {
        name: "ripgrep",
        aliases: &["rg"],
        description: "Fast recursive search (`rg`)",
        install: Install::Apt {
            packages: &["ripgrep"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "rust",
        aliases: &["rustup", "cargo"],
        description: "Rust toolchain through rustup (`rustc`, `cargo`, `rustup`)",
        install: Install::Runtime(Runtime::Rust),
        versions: Versions::Pattern {
            default: "stable",
            rule: "`stable`, `beta`, `nightly`, `1.N` or `1.N.P`",
            check: is_rust_version,
        },
        requires: &["build-essential"],
    },
    Entry {
        name: "sqlite",
        aliases: &["sqlite3"],
        description: "SQLite shell (`sqlite3`)",
        install: Install::Apt {
            packages: &["sqlite3"],
            after: None,
        },
        versions: Versions::Distribution,
        requires: &[],
    },
    Entry {
        name: "uv",
        aliases: &[],
        description: "uv Python package and project manager (`uv`, `uvx`)",
        install: Install::Pip("uv"),
        versions: Versions::Installer,
        requires: &["python"],
    },
    Entry {
        name: "yarn",
        aliases: &[],
        description: "Yarn package manager (`yarn`)",
        install: Install::NpmGlobal("yarn"),
        versions: Versions::Installer,
        requires: &["node"],
    },
];

/// The entry called `name` or having it as an alias.
pub(crate) fn lookup(name: &str) -> Option<&'static Entry> {
    ENTRIES
        .iter()
        .find(|e| e.name == name || e.aliases.contains(&name))
}

/// The entry for a canonical name (one that [`lookup`] returned before).
pub(crate) fn entry(name: &str) -> &'static Entry {
    lookup(name).expect("registry dependencies carry a canonical registry name")
}

/// Directories under the user's home that a tool's runs mount into, made in the image
/// so that they belong to the user: Claude Code's conversation logs live in
/// `~/.claude/projects/<project>/`, mounted from the host by `moat claude`.
pub(crate) fn home_dirs(name: &str) -> &'static [&'static str] {
    match name {
        "claude-code" => &[".claude/projects"],
        _ => &[],
    }
}

/// The entry for `name`, or an error suggesting the closest names.
pub(crate) fn find(name: &str) -> Result<&'static Entry, DepError> {
    lookup(name).ok_or_else(|| {
        // Aliases are matched too, but the canonical name is what gets suggested.
        let mut suggestions: Vec<String> = Vec::new();
        for close in suggest::suggestions(name, all_names()) {
            let canonical = entry(&close).name.to_owned();
            if !suggestions.contains(&canonical) {
                suggestions.push(canonical);
            }
        }
        DepError::UnknownName {
            name: name.to_owned(),
            suggestions,
        }
    })
}

fn all_names() -> impl Iterator<Item = &'static str> {
    ENTRIES
        .iter()
        .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
}

/// Check `version` against what `entry` accepts.
pub(crate) fn check_version(entry: &Entry, version: &str) -> Result<(), DepError> {
    if matches!(entry.versions, Versions::Distribution) {
        return Err(DepError::VersionNotAccepted {
            name: entry.name.to_owned(),
            version: version.to_owned(),
        });
    }
    if entry.versions.accepts(version) {
        Ok(())
    } else {
        Err(DepError::UnsupportedVersion {
            name: entry.name.to_owned(),
            version: version.to_owned(),
            valid: entry.versions.rule(),
        })
    }
}

/// How a dependency is installed, as shown by `moat deps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallMethod {
    /// Debian packages.
    Apt,
    /// An official release archive, checksum-verified.
    Tarball,
    /// `npm install -g`.
    NpmGlobal,
    /// `pip install` into moat's Python environment.
    Pip,
    /// The project's own installer program (rustup).
    Script,
}

impl std::fmt::Display for InstallMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InstallMethod::Apt => "apt",
            InstallMethod::Tarball => "tarball",
            InstallMethod::NpmGlobal => "npm-global",
            InstallMethod::Pip => "pip",
            InstallMethod::Script => "script",
        })
    }
}

/// Everything `moat deps info` shows about one registry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub description: String,
    pub method: InstallMethod,
    /// What exactly is installed, and from where.
    pub installs: String,
    /// The version used when none is given; `None` for Debian's or the installer's newest.
    pub default_version: Option<String>,
    /// The listed versions (empty when any version, or none, is accepted).
    pub versions: Vec<String>,
    /// Which versions are accepted, in words.
    pub version_rule: String,
    /// Registry entries installed with it.
    pub requires: Vec<String>,
    /// A snippet of `moat.yaml` declaring it.
    pub example_yaml: String,
    /// The mirror settings its install downloads through, with the URLs in effect.
    pub mirrors: Vec<MirrorUse>,
}

/// What `moat deps` shows about a prefix such as `npm:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixInfo {
    /// The prefix with its colon: `npm:`.
    pub prefix: String,
    pub description: String,
    /// The command that installs such a package.
    pub installs: String,
    pub requires: Vec<String>,
    pub example_yaml: String,
    /// The mirror settings such a package downloads through (none for crates.io and Go
    /// modules, which have no mirror setting), with the URLs in effect.
    pub mirrors: Vec<MirrorUse>,
}

/// Every registry entry, sorted by name, with the download URLs of `mirrors`.
pub fn list(mirrors: &Mirrors) -> Vec<DependencyInfo> {
    ENTRIES.iter().map(|e| info(e, mirrors)).collect()
}

/// The registry entry called `name` (or aliased so), with the download URLs of `mirrors`.
pub fn describe(name: &str, mirrors: &Mirrors) -> Result<DependencyInfo, DepError> {
    find(name).map(|e| info(e, mirrors))
}

/// What Debian packages download through: the main archive, and the security archive
/// when the base image's sources name it.
fn apt_mirrors(mirrors: &Mirrors, what: &str) -> Vec<MirrorUse> {
    vec![
        mirrors.usage(Mirror::Debian, what),
        mirrors.usage(
            Mirror::DebianSecurity,
            "their security updates, when the base image's apt sources list Debian's security archive",
        ),
    ]
}

/// The prefixes that install packages from other registries.
pub fn prefixes(mirrors: &Mirrors) -> Vec<PrefixInfo> {
    [
        Source::Npm,
        Source::Pip,
        Source::Cargo,
        Source::Go,
        Source::Apt,
    ]
    .into_iter()
    .map(|source| {
        let (description, installs, example) = match source {
            Source::Npm => (
                "a package from the npm registry, scoped ones too",
                "npm install -g PACKAGE[@VERSION]",
                "npm:@scope/tool@1.2.3",
            ),
            Source::Pip => (
                "a package from PyPI, extras allowed",
                "pip install PACKAGE[==VERSION] (in moat's Python environment)",
                "pip:httpx[http2]@0.27.0",
            ),
            Source::Cargo => (
                "a crate from crates.io with a binary target",
                "cargo install --locked CRATE[@VERSION]",
                "cargo:cargo-nextest",
            ),
            Source::Go => (
                "a Go command, by module path",
                "go install MODULE@VERSION (`latest` when none; a `v` is added to bare numbers)",
                "go:golang.org/x/tools/cmd/goimports@0.30.0",
            ),
            Source::Apt | Source::Registry => (
                "a Debian package, in Debian's version",
                "apt-get install PACKAGE",
                "apt:graphviz",
            ),
        };
        PrefixInfo {
            prefix: format!("{}:", source.prefix().unwrap_or_default()),
            description: description.to_owned(),
            installs: installs.to_owned(),
            requires: source
                .required_runtime()
                .map(|r| vec![r.to_owned()])
                .unwrap_or_default(),
            example_yaml: format!("dependencies:\n  - {example}\n"),
            mirrors: match source {
                Source::Npm => vec![mirrors.usage(Mirror::Npm, "the package and its dependencies")],
                Source::Pip => {
                    vec![mirrors.usage(Mirror::Pypi, "the package and its dependencies")]
                }
                Source::Apt | Source::Registry => apt_mirrors(mirrors, "the package"),
                Source::Cargo | Source::Go => Vec::new(),
            },
        }
    })
    .collect()
}

fn info(entry: &'static Entry, mirrors: &Mirrors) -> DependencyInfo {
    let (method, installs) = match &entry.install {
        Install::Apt { packages, after } => {
            let list = packages
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let link = if after.is_some() {
                format!(" (with a `{}` link)", entry.name)
            } else {
                String::new()
            };
            (InstallMethod::Apt, format!("Debian packages {list}{link}"))
        }
        Install::Runtime(runtime) => runtime_install_text(*runtime),
        Install::NpmGlobal(package) => (
            InstallMethod::NpmGlobal,
            format!("npm package `{package}`, installed globally"),
        ),
        Install::Pip(package) => (
            InstallMethod::Pip,
            format!("PyPI package `{package}`, in moat's Python environment"),
        ),
    };
    let versions = match &entry.versions {
        Versions::Listed { list, .. } => list.iter().map(|v| (*v).to_owned()).collect(),
        _ => Vec::new(),
    };
    let example = match entry.versions.default_version() {
        Some(default) => format!("{}@{default}", entry.name),
        None => entry.name.to_owned(),
    };
    DependencyInfo {
        name: entry.name.to_owned(),
        aliases: entry.aliases.iter().map(|a| (*a).to_owned()).collect(),
        description: entry.description.to_owned(),
        method,
        installs,
        default_version: entry.versions.default_version().map(str::to_owned),
        versions,
        version_rule: entry.versions.rule(),
        requires: entry.requires.iter().map(|r| (*r).to_owned()).collect(),
        example_yaml: format!("dependencies:\n  - {example}\n"),
        mirrors: install_mirrors(&entry.install, mirrors),
    }
}

/// The mirrors an install downloads through.
fn install_mirrors(install: &Install, mirrors: &Mirrors) -> Vec<MirrorUse> {
    match install {
        Install::Apt { .. } => apt_mirrors(mirrors, "the Debian packages"),
        Install::Runtime(Runtime::Node) => vec![mirrors.usage(
            Mirror::Node,
            "the Node.js tarball and its SHASUMS256.txt; npm comes with it",
        )],
        Install::Runtime(Runtime::Python) => {
            let mut uses = vec![mirrors.usage(
                Mirror::Python,
                "python-build-standalone builds, for versions Debian's python3 is not",
            )];
            // The standalone builds are GitHub release assets: without a Python mirror of
            // their own they come from the GitHub one.
            if mirrors.python.is_none() {
                uses.push(mirrors.usage(
                    Mirror::Github,
                    "python-build-standalone's releases, while mirrors.python is unset",
                ));
            }
            uses.extend(apt_mirrors(
                mirrors,
                "Debian's python3 and python3-venv, for 3.11 on a Debian bookworm base",
            ));
            uses.push(mirrors.usage(
                Mirror::Pypi,
                "pip's index in the image, for pip: packages and pip in runs",
            ));
            uses
        }
        Install::Runtime(Runtime::Go) => {
            vec![mirrors.usage(Mirror::Go, "the Go archive and its .sha256")]
        }
        Install::Runtime(Runtime::Rust) => vec![mirrors.usage(
            Mirror::Rust,
            "rustup-init and the toolchain (rustup's dist server)",
        )],
        Install::NpmGlobal(_) => {
            vec![mirrors.usage(Mirror::Npm, "the package and its dependencies")]
        }
        Install::Pip(_) => vec![mirrors.usage(Mirror::Pypi, "the package and its dependencies")],
    }
}

fn runtime_install_text(runtime: Runtime) -> (InstallMethod, String) {
    match runtime {
        Runtime::Node => (
            InstallMethod::Tarball,
            "the official Node.js Linux tarball (newest release of the major version at build \
             time, sha256-checked) into `/usr/local`; the download base is the node mirror"
                .to_owned(),
        ),
        Runtime::Python => (
            InstallMethod::Tarball,
            "on a Debian bookworm base, Python 3.11 is Debian's `python3`; other versions are \
             python-build-standalone builds (sha256-checked) into `/opt/python`, from the python \
             mirror; pip packages go into the virtual environment `/opt/moat/venv`"
                .to_owned(),
        ),
        Runtime::Go => (
            InstallMethod::Tarball,
            "the official Go Linux archive (sha256-checked) into `/usr/local/go`, from the go mirror"
                .to_owned(),
        ),
        Runtime::Rust => (
            InstallMethod::Script,
            "rustup-init (sha256-checked) with a minimal profile into `/usr/local/rustup` and \
             `/usr/local/cargo`, from the rust mirror"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_closed() {
        let names: Vec<&str> = ENTRIES.iter().map(|e| e.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "entries must be sorted by name and unique");
        let mut every_name: Vec<&str> = all_names().collect();
        every_name.sort();
        let before = every_name.len();
        every_name.dedup();
        assert_eq!(before, every_name.len(), "an alias collides with a name");
        for entry in ENTRIES {
            for required in entry.requires {
                assert!(
                    ENTRIES.iter().any(|e| e.name == *required),
                    "{} requires unknown {required}",
                    entry.name
                );
            }
            if let Some(default) = entry.versions.default_version() {
                assert!(entry.versions.accepts(default), "{} default", entry.name);
            }
        }
    }

    #[test]
    fn the_issue_s_minimum_set_is_present() {
        for name in [
            "node",
            "python",
            "go",
            "rust",
            "git",
            "gh",
            "curl",
            "jq",
            "ripgrep",
            "fd",
            "make",
            "build-essential",
            "sqlite",
            "postgresql-client",
            "claude-code",
            "codex",
            "gemini-cli",
            "uv",
            "yarn",
            "pnpm",
            "bun",
            "aws",
            "docker",
        ] {
            assert!(lookup(name).is_some(), "{name} missing");
        }
        let node = describe("node", &Mirrors::default()).unwrap();
        assert_eq!(node.versions, ["18", "20", "22", "24"]);
        let python = describe("python", &Mirrors::default()).unwrap();
        for v in ["3.10", "3.11", "3.12", "3.13"] {
            assert!(python.versions.contains(&v.to_owned()));
        }
    }

    #[test]
    fn version_rules() {
        let node = entry("node");
        assert!(node.versions.accepts("22"));
        assert!(node.versions.accepts("22.11.0"));
        assert!(!node.versions.accepts("21"));
        assert!(!node.versions.accepts("22.11"));
        assert!(!node.versions.accepts("220.1.0"));
        let go = entry("go");
        for ok in ["1.21", "1.26", "1.26.2", "1.30"] {
            assert!(go.versions.accepts(ok), "{ok}");
        }
        for bad in ["1.20", "1", "2.0", "1.22.1.1", "latest", "1.x"] {
            assert!(!go.versions.accepts(bad), "{bad}");
        }
        let rust = entry("rust");
        for ok in ["stable", "nightly", "1.82", "1.82.0"] {
            assert!(rust.versions.accepts(ok), "{ok}");
        }
        assert!(!rust.versions.accepts("2024-01-01"));
    }

    #[test]
    fn describe_claude_code() {
        let info = describe("claude", &Mirrors::default()).unwrap();
        assert_eq!(info.name, "claude-code");
        assert_eq!(info.method, InstallMethod::NpmGlobal);
        assert_eq!(info.requires, ["git", "node"]);
        assert_eq!(
            info.installs,
            "npm package `@anthropic-ai/claude-code`, installed globally"
        );
        assert_eq!(info.example_yaml, "dependencies:\n  - claude-code\n");
        assert_eq!(info.default_version, None);
    }

    #[test]
    fn describe_node_and_fd() {
        let node = describe("node", &Mirrors::default()).unwrap();
        assert_eq!(node.default_version.as_deref(), Some("24"));
        assert_eq!(node.example_yaml, "dependencies:\n  - node@24\n");
        assert_eq!(
            node.version_rule,
            "18, 20, 22, 24, or a full version under one of them (`24.1.0`)"
        );
        let fd = describe("fd", &Mirrors::default()).unwrap();
        assert_eq!(fd.installs, "Debian packages `fd-find` (with a `fd` link)");
        assert_eq!(fd.version_rule, "none: Debian's version is installed");
    }

    #[test]
    fn describe_names_the_mirrors_in_effect() {
        let settings = |info: &DependencyInfo| {
            info.mirrors
                .iter()
                .map(|m| {
                    format!(
                        "{} {}{}",
                        m.setting,
                        m.url,
                        if m.default { " (default)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
        };
        let defaults = Mirrors::default();
        assert_eq!(
            settings(&describe("claude-code", &defaults).unwrap()),
            ["mirrors.npm https://registry.npmjs.org (default)"]
        );
        assert_eq!(
            settings(&describe("jq", &defaults).unwrap()),
            [
                "mirrors.debian http://deb.debian.org/debian (default)",
                "mirrors.debian_security http://deb.debian.org/debian-security (default)"
            ]
        );
        let corp = Mirrors {
            github: "https://gh.corp.example".into(),
            pypi: "https://pypi.corp.example/simple/".into(),
            ..Mirrors::default()
        };
        assert_eq!(
            settings(&describe("python", &corp).unwrap()),
            [
                "mirrors.python https://gh.corp.example/astral-sh/python-build-standalone/releases/download",
                "mirrors.github https://gh.corp.example",
                "mirrors.debian http://deb.debian.org/debian (default)",
                "mirrors.debian_security http://deb.debian.org/debian-security (default)",
                "mirrors.pypi https://pypi.corp.example/simple",
            ]
        );
        let python = Mirrors {
            python: Some("https://py.corp.example".into()),
            ..corp.clone()
        };
        let uses = describe("python", &python).unwrap().mirrors;
        assert!(
            uses.iter().all(|m| m.setting != "mirrors.github"),
            "{uses:?}"
        );
        assert_eq!(
            settings(&describe("uv", &corp).unwrap()),
            ["mirrors.pypi https://pypi.corp.example/simple"]
        );
        let prefixes = prefixes(&corp);
        let of = |p: &str| {
            prefixes
                .iter()
                .find(|i| i.prefix == p)
                .unwrap()
                .mirrors
                .iter()
                .map(|m| m.setting.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(of("pip:"), ["mirrors.pypi"]);
        assert_eq!(of("npm:"), ["mirrors.npm"]);
        assert_eq!(of("apt:"), ["mirrors.debian", "mirrors.debian_security"]);
        assert!(of("cargo:").is_empty() && of("go:").is_empty());
    }

    #[test]
    fn describe_unknown_suggests() {
        let err = describe("ripgrp", &Mirrors::default()).unwrap_err();
        assert_eq!(err.to_string(), "unknown dependency `ripgrp`");
        assert_eq!(
            err.hint().as_deref(),
            Some("did you mean `ripgrep`? `moat deps list` shows them all")
        );
    }

    #[test]
    fn list_serializes_to_json() {
        let json = serde_json::to_value(list(&Mirrors::default())).unwrap();
        let first = &json[0];
        assert_eq!(first["name"], "aws");
        assert_eq!(first["method"], "pip");
        assert_eq!(first["requires"][0], "python");
        let prefixes = serde_json::to_value(prefixes(&Mirrors::default())).unwrap();
        assert_eq!(prefixes[0]["prefix"], "npm:");
        assert_eq!(prefixes[0]["requires"][0], "node");
    }
}
