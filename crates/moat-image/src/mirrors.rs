//! Where image builds download from: one base URL per upstream, each replaceable by a
//! mirror for networks that reach only mirrors (and for tests, which serve local ones).
//!
//! A mirror changes an image only when the image uses what it mirrors, and a mirror equal
//! to its upstream's default changes nothing: the same image, the same tag.

use serde::Serialize;

/// Debian's main archive, as Debian's images name it in their apt sources.
pub const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// Debian's security archive; the base image's sources may also name it
/// `http://security.debian.org[/debian-security]`.
pub const DEFAULT_DEBIAN_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
/// Official download locations of the runtimes.
pub const DEFAULT_NODE_MIRROR: &str = "https://nodejs.org/dist";
pub const DEFAULT_GO_MIRROR: &str = "https://dl.google.com/go";
pub const DEFAULT_RUST_MIRROR: &str = "https://static.rust-lang.org";
/// GitHub, for release assets: python-build-standalone's Pythons.
pub const DEFAULT_GITHUB_MIRROR: &str = "https://github.com";
/// Where python-build-standalone's releases are, below the GitHub base.
pub const PYTHON_STANDALONE_RELEASES: &str = "/astral-sh/python-build-standalone/releases/download";
/// python-build-standalone's releases on GitHub itself.
pub const DEFAULT_PYTHON_MIRROR: &str =
    "https://github.com/astral-sh/python-build-standalone/releases/download";
/// The npm registry.
pub const DEFAULT_NPM_REGISTRY: &str = "https://registry.npmjs.org";
/// PyPI's simple index (PEP 503), what pip's `index-url` names.
pub const DEFAULT_PYPI_INDEX: &str = "https://pypi.org/simple";

/// Base URLs the image build downloads from. Every field holds a URL (the upstream default
/// unless configured); a trailing `/` does not matter. The configuration checks them
/// (`http://` or `https://`, no whitespace); the Dockerfile quotes them whatever they hold.
///
/// Layouts, the same as upstream's:
/// - `debian`: a Debian archive (`dists/`, `pool/`), replacing `http://deb.debian.org/debian`
///   in the base image's apt sources; `debian_security` replaces the security archive
///   (`http://deb.debian.org/debian-security`, `http://security.debian.org`).
/// - `node`: `<node>/latest-v22.x/SHASUMS256.txt` and the `node-v22.*-linux-x64.tar.gz` it
///   lists; a full version reads `<node>/v22.11.0/` instead.
/// - `python`: `<python>/<release>/SHA256SUMS` and the `cpython-*-install_only.tar.gz` it
///   lists, where `<release>` is [`crate::PYTHON_STANDALONE_RELEASE`] (uv's
///   `UV_PYTHON_INSTALL_MIRROR` layout). `None`: python-build-standalone's releases under
///   `github`.
/// - `go`: `<go>/go1.26.2.linux-amd64.tar.gz` and its `.sha256`.
/// - `rust`: a rustup dist server, `<rust>/rustup/dist/<triple>/rustup-init` (+ `.sha256`)
///   and the toolchains (`RUSTUP_DIST_SERVER`).
/// - `npm`: an npm registry (npm's `registry`).
/// - `pypi`: a PEP 503 simple index (pip's `index-url`).
/// - `github`: a GitHub release download server,
///   `<github>/<owner>/<repo>/releases/download/<tag>/<asset>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirrors {
    pub debian: String,
    pub debian_security: String,
    pub node: String,
    pub python: Option<String>,
    pub go: String,
    pub rust: String,
    pub npm: String,
    pub pypi: String,
    pub github: String,
}

impl Default for Mirrors {
    fn default() -> Self {
        Mirrors {
            debian: DEFAULT_DEBIAN_MIRROR.to_owned(),
            debian_security: DEFAULT_DEBIAN_SECURITY_MIRROR.to_owned(),
            node: DEFAULT_NODE_MIRROR.to_owned(),
            python: None,
            go: DEFAULT_GO_MIRROR.to_owned(),
            rust: DEFAULT_RUST_MIRROR.to_owned(),
            npm: DEFAULT_NPM_REGISTRY.to_owned(),
            pypi: DEFAULT_PYPI_INDEX.to_owned(),
            github: DEFAULT_GITHUB_MIRROR.to_owned(),
        }
    }
}

/// One of the download locations of [`Mirrors`], by its `config.yaml` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mirror {
    Debian,
    DebianSecurity,
    Node,
    Python,
    Go,
    Rust,
    Npm,
    Pypi,
    Github,
}

