//! Declared dependencies: what a project asks to have in its image, checked when parsed and
//! then resolved (implied dependencies added, duplicates merged, a fixed order).
//!
//! The grammar is `name[@version]` for moat's registry, and `npm:`, `pip:`, `cargo:`, `go:`
//! and `apt:` prefixes for packages of those registries. Errors carry only a message and a
//! hint: the configuration layer knows the file, line and column and puts them in front.

mod install;
mod parse;
mod registry;
mod suggest;

pub use install::PYTHON_STANDALONE_RELEASE;
pub(crate) use install::{InstallPlan, package_layers as install_package_layers};
pub use registry::{DependencyInfo, InstallMethod, PrefixInfo, describe, list, prefixes};

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Where a dependency comes from. The order of the variants is the order of resolved lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// moat's own registry (`node@22`, `git`).
    Registry,
    /// A Debian package (`apt:graphviz`).
    Apt,
    /// An npm package (`npm:typescript`).
    Npm,
    /// A PyPI package (`pip:ruff`).
    Pip,
    /// A crate with a binary (`cargo:cargo-nextest`).
    Cargo,
    /// A Go command (`go:golang.org/x/tools/cmd/goimports`).
    Go,
}

impl Source {
    /// The prefix in the grammar, without its colon; `None` for the registry.
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Source::Registry => None,
            Source::Apt => Some("apt"),
            Source::Npm => Some("npm"),
            Source::Pip => Some("pip"),
            Source::Cargo => Some("cargo"),
            Source::Go => Some("go"),
        }
    }

    /// The registry entry every package of this source needs.
    pub fn required_runtime(self) -> Option<&'static str> {
        match self {
            Source::Npm => Some("node"),
            Source::Pip => Some("python"),
            Source::Cargo => Some("rust"),
            Source::Go => Some("go"),
            Source::Registry | Source::Apt => None,
        }
    }

    /// What its names are called in messages.
    fn noun(self) -> &'static str {
        match self {
            Source::Registry => "dependency",
            Source::Apt => "Debian package",
            Source::Npm => "npm package",
            Source::Pip => "PyPI package",
            Source::Cargo => "crate",
            Source::Go => "Go module",
        }
    }
}

/// One checked dependency. Registry names are canonical (an alias such as `rg` becomes
/// `ripgrep`); build one with [`Dependency::parse`] or `str::parse`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    source: Source,
    name: String,
    version: Option<String>,
}

impl Dependency {
    /// Parse and check one entry of `dependencies:`.
    pub fn parse(text: &str) -> Result<Self, DepError> {
        parse::parse(text)
    }

    pub fn source(&self) -> Source {
        self.source
    }

    /// The registry name, package, crate or module path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version asked for, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The dependency without its version: what two entries must share to be the same one.
    fn key(&self) -> (Source, String) {
        (self.source, self.name.clone())
    }

    fn unversioned(source: Source, name: &str) -> Self {
        Dependency {
            source,
            name: name.to_owned(),
            version: None,
        }
    }

