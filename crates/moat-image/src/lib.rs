//! What image a run needs: the Dockerfile, its build context (a deterministic tar) and a
//! tag derived from the context's content.
//!
//! An [`ImageSpec`] says what goes in: the base image, the owner of the workspace, the
//! resolved [dependencies](ResolvedDependencies), extra CA certificates, build hooks and the
//! [download mirrors](Mirrors). [`plan`] turns it into a [`BuildPlan`].
//!
//! Pure: no Docker, no network, no files. The same spec always gives the same bytes and the
//! same `moat/run:<hash>` tag, which is what makes the image cache work. Versions given as a
//! major or minor (`node@22`) are resolved to the newest patch when the image is built, so a
//! cached image keeps the patch it was built with until it is rebuilt.
//!
//! # How dependencies are installed
//!
//! - Debian packages (`git`, `curl`, `jq`, `gh`, `ripgrep`, `fd-find` plus an `fd` link,
//!   `sqlite3`, `postgresql-client`, `make`, `build-essential`, `apt:` ones) in Debian's
//!   version, in one sorted `apt-get install --no-install-recommends` layer. `docker` is
//!   Debian's `docker.io` (bookworm has no client-only package); its daemon packages come
//!   along and are never started.
//! - `node@N`: the official Linux tarball, the newest `N.x` listed in the mirror's
//!   `latest-vN.x/SHASUMS256.txt`, sha256-checked, into `/usr/local`.
//! - `python@3.11` on a `debian:bookworm*` base: Debian's `python3`. Any other version (or
//!   base): a python-build-standalone build of release [`PYTHON_STANDALONE_RELEASE`] into
//!   `/opt/python`. Either way pip packages go into the virtual environment
//!   `/opt/moat/venv`, first on `PATH` (not `--break-system-packages`: Debian's own Python
//!   packages stay intact, and Debian and standalone Pythons behave the same). It belongs to
//!   root: at run time moatuser installs into a project environment of its own.
//! - `go@1.N`: the official archive into `/usr/local/go`; `1.N` takes the newest patch found
//!   on the mirror. `rust`: rustup-init, minimal profile, `/usr/local/{rustup,cargo}`.
//! - npm globals (`claude-code`, `codex`, `gemini-cli`, `yarn`, `pnpm`, `bun`) with `npm
//!   install -g`; PyPI tools (`uv`, and `aws` as PyPI's `awscli`, the v1 CLI: v2 is not on
//!   PyPI) with pip; `cargo:` with `cargo install --locked`; `go:` with `go install` into
//!   `/usr/local/bin`.
//!
//! The base image must be Debian-based (`apt-get`, `dpkg`). Runtimes are installed even when
//! the base image already has one.
//!
//! # Mirrors
//!
//! [`Mirrors`] holds a base URL per upstream. A configured one lands in the image where the
//! tools look for it, so that the build and the runs of the image both use it:
//!
//! - `debian` / `debian_security`: the apt layer first rewrites the base image's apt
//!   sources (`/etc/apt/sources.list`, `sources.list.d/*.list` and deb822 `*.sources`),
//!   replacing Debian's main archive (`deb.debian.org/debian`) and its security archive
//!   (`deb.debian.org/debian-security`, `security.debian.org`) respectively, before the
//!   first `apt-get update`. A `debian` mirror that no source ends up naming fails the
//!   build: the base image does not use Debian's archive.
//! - `npm`: npm's global config (`/usr/local/etc/npmrc`, `registry`), written after Node is
//!   installed: the lowest precedence, so a project's `.npmrc` still wins at run time.
//! - `pypi`: pip's global config (`/etc/pip.conf`, `index-url`, and `trusted-host` for an
//!   `http://` one), written after Python is installed.
//! - `node`, `python` (else python-build-standalone's releases under `github`), `go`,
//!   `rust`: the runtime downloads.
//!
//! # Extra CA certificates
//!
//! With [`ExtraCa`] the image trusts the certificates system-wide, and the build steps after
//! them get `NODE_EXTRA_CA_CERTS`, `PIP_CERT`, `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`,
//! `CURL_CA_BUNDLE`, `CARGO_HTTP_CAINFO` and `GIT_SSL_CAINFO` pointing at the system bundle,
//! as build arguments: they are not part of the image's environment at run time.
//!
//! # Hooks
//!
//! Hook scripts are files of the build context, copied to [`HOOKS_DIR`], so multi-line
//! scripts keep their exact text. `pre_run` reaches moat-init as
//! `MOAT_PRE_RUN="sh -e /etc/moat/hooks/pre_run"` ([`PRE_RUN_ENV`]).
//!
//! # Building
//!
//! `scripts/verify-image.sh` builds a representative image for real; `scripts/node-mirror.sh`
//! makes a Node.js mirror from the npm registry for machines that cannot reach nodejs.org.
//! A mirror on the host's loopback needs the build to use the host network.