impl Mirror {
    pub(crate) const ALL: [Mirror; 9] = [
        Mirror::Debian,
        Mirror::DebianSecurity,
        Mirror::Node,
        Mirror::Python,
        Mirror::Go,
        Mirror::Rust,
        Mirror::Npm,
        Mirror::Pypi,
        Mirror::Github,
    ];

    /// The setting in `$MOAT_HOME/config.yaml`.
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Mirror::Debian => "mirrors.debian",
            Mirror::DebianSecurity => "mirrors.debian_security",
            Mirror::Node => "mirrors.node",
            Mirror::Python => "mirrors.python",
            Mirror::Go => "mirrors.go",
            Mirror::Rust => "mirrors.rust",
            Mirror::Npm => "mirrors.npm",
            Mirror::Pypi => "mirrors.pypi",
            Mirror::Github => "mirrors.github",
        }
    }

    pub(crate) fn default_url(self) -> &'static str {
        match self {
            Mirror::Debian => DEFAULT_DEBIAN_MIRROR,
            Mirror::DebianSecurity => DEFAULT_DEBIAN_SECURITY_MIRROR,
            Mirror::Node => DEFAULT_NODE_MIRROR,
            Mirror::Python => DEFAULT_PYTHON_MIRROR,
            Mirror::Go => DEFAULT_GO_MIRROR,
            Mirror::Rust => DEFAULT_RUST_MIRROR,
            Mirror::Npm => DEFAULT_NPM_REGISTRY,
            Mirror::Pypi => DEFAULT_PYPI_INDEX,
            Mirror::Github => DEFAULT_GITHUB_MIRROR,
        }
    }
}

impl Mirrors {
    /// The base URL in effect for `mirror`, without a trailing `/`.
    pub(crate) fn url(&self, mirror: Mirror) -> String {
        let url = match mirror {
            Mirror::Debian => &self.debian,
            Mirror::DebianSecurity => &self.debian_security,
            Mirror::Node => &self.node,
            Mirror::Python => {
                return match &self.python {
                    Some(python) => trimmed(python).to_owned(),
                    None => format!("{}{PYTHON_STANDALONE_RELEASES}", trimmed(&self.github)),
                };
            }
            Mirror::Go => &self.go,
            Mirror::Rust => &self.rust,
            Mirror::Npm => &self.npm,
            Mirror::Pypi => &self.pypi,
            Mirror::Github => &self.github,
        };
        trimmed(url).to_owned()
    }

    /// Whether `mirror` is its upstream: then the image is what it is without mirrors.
    pub(crate) fn is_default(&self, mirror: Mirror) -> bool {
        self.url(mirror) == mirror.default_url()
    }

    /// `mirror` as `moat deps info` shows it, with what the install fetches from it.
    pub(crate) fn usage(&self, mirror: Mirror, fetches: &str) -> MirrorUse {
        MirrorUse {
            setting: mirror.setting().to_owned(),
            fetches: fetches.to_owned(),
            url: self.url(mirror),
            default: self.is_default(mirror),
        }
    }
}

/// One mirror setting an install uses, as `moat deps info` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorUse {
    /// The `config.yaml` setting: `mirrors.npm`.
    pub setting: String,
    /// What the install fetches through it.
    pub fetches: String,
    /// The base URL in effect: the setting's value, or upstream's when it is unset.
    pub url: String,
    /// Whether `url` is upstream's own.
    pub default: bool,
}

pub(crate) fn trimmed(url: &str) -> &str {
    url.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_builds_live_under_the_github_mirror_unless_set() {
        let defaults = Mirrors::default();
        assert_eq!(defaults.url(Mirror::Python), DEFAULT_PYTHON_MIRROR);
        assert!(defaults.is_default(Mirror::Python));
        let github = Mirrors {
            github: "https://gh.corp.example/".into(),
            ..Mirrors::default()
        };
        assert_eq!(
            github.url(Mirror::Python),
            "https://gh.corp.example/astral-sh/python-build-standalone/releases/download"
        );
        assert!(!github.is_default(Mirror::Python));
        let both = Mirrors {
            python: Some("https://py.corp.example/builds/".into()),
            ..github
        };
        assert_eq!(both.url(Mirror::Python), "https://py.corp.example/builds");
    }

    #[test]
    fn a_mirror_equal_to_upstream_is_the_default() {
        let slash = Mirrors {
            npm: "https://registry.npmjs.org/".into(),
            ..Mirrors::default()
        };
        assert!(slash.is_default(Mirror::Npm));
        assert_eq!(slash.url(Mirror::Npm), DEFAULT_NPM_REGISTRY);
    }
}