    fn display_name(&self) -> String {
        Dependency::unversioned(self.source, &self.name).to_string()
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(prefix) = self.source.prefix() {
            write!(f, "{prefix}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(version) = &self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Dependency {
    type Err = DepError;

    fn from_str(text: &str) -> Result<Self, DepError> {
        Dependency::parse(text)
    }
}

impl Serialize for Dependency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A dependency the image will have, after resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedDependency {
    pub dependency: Dependency,
    /// The version that gets installed when it is known now: the one asked for, else the
    /// registry default. `None` means Debian's version or the installer's newest.
    pub effective_version: Option<String>,
    /// The dependency that brought this one in; `None` when it was declared.
    pub implied_by: Option<String>,
}

/// The full, ordered set of dependencies of an image: what was declared plus what that
/// implies, each once, sorted by source then name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct ResolvedDependencies {
    items: Vec<ResolvedDependency>,
}

impl ResolvedDependencies {
    /// Resolve declared dependencies: merge repeats (`node` and `node@22` are `node@22`),
    /// refuse two different versions of one thing, and add what each requires.
    pub fn resolve(declared: &[Dependency]) -> Result<Self, DepError> {
        let mut chosen: BTreeMap<(Source, String), (Dependency, Option<String>)> = BTreeMap::new();
        for dependency in declared {
            match chosen.get_mut(&dependency.key()) {
                None => {
                    chosen.insert(dependency.key(), (dependency.clone(), None));
                }
                Some((existing, _)) => match (&existing.version, &dependency.version) {
                    (Some(first), Some(second)) if first != second => {
                        return Err(DepError::ConflictingVersions {
                            name: dependency.display_name(),
                            first: first.clone(),
                            second: second.clone(),
                        });
                    }
                    (None, Some(_)) => *existing = dependency.clone(),
                    _ => {}
                },
            }
        }
        // Requirements only ever add registry entries without versions, so a plain
        // repeat-until-stable loop terminates (the registry is finite).
        loop {
            let mut added = Vec::new();
            for (dependency, _) in chosen.values() {
                for required in requirements(dependency) {
                    let key = (Source::Registry, required.to_owned());
                    if !chosen.contains_key(&key) && !added.iter().any(|(k, _)| *k == key) {
                        added.push((key, dependency.to_string()));
                    }
                }
            }
            if added.is_empty() {
                break;
            }
            for ((source, name), by) in added {
                chosen.insert(
                    (source, name.clone()),
                    (Dependency::unversioned(source, &name), Some(by)),
                );
            }
        }
        let items = chosen
            .into_values()
            .map(|(dependency, implied_by)| {
                let effective_version = dependency.version.clone().or_else(|| {
                    (dependency.source == Source::Registry)
                        .then(|| registry::entry(&dependency.name).versions.default_version())
                        .flatten()
                        .map(str::to_owned)
                });
                ResolvedDependency {
                    dependency,
                    effective_version,
                    implied_by,
                }
            })
            .collect();
        Ok(ResolvedDependencies { items })
    }

    /// Parse each text and resolve them together; errors name no position (callers that
    /// know one parse each entry with [`Dependency::parse`] instead).
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Self, DepError> {
        let declared = texts
            .iter()
            .map(|t| Dependency::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::resolve(&declared)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ResolvedDependency> {
        self.items.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// The registry names `dependency` needs.
fn requirements(dependency: &Dependency) -> Vec<&'static str> {
    match dependency.source {
        Source::Registry => registry::entry(&dependency.name).requires.to_vec(),
        other => other.required_runtime().into_iter().collect(),
    }
}

/// A dependency that cannot be used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepError {
    #[error("empty dependency")]
    Empty,
    #[error("unknown dependency `{name}`")]
    UnknownName {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("unknown dependency prefix `{prefix}:`")]
    UnknownPrefix {
        prefix: String,
        suggestions: Vec<String>,
    },
    #[error("`{text}` has an empty {part}")]
    EmptyPart { text: String, part: &'static str },
    #[error("invalid {noun} name `{name}`")]
    InvalidName {
        noun: &'static str,
        name: String,
        rule: &'static str,
    },
    #[error("invalid version `{version}` in `{text}`")]
    InvalidVersionSyntax { text: String, version: String },
    #[error("`{name}` has no version `{version}`")]
    UnsupportedVersion {
        name: String,
        version: String,
        valid: String,
    },
    #[error("`{name}` takes no version")]
    VersionNotAccepted { name: String, version: String },
    #[error("`{name}` is declared with two versions, `{first}` and `{second}`")]
    ConflictingVersions {
        name: String,
        first: String,
        second: String,
    },
}

impl DepError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DepError::Empty => {
                "remove the empty entry, or write a name such as `git` or `npm:typescript`".into()
            }
            DepError::UnknownName { suggestions, .. } => match suggestions.as_slice() {
                [] => "`moat deps list` shows the registry; a package of another registry takes \
                       a prefix: `npm:NAME`, `pip:NAME`, `cargo:NAME`, `go:MODULE` or `apt:NAME`"
                    .into(),
                names => format!(
                    "did you mean {}? `moat deps list` shows them all",
                    or_list(names)
                ),
            },
            DepError::UnknownPrefix { suggestions, .. } => {
                let known = "the prefixes are `npm:`, `pip:`, `cargo:`, `go:` and `apt:`; \
                             registry names take none";
                match suggestions.as_slice() {
                    [] => known.into(),
                    names => format!("did you mean {}? {known}", or_list(names)),
                }
            }
            DepError::EmptyPart { part, .. } if *part == "version" => {
                "write a version after `@`, or drop the `@` for the default".into()
            }
            DepError::EmptyPart { .. } => "write the package name after the prefix".into(),
            DepError::InvalidName { rule, .. } => (*rule).into(),
            DepError::InvalidVersionSyntax { .. } => {
                "a version is letters, digits and `.`, `-`, `_`, `+`, `~`, `^`, `*`".into()
            }
            DepError::UnsupportedVersion { valid, .. } => format!("valid versions: {valid}"),
            DepError::VersionNotAccepted { name, .. } => {
                if registry::lookup(name).is_some() {
                    format!("moat installs Debian's `{name}`; write `{name}` without a version")
                } else {
                    "Debian packages come in Debian's version; drop the `@` and the version".into()
                }
            }
            DepError::ConflictingVersions { name, .. } => {
                format!("keep one version of `{name}`")
            }
        })
    }
}

/// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``.
fn or_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(texts: &[&str]) -> Vec<String> {
        ResolvedDependencies::parse_all(texts)
            .unwrap()
            .iter()
            .map(|r| {
                let version = r
                    .effective_version
                    .as_deref()
                    .map(|v| format!(" ={v}"))
                    .unwrap_or_default();
                let by = r
                    .implied_by
                    .as_deref()
                    .map(|b| format!(" (by {b})"))
                    .unwrap_or_default();
                format!("{}{version}{by}", r.dependency)
            })
            .collect()
    }