mod apt;
mod ca;
mod context;
mod deps;
mod diagnose;
mod dockerfile;
mod mirrors;

pub use ca::{CA_BUNDLE_VARIABLES, CA_DIR, CaError, ExtraCa, SYSTEM_BUNDLE};
pub use deps::{
    DepError, Dependency, DependencyInfo, InstallMethod, PYTHON_STANDALONE_RELEASE, PrefixInfo,
    ResolvedDependencies, ResolvedDependency, Source, describe, list, prefixes,
};
pub use diagnose::{BuildCause, diagnose_build};
pub use dockerfile::{HOOKS_DIR, render_dockerfile};
pub use mirrors::{
    DEFAULT_DEBIAN_MIRROR, DEFAULT_DEBIAN_SECURITY_MIRROR, DEFAULT_GITHUB_MIRROR,
    DEFAULT_GO_MIRROR, DEFAULT_NODE_MIRROR, DEFAULT_NPM_REGISTRY, DEFAULT_PYPI_INDEX,
    DEFAULT_PYTHON_MIRROR, DEFAULT_RUST_MIRROR, MirrorUse, Mirrors, PYTHON_STANDALONE_RELEASES,
};

use sha2::Digest;

/// The repository every image moat builds is tagged in.
pub const IMAGE_REPOSITORY: &str = "moat/run";
/// Where the workspace is mounted, and the working directory of every run.
pub const WORKSPACE_DIR: &str = "/workspace";
/// The unprivileged user every command runs as.
pub const CONTAINER_USER: &str = "moatuser";
/// Its home directory.
pub const CONTAINER_HOME: &str = "/home/moatuser";
/// The UID/GID of moatuser when the workspace belongs to root (running as root is refused).
pub const FALLBACK_ID: u32 = 1000;
/// The variable moat-init reads the `pre_run` hook command from (run with `sh -c` in the
/// workspace before the run's command). Images with a `pre_run` hook set it; a container's
/// own value overrides the image's.
pub const PRE_RUN_ENV: &str = "MOAT_PRE_RUN";

/// `moat-init` (crates/moat-init), built static by `build.rs`: the entrypoint of every image.
const INIT_PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/moat-init"));
/// Where the proxy CA is installed in images.
pub const PROXY_CA_PATH: &str = "/usr/local/share/ca-certificates/moat-proxy-ca.crt";

/// Path of the entrypoint inside the image.
pub const INIT_PATH: &str = "/usr/local/bin/moat-init";

/// Shell scripts from the configuration's `hooks:`. Each runs with `sh -e` (it stops at the
/// first failing command); blank ones count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Runs as root in the workspace directory, after the dependencies are installed.
    pub post_build_root: Option<String>,
    /// Runs as moatuser in the workspace directory, after `post_build_root`.
    pub post_build: Option<String>,
    /// Runs at every container start, as moatuser in the mounted workspace, before the
    /// command; its failure stops the run with its exit status.
    pub pre_run: Option<String>,
}

/// The inputs that decide an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// A Debian-based image: installs use `apt-get` and `dpkg`.
    pub base_image: String,
    /// UID and GID of moatuser: the owner of the workspace on the host.
    pub uid: u32,
    pub gid: u32,
    pub dependencies: ResolvedDependencies,
    /// Certificates to trust in the image and during its build.
    pub extra_ca: Option<ExtraCa>,
    pub hooks: Hooks,
    pub mirrors: Mirrors,
    /// The CA of moat's credential proxy (PEM). When set, the image trusts it system-wide
    /// and carries `curl`, and `socat` for SSH's CONNECT tunnels (moat-init itself forwards
    /// to the proxy's unix socket).
    pub proxy_ca: Option<String>,
}

impl ImageSpec {
    /// The image of `base_image` for a workspace owned by `uid:gid`: no dependencies, no
    /// hooks. (Which base is the default is a setting: `moat_config` resolves it.)
    pub fn new(base_image: impl Into<String>, uid: u32, gid: u32) -> Self {
        let (uid, gid) = if uid == 0 {
            (FALLBACK_ID, FALLBACK_ID)
        } else {
            (uid, gid)
        };
        ImageSpec {
            base_image: base_image.into(),
            uid,
            gid,
            dependencies: ResolvedDependencies::default(),
            extra_ca: None,
            hooks: Hooks::default(),
            mirrors: Mirrors::default(),
            proxy_ca: None,
        }
    }