    #[test]
    fn claude_code_implies_node_and_git() {
        assert_eq!(
            resolved(&["claude-code"]),
            [
                "claude-code",
                "git (by claude-code)",
                "node =24 (by claude-code)"
            ]
        );
    }

    #[test]
    fn prefixes_imply_their_runtime_and_runtimes_their_tools() {
        assert_eq!(
            resolved(&["cargo:cargo-nextest", "go:golang.org/x/tools/cmd/goimports"]),
            [
                "build-essential (by rust)",
                "go =1.26 (by go:golang.org/x/tools/cmd/goimports)",
                "rust =stable (by cargo:cargo-nextest)",
                "cargo:cargo-nextest",
                "go:golang.org/x/tools/cmd/goimports",
            ]
        );
        assert_eq!(
            resolved(&["pip:six", "npm:left-pad"]),
            [
                "node =24 (by npm:left-pad)",
                "python =3.11 (by pip:six)",
                "npm:left-pad",
                "pip:six",
            ]
        );
    }

    #[test]
    fn a_declared_version_wins_over_an_implied_default() {
        assert_eq!(
            resolved(&["claude-code", "node@22"]),
            ["claude-code", "git (by claude-code)", "node@22 =22"]
        );
        assert_eq!(resolved(&["node", "node@22", "node"]), ["node@22 =22"]);
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let a = ResolvedDependencies::parse_all(&["jq", "git", "npm:b", "npm:a", "git"]).unwrap();
        let b = ResolvedDependencies::parse_all(&["npm:a", "git", "npm:b", "jq"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.iter()
                .map(|r| r.dependency.to_string())
                .collect::<Vec<_>>(),
            ["git", "jq", "node", "npm:a", "npm:b"]
        );
    }

    #[test]
    fn two_versions_of_one_thing_are_refused() {
        let err = ResolvedDependencies::parse_all(&["node@20", "node@22"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`node` is declared with two versions, `20` and `22`"
        );
        assert_eq!(err.hint().as_deref(), Some("keep one version of `node`"));
        let err = ResolvedDependencies::parse_all(&["npm:a@1", "npm:a@2"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`npm:a` is declared with two versions, `1` and `2`"
        );
    }

    #[test]
    fn serializes_as_strings() {
        let deps = ResolvedDependencies::parse_all(&["npm:@scope/x@1.0.0"]).unwrap();
        let json = serde_json::to_value(&deps).unwrap();
        assert_eq!(json[1]["dependency"], "npm:@scope/x@1.0.0");
        assert_eq!(json[0]["dependency"], "node");
        assert_eq!(json[0]["effective_version"], "24");
        assert_eq!(json[0]["implied_by"], "npm:@scope/x@1.0.0");
    }
}