    pub fn with_base_image(mut self, base_image: impl Into<String>) -> Self {
        self.base_image = base_image.into();
        self
    }

    pub fn with_dependencies(mut self, dependencies: ResolvedDependencies) -> Self {
        self.dependencies = dependencies;
        self
    }

    pub fn with_extra_ca(mut self, extra_ca: Option<ExtraCa>) -> Self {
        self.extra_ca = extra_ca;
        self
    }

    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    pub fn with_mirrors(mut self, mirrors: Mirrors) -> Self {
        self.mirrors = mirrors;
        self
    }

    pub fn with_proxy_ca(mut self, pem: impl Into<String>) -> Self {
        self.proxy_ca = Some(pem.into());
        self
    }
}

/// Everything needed to build (or find) the image for an [`ImageSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// `moat/run:<first 16 hex digits of sha256(context)>`.
    pub tag: String,
    pub dockerfile: String,
    /// A tar holding `Dockerfile` and the files it copies.
    pub context: Vec<u8>,
}

/// Turn a spec into a build plan.
pub fn plan(spec: &ImageSpec) -> BuildPlan {
    let (dockerfile, files) = dockerfile::render(spec);
    let mut entries: Vec<(&str, &[u8], u32)> = vec![
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("moat-init", INIT_PROGRAM, 0o755),
    ];
    entries.extend(
        files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.as_slice(), f.mode)),
    );
    let context = context::build_tar(&entries);
    let digest = hex::encode(sha2::Sha256::digest(&context));
    BuildPlan {
        tag: format!("{IMAGE_REPOSITORY}:{}", &digest[..16]),
        dockerfile,
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_BASE: &str = "debian:bookworm-slim";

    fn representative() -> ImageSpec {
        let deps = ResolvedDependencies::parse_all(&[
            "git",
            "curl",
            "jq",
            "python@3.11",
            "node@22",
            "npm:left-pad",
            "pip:six",
            "claude-code",
        ])
        .unwrap();
        ImageSpec::new(TEST_BASE, 1234, 1234)
            .with_dependencies(deps)
            .with_hooks(Hooks {
                pre_run: Some("true".into()),
                ..Hooks::default()
            })
    }

    #[test]
    fn the_same_spec_gives_the_same_tag_and_bytes() {
        let a = plan(&ImageSpec::new(TEST_BASE, 1234, 1234));
        let b = plan(&ImageSpec::new(TEST_BASE, 1234, 1234));
        assert_eq!(a, b);
        assert!(a.tag.starts_with("moat/run:"));
        assert_eq!(a.tag.len(), "moat/run:".len() + 16);
        assert_eq!(plan(&representative()), plan(&representative()));
    }

    #[test]
    fn declaration_order_does_not_change_the_image() {
        let shuffled = ResolvedDependencies::parse_all(&[
            "claude-code",
            "pip:six",
            "npm:left-pad",
            "node@22",
            "python@3.11",
            "jq",
            "curl",
            "git",
            "git",
        ])
        .unwrap();
        let spec = representative().with_dependencies(shuffled);
        assert_eq!(plan(&spec), plan(&representative()));
    }

    #[test]
    fn a_different_owner_gives_a_different_tag() {
        let a = plan(&ImageSpec::new(TEST_BASE, 1234, 1234));
        let b = plan(&ImageSpec::new(TEST_BASE, 1235, 1234));
        assert_ne!(a.tag, b.tag);
    }

    #[test]
    fn root_owned_workspaces_get_the_fallback_user() {
        let spec = ImageSpec::new(TEST_BASE, 0, 0);
        assert_eq!((spec.uid, spec.gid), (FALLBACK_ID, FALLBACK_ID));
    }

    /// Adding one npm package keeps every line before the npm packages' layer, so Docker
    /// reuses the system packages, the runtimes and the npm tools from its cache.
    #[test]
    fn one_more_npm_package_changes_nothing_before_its_layer() {
        let base = representative();
        let more = ResolvedDependencies::parse_all(&[
            "git",
            "curl",
            "jq",
            "python@3.11",
            "node@22",
            "npm:left-pad",
            "npm:typescript",
            "pip:six",
            "claude-code",
        ])
        .unwrap();
        let a = plan(&base).dockerfile;
        let b = plan(&base.clone().with_dependencies(more)).dockerfile;
        let a: Vec<&str> = a.lines().collect();
        let b: Vec<&str> = b.lines().collect();
        let first_difference = a.iter().zip(&b).position(|(x, y)| x != y).unwrap();
        let layer = a.iter().position(|l| *l == "# npm: packages").unwrap();
        assert_eq!(first_difference, layer + 2, "{}", b[first_difference]);
        assert!(b[first_difference].contains("'left-pad' 'typescript'"));
        assert!(a[..first_difference].contains(&"# npm tools"));
        assert!(a[..first_difference].contains(&"# Debian packages"));
    }

    #[test]
    fn unused_mirrors_do_not_change_the_image() {
        let changes = |spec: &ImageSpec, mirrors: Mirrors| {
            plan(spec).tag != plan(&spec.clone().with_mirrors(mirrors)).tag
        };
        let m = |edit: fn(&mut Mirrors)| {
            let mut mirrors = Mirrors::default();
            edit(&mut mirrors);
            mirrors
        };
        let debian = m(|m| m.debian = "http://mirror.example/debian".into());
        let security = m(|m| m.debian_security = "http://mirror.example/security".into());
        let node = m(|m| m.node = "https://mirror.example/node".into());
        let python = m(|m| m.python = Some("https://mirror.example/python".into()));
        let go = m(|m| m.go = "https://mirror.example/go".into());
        let npm = m(|m| m.npm = "https://npm.example".into());
        let pypi = m(|m| m.pypi = "https://pypi.example/simple".into());
        let github = m(|m| m.github = "https://gh.example".into());
        let all = [
            &debian, &security, &node, &python, &go, &npm, &pypi, &github,
        ];

        // No apt layer, no runtime: nothing to mirror.
        let bare = ImageSpec::new("debian:bookworm-slim", 1234, 1234);
        for mirrors in all {
            assert!(!changes(&bare, mirrors.clone()), "{mirrors:?}");
        }
        // The proxy's packages (ca-certificates, curl, socat) are an apt layer.
        let proxied = bare.clone().with_proxy_ca("PEM");
        assert!(changes(&proxied, debian.clone()));
        assert!(changes(&proxied, security.clone()));
        for mirrors in [&node, &python, &go, &npm, &pypi, &github] {
            assert!(!changes(&proxied, mirrors.clone()), "{mirrors:?}");
        }
        // Node, Debian's Python 3.11, npm and pip packages: no Go, no standalone Python.
        let base = representative();
        for mirrors in [&debian, &security, &node, &npm, &pypi] {
            assert!(changes(&base, mirrors.clone()), "{mirrors:?}");
        }
        for mirrors in [&go, &python, &github] {
            assert!(!changes(&base, mirrors.clone()), "{mirrors:?}");
        }
        // A standalone Python comes from the GitHub mirror, unless the Python one is set.
        let standalone = bare
            .clone()
            .with_dependencies(ResolvedDependencies::parse_all(&["python@3.12"]).unwrap());
        assert!(changes(&standalone, github.clone()));
        assert!(changes(&standalone, python.clone()));
        assert!(changes(&standalone, pypi.clone()));
        assert!(!changes(&standalone, npm.clone()));
        let python_and_github = Mirrors {
            github: github.github.clone(),
            ..python.clone()
        };
        assert_eq!(
            plan(&standalone.clone().with_mirrors(python.clone())).tag,
            plan(&standalone.with_mirrors(python_and_github)).tag
        );
        // Mirrors that name upstream itself are upstream.
        let upstream = Mirrors {
            debian: "http://deb.debian.org/debian/".into(),
            npm: DEFAULT_NPM_REGISTRY.into(),
            ..Mirrors::default()
        };
        assert!(!changes(&base, upstream));
    }

    #[test]
    fn the_context_holds_what_the_dockerfile_copies() {
        let ca = ExtraCa::from_pem(
            b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n\
              -----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let spec = representative().with_extra_ca(Some(ca));
        let plan = plan(&spec);
        let mut archive = tar::Archive::new(&plan.context[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Dockerfile",
                "ca/moat-extra-1.crt",
                "ca/moat-extra-2.crt",
                "hooks/pre_run",
                "moat-init"
            ]
        );
        assert!(plan.dockerfile.contains(
            "COPY ca/moat-extra-1.crt ca/moat-extra-2.crt /usr/local/share/ca-certificates/\n"
        ));
        for line in plan.dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
            let sources = line.split(' ').skip(1).collect::<Vec<_>>();
            for source in &sources[..sources.len() - 1] {
                assert!(names.contains(&(*source).to_owned()), "{source}");
            }
        }
    }
}
