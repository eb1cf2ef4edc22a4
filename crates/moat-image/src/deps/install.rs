//! From resolved dependencies to what the Dockerfile installs: the Debian packages, the
//! runtimes (with the shell that fetches, verifies and unpacks each), and the package lists
//! handed to npm, pip, cargo and go.
//!
//! Runtimes come from official distributions under a configurable base URL (see
//! [`crate::Mirrors`]); minor or major versions are resolved to the newest patch at build
//! time, from the checksum list the distribution publishes, and the download is verified
//! against it. A configured npm registry or Python index is written into npm's and pip's
//! global configuration right before their first layer.

use std::collections::BTreeSet;

use super::registry::{self, Install, Runtime};
use super::{ResolvedDependencies, Source};
use crate::dockerfile::{quote, run_step};
use crate::mirrors::{Mirror, Mirrors};

/// Where moat's Python environment lives; its `bin` goes first on `PATH`.
pub(crate) const VENV: &str = "/opt/moat/venv";
/// Where a python-build-standalone Python is unpacked.
const STANDALONE_PYTHON_DIR: &str = "/opt/python";
/// The python-build-standalone release whose builds are used (its `SHA256SUMS` lists them).
pub const PYTHON_STANDALONE_RELEASE: &str = "20260718";
/// The Python that Debian bookworm ships as `python3`.
const DEBIAN_PYTHON: &str = "3.11";
/// Packages every image with dependencies gets: downloads need TLS roots and curl.
const BASE_PACKAGES: [&str; 2] = ["ca-certificates", "curl"];

/// One runtime to install, with the version to ask its distribution for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RuntimeInstall {
    Node {
        version: String,
    },
    /// `debian`: use the base image's `python3` (3.11 on bookworm) instead of a download.
    Python {
        version: String,
        debian: bool,
    },
    Go {
        version: String,
    },
    Rust {
        toolchain: String,
    },
}

/// Everything the dependency layers of one image install, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InstallPlan {
    pub apt_packages: BTreeSet<String>,
    /// Shell steps run right after the packages (compatibility links).
    pub apt_after: BTreeSet<&'static str>,
    pub runtimes: Vec<RuntimeInstall>,
    /// npm packages of registry tools (agents, package managers): their own layer, so that
    /// adding an `npm:` package does not reinstall them.
    pub npm_tools: BTreeSet<String>,
    pub npm_packages: BTreeSet<String>,
    pub pip_tools: BTreeSet<String>,
    pub pip_packages: BTreeSet<String>,
    pub cargo_crates: BTreeSet<String>,
    pub go_modules: BTreeSet<String>,
    /// Directories (relative to the user's home) made in the image and owned by the user,
    /// where a run mounts something below them (Docker would make them root's).
    pub home_dirs: BTreeSet<&'static str>,
}

impl InstallPlan {
    /// What `dependencies` need on `base_image`. `extra_ca` adds `ca-certificates`.
    pub(crate) fn new(
        dependencies: &ResolvedDependencies,
        base_image: &str,
        extra_ca: bool,
    ) -> Self {
        let mut plan = InstallPlan::default();
        if !dependencies.is_empty() || extra_ca {
            plan.apt_packages
                .extend(BASE_PACKAGES.iter().map(|p| (*p).to_owned()));
        }
        for resolved in dependencies.iter() {
            let dependency = &resolved.dependency;
            let name = dependency.name().to_owned();
            let version = dependency.version();
            match dependency.source() {
                Source::Registry => {
                    let entry = registry::entry(&name);
                    plan.home_dirs.extend(registry::home_dirs(entry.name));
                    let version = resolved.effective_version.clone();
                    match &entry.install {
                        Install::Apt { packages, after } => {
                            plan.apt_packages
                                .extend(packages.iter().map(|p| (*p).to_owned()));
                            plan.apt_after.extend(after.iter());
                        }
                        Install::Runtime(runtime) => {
                            let version = version.unwrap_or_default();
                            plan.runtimes.push(match runtime {
                                Runtime::Node => RuntimeInstall::Node { version },
                                Runtime::Python => {
                                    let debian =
                                        version == DEBIAN_PYTHON && is_debian_bookworm(base_image);
                                    if debian {
                                        plan.apt_packages
                                            .extend(["python3", "python3-venv"].map(str::to_owned));
                                    }
                                    RuntimeInstall::Python { version, debian }
                                }
                                Runtime::Go => RuntimeInstall::Go { version },
                                Runtime::Rust => RuntimeInstall::Rust { toolchain: version },
                            });
                        }
                        Install::NpmGlobal(package) => {
                            plan.npm_tools
                                .insert(at_version(package, version.as_deref()));
                        }
                        Install::Pip(package) => {
                            plan.pip_tools
                                .insert(pip_requirement(package, version.as_deref()));
                        }
                    }
                }
                Source::Apt => {
                    plan.apt_packages.insert(name);
                }
                Source::Npm => {
                    plan.npm_packages.insert(at_version(&name, version));
                }
                Source::Pip => {
                    plan.pip_packages.insert(pip_requirement(&name, version));
                }
                Source::Cargo => {
                    plan.cargo_crates.insert(at_version(&name, version));
                }
                Source::Go => {
                    plan.go_modules.insert(go_target(&name, version));
                }
            }
        }
        plan.runtimes.sort();
        plan
    }
}

fn at_version(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_owned(),
    }
}

fn pip_requirement(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{name}=={v}"),
        None => name.to_owned(),
    }
}

/// `go install` wants `module@version`; Go versions carry a `v` that people often leave out.
fn go_target(module: &str, version: Option<&str>) -> String {
    match version {
        None => format!("{module}@latest"),
        Some(v) if v.starts_with(|c: char| c.is_ascii_digit()) => format!("{module}@v{v}"),
        Some(v) => format!("{module}@{v}"),
    }
}

/// Whether the base image is Debian bookworm, whose `python3` is 3.11.
fn is_debian_bookworm(base_image: &str) -> bool {
    let name = base_image.strip_prefix("docker.io/").unwrap_or(base_image);
    let name = name.strip_prefix("library/").unwrap_or(name);
    name == "debian:bookworm" || name.starts_with("debian:bookworm-")
}

/// `.` → `\.`, for versions put in an extended regular expression.
fn regex_escape(version: &str) -> String {
    version.replace('.', r"\.")
}

/// A `case` on the Debian architecture that sets `var`, failing on one without a build.
fn arch_case(var: &str, amd64: &str, arm64: &str, what: &str) -> String {
    format!(
        r#"case "$(dpkg --print-architecture)" in amd64) {var}={amd64} ;; arm64) {var}={arm64} ;; *) echo "moat: {what} has no build for $(dpkg --print-architecture)" >&2; exit 1 ;; esac"#
    )
}

impl RuntimeInstall {
    /// The Dockerfile lines that install this runtime.
    pub(crate) fn render(&self, mirrors: &Mirrors) -> String {
        match self {
            RuntimeInstall::Node { version } => node(version, &mirrors.url(Mirror::Node)),
            RuntimeInstall::Python {
                version,
                debian: true,
            } => format!(
                "{}ENV PATH={VENV}/bin:$PATH\n",
                run_step(
                    &format!("python {version}: Debian's python3, in a virtual environment"),
                    &[format!("python3 -m venv {VENV}"), python_check(version),],
                )
            ),
            RuntimeInstall::Python {
                version,
                debian: false,
            } => python_standalone(version, &mirrors.url(Mirror::Python)),
            RuntimeInstall::Go { version } => go(version, &mirrors.url(Mirror::Go)),
            RuntimeInstall::Rust { toolchain } => rust(toolchain, &mirrors.url(Mirror::Rust)),
        }
    }
}

fn python_check(version: &str) -> String {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    format!(
        "{VENV}/bin/python -c 'import sys; assert sys.version_info[:2] == ({major}, {minor}), sys.version'"
    )
}

/// Node.js from the official tarball. A major version reads `latest-v<major>.x/`, a full
/// one `v<version>/`; both hold `SHASUMS256.txt` and the tarballs it lists.
fn node(version: &str, mirror: &str) -> String {
    let exact = version.contains('.');
    let (dir, file_re, check) = if exact {
        let v = regex_escape(version);
        (
            format!("v{version}"),
            format!(r"node-v{v}-linux-$arch\.tar\.gz"),
            format!(r"^v{v}$"),
        )
    } else {
        (
            format!("latest-v{version}.x"),
            format!(r"node-v{version}\.[0-9]+\.[0-9]+-linux-$arch\.tar\.gz"),
            format!(r"^v{version}\."),
        )
    };
    run_step(
        &format!("node {version}: the official Linux tarball"),
        &[
            arch_case("arch", "x64", "arm64", "Node.js"),
            format!("base={}", quote(&format!("{mirror}/{dir}"))),
            "cd /tmp".into(),
            r#"curl -fsSLo SHASUMS256.txt "$base/SHASUMS256.txt""#.into(),
            format!(r#"line=$(grep -E "{file_re}\$" SHASUMS256.txt | head -n 1)"#),
            format!(
                r#"[ -n "$line" ] || {{ echo "moat: $base/SHASUMS256.txt lists no Node.js {version} tarball for linux-$arch" >&2; exit 1; }}"#
            ),
            r#"file=${line##*[ /*]}"#.into(),
            r#"curl -fsSLo "$file" "$base/$file""#.into(),
            r#"echo "${line%% *}  $file" | sha256sum -c -"#.into(),
            r#"tar -xzf "$file" -C /usr/local --strip-components=1 --no-same-owner"#.into(),
            r#"rm -f "$file" SHASUMS256.txt /usr/local/CHANGELOG.md /usr/local/README.md /usr/local/LICENSE"#
                .into(),
            format!("node --version | grep -qE '{check}'"),
            "npm --version".into(),
        ],
    )
}

/// A python-build-standalone build of the pinned release, then moat's environment on it.
/// `<mirror>/<release>/SHA256SUMS` names the builds; the newest patch of the minor is used.
fn python_standalone(version: &str, mirror: &str) -> String {
    let release = PYTHON_STANDALONE_RELEASE;
    let v = regex_escape(version);
    format!(
        "{}ENV PATH={VENV}/bin:$PATH\n",
        run_step(
            &format!("python {version}: a python-build-standalone build, in a virtual environment"),
            &[
                arch_case(
                    "triple",
                    "x86_64-unknown-linux-gnu",
                    "aarch64-unknown-linux-gnu",
                    "python-build-standalone",
                ),
                format!("base={}", quote(&format!("{mirror}/{release}"))),
                "cd /tmp".into(),
                r#"curl -fsSLo SHA256SUMS "$base/SHA256SUMS""#.into(),
                format!(
                    r#"line=$(grep -E "cpython-{v}\.[0-9]+\+{release}-$triple-install_only\.tar\.gz\$" SHA256SUMS | head -n 1)"#
                ),
                format!(
                    r#"[ -n "$line" ] || {{ echo "moat: $base/SHA256SUMS lists no Python {version} build for $triple" >&2; exit 1; }}"#
                ),
                r#"file=${line##*[ /*]}"#.into(),
                r#"curl -fsSLo python.tar.gz "$base/$(printf '%s' "$file" | sed 's/+/%2B/g')""#
                    .into(),
                r#"echo "${line%% *}  python.tar.gz" | sha256sum -c -"#.into(),
                format!("mkdir -p {STANDALONE_PYTHON_DIR}"),
                format!(
                    "tar -xzf python.tar.gz -C {STANDALONE_PYTHON_DIR} --strip-components=1 --no-same-owner"
                ),
                "rm -f python.tar.gz SHA256SUMS".into(),
                format!("{STANDALONE_PYTHON_DIR}/bin/python3 -m venv {VENV}"),
                python_check(version),
            ],
        )
    )
}

/// Go from the official archive; `1.N` probes `go1.N.0`, `go1.N.1`, ... for the newest
/// patch, which works on any plain file mirror. Each archive has a `.sha256` beside it.
fn go(version: &str, mirror: &str) -> String {
    let resolve = if version.matches('.').count() == 2 {
        format!("version={}", quote(version))
    } else {
        format!(
            r#"version=''; patch=0; while curl -fsSLo /dev/null "$base/go{version}.$patch.linux-$arch.tar.gz.sha256"; do version="{version}.$patch"; patch=$((patch + 1)); done; [ -n "$version" ] || {{ echo "moat: $base has no Go {version} archive for linux-$arch" >&2; exit 1; }}"#
        )
    };
    format!(
        "{}ENV PATH=/usr/local/go/bin:$PATH\n",
        run_step(
            &format!("go {version}: the official Linux archive"),
            &[
                arch_case("arch", "amd64", "arm64", "Go"),
                format!("base={}", quote(mirror)),
                resolve,
                r#"file="go$version.linux-$arch.tar.gz""#.into(),
                r#"sum=$(curl -fsSL "$base/$file.sha256")"#.into(),
                r#"curl -fsSLo "/tmp/$file" "$base/$file""#.into(),
                r#"echo "${sum%% *}  /tmp/$file" | sha256sum -c -"#.into(),
                r#"tar -xzf "/tmp/$file" -C /usr/local --no-same-owner"#.into(),
                r#"rm -f "/tmp/$file""#.into(),
                r#"/usr/local/go/bin/go version | grep -q " go$version ""#.into(),
            ],
        )
    )
}

/// Rust through rustup-init from the dist server, toolchains from the same server.
fn rust(toolchain: &str, mirror: &str) -> String {
    format!(
        "ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH\n{}",
        run_step(
            &format!("rust {toolchain}: rustup with a minimal profile"),
            &[
                arch_case(
                    "triple",
                    "x86_64-unknown-linux-gnu",
                    "aarch64-unknown-linux-gnu",
                    "rustup",
                ),
                format!("base={}", quote(mirror)),
                r#"url="$base/rustup/dist/$triple/rustup-init""#.into(),
                r#"curl -fsSLo /tmp/rustup-init "$url""#.into(),
                r#"sum=$(curl -fsSL "$url.sha256")"#.into(),
                r#"echo "${sum%% *}  /tmp/rustup-init" | sha256sum -c -"#.into(),
                "chmod +x /tmp/rustup-init".into(),
                format!(
                    r#"RUSTUP_DIST_SERVER="$base" RUSTUP_UPDATE_ROOT="$base/rustup" /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain {}"#,
                    quote(toolchain)
                ),
                "rm -f /tmp/rustup-init".into(),
                r#"chmod -R a+w "$RUSTUP_HOME" "$CARGO_HOME""#.into(),
                "rustc --version".into(),
                "cargo --version".into(),
            ],
        )
    )
}

/// The package layers, in order: npm tools, npm packages, pip tools, pip packages, crates,
/// Go commands. Each is one `RUN`, absent when its list is empty. A configured npm registry
/// comes first when the image has Node (npm), a configured Python index before the pip
/// layers when it has Python: npm and pip in runs of the image use them too.
pub(crate) fn package_layers(plan: &InstallPlan, mirrors: &Mirrors) -> Vec<String> {
    let quoted =
        |set: &BTreeSet<String>| set.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ");
    let npm = |what: &str, set: &BTreeSet<String>| {
        run_step(
            what,
            &[
                format!("npm install -g --no-fund --no-audit {}", quoted(set)),
                // The cache and logs; `npm cache clean` wants `--force` and warns about it.
                "rm -rf /root/.npm".into(),
            ],
        )
    };
    let pip = |what: &str, set: &BTreeSet<String>| {
        run_step(
            what,
            &[format!(
                "{VENV}/bin/python -m pip install --no-cache-dir --disable-pip-version-check {}",
                quoted(set)
            )],
        )
    };
    let has = |wanted: fn(&RuntimeInstall) -> bool| plan.runtimes.iter().any(wanted);
    let mut layers = Vec::new();
    if has(|r| matches!(r, RuntimeInstall::Node { .. })) && !mirrors.is_default(Mirror::Npm) {
        layers.push(npm_registry(&mirrors.url(Mirror::Npm)));
    }
    if !plan.npm_tools.is_empty() {
        layers.push(npm("npm tools", &plan.npm_tools));
    }
    if !plan.npm_packages.is_empty() {
        layers.push(npm("npm: packages", &plan.npm_packages));
    }
    if has(|r| matches!(r, RuntimeInstall::Python { .. })) && !mirrors.is_default(Mirror::Pypi) {
        layers.push(pip_index(&mirrors.url(Mirror::Pypi)));
    }
    if !plan.pip_tools.is_empty() {
        layers.push(pip("pip tools", &plan.pip_tools));
    }
    if !plan.pip_packages.is_empty() {
        layers.push(pip("pip: packages", &plan.pip_packages));
    }
    if !plan.cargo_crates.is_empty() {
        let mut commands: Vec<String> = plan
            .cargo_crates
            .iter()
            .map(|c| format!("cargo install --locked {}", quote(c)))
            .collect();
        commands.push(r#"rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git""#.into());
        layers.push(run_step("cargo: crates", &commands));
    }
    if !plan.go_modules.is_empty() {
        let mut commands: Vec<String> = plan
            .go_modules
            .iter()
            .map(|m| {
                format!(
                    "GOBIN=/usr/local/bin GOPATH=/tmp/moat-go GOCACHE=/tmp/moat-go/cache go install {}",
                    quote(m)
                )
            })
            .collect();
        commands.push("rm -rf /tmp/moat-go".into());
        layers.push(run_step("go: commands", &commands));
    }
    layers
}

/// npm's global config (`$PREFIX/etc/npmrc`, `/usr/local/etc/npmrc` for moat's Node): the
/// lowest precedence, so a project's or the user's `.npmrc` still choose their registry.
/// Tarball URLs of lockfiles that name registry.npmjs.org are sent to it too (npm's
/// `replace-registry-host`).
fn npm_registry(registry: &str) -> String {
    run_step(
        "npm registry: mirrors.npm, in npm's global config",
        &[
            format!(
                "npm config set --location=global registry {}",
                quote(registry)
            ),
            "npm config get registry".into(),
        ],
    )
}

/// pip's global config, which every pip reads (moat's environment, a standalone Python,
/// a project's own environment) below a user's or an environment's own `pip.conf`. pip
/// refuses an index over plain HTTP unless its host is trusted, and whoever configured an
/// `http://` mirror chose that, so its host is trusted; an `https://` one is left to TLS.
fn pip_index(index: &str) -> String {
    let mut format = String::from(r"[global]\nindex-url = %s\n");
    let mut values = vec![quote(index)];
    if let Some(rest) = index.strip_prefix("http://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format.push_str(r"trusted-host = %s\n");
        values.push(quote(host));
    }
    run_step(
        "Python package index: mirrors.pypi, in pip's global config",
        &[format!(
            "printf '{format}' {} > /etc/pip.conf",
            values.join(" ")
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(texts: &[&str], base: &str) -> InstallPlan {
        InstallPlan::new(
            &ResolvedDependencies::parse_all(texts).unwrap(),
            base,
            false,
        )
    }

    #[test]
    fn packages_are_sorted_and_merged() {
        let plan = plan_for(
            &["jq", "git", "apt:graphviz", "fd", "gh", "apt:git"],
            "debian:bookworm-slim",
        );
        assert_eq!(
            plan.apt_packages.iter().collect::<Vec<_>>(),
            [
                "ca-certificates",
                "curl",
                "fd-find",
                "gh",
                "git",
                "graphviz",
                "jq",
                "openssh-client"
            ]
        );
        assert_eq!(
            plan.apt_after.iter().collect::<Vec<_>>(),
            [&"ln -sf /usr/bin/fdfind /usr/local/bin/fd"]
        );
        assert!(plan.runtimes.is_empty());
    }

    #[test]
    fn nothing_declared_installs_nothing() {
        assert_eq!(
            plan_for(&[], "debian:bookworm-slim"),
            InstallPlan::default()
        );
        let with_ca = InstallPlan::new(
            &ResolvedDependencies::default(),
            "debian:bookworm-slim",
            true,
        );
        assert_eq!(
            with_ca.apt_packages.iter().collect::<Vec<_>>(),
            ["ca-certificates", "curl"]
        );
    }

    #[test]
    fn python_3_11_on_bookworm_is_debian_s() {
        let plan = plan_for(&["python@3.11"], "debian:bookworm-slim");
        assert_eq!(
            plan.runtimes,
            [RuntimeInstall::Python {
                version: "3.11".into(),
                debian: true
            }]
        );
        assert!(plan.apt_packages.contains("python3-venv"));
        let plan = plan_for(&["python@3.12"], "debian:bookworm-slim");
        assert_eq!(
            plan.runtimes,
            [RuntimeInstall::Python {
                version: "3.12".into(),
                debian: false
            }]
        );
        assert!(!plan.apt_packages.contains("python3"));
        let plan = plan_for(&["python"], "ubuntu:24.04");
        assert_eq!(
            plan.runtimes,
            [RuntimeInstall::Python {
                version: "3.11".into(),
                debian: false
            }]
        );
        assert!(is_debian_bookworm("docker.io/library/debian:bookworm"));
        assert!(!is_debian_bookworm("debian:bookworms"));
    }

    #[test]
    fn package_specs_per_installer() {
        let plan = plan_for(
            &[
                "claude-code@2.1.0",
                "codex",
                "npm:@scope/x@1.0.0",
                "npm:left-pad",
                "uv",
                "aws",
                "pip:six@1.16.0",
                "cargo:ripgrep@14",
                "go:golang.org/x/tools/cmd/goimports@0.30.0",
                "go:example.com/tool",
                "go:example.com/other@latest",
            ],
            "debian:bookworm-slim",
        );
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        assert_eq!(
            list(&plan.npm_tools),
            ["@anthropic-ai/claude-code@2.1.0", "@openai/codex"]
        );
        assert_eq!(list(&plan.npm_packages), ["@scope/x@1.0.0", "left-pad"]);
        assert_eq!(list(&plan.pip_tools), ["awscli", "uv"]);
        assert_eq!(list(&plan.pip_packages), ["six==1.16.0"]);
        assert_eq!(list(&plan.cargo_crates), ["ripgrep@14"]);
        assert_eq!(
            list(&plan.go_modules),
            [
                "example.com/other@latest",
                "example.com/tool@latest",
                "golang.org/x/tools/cmd/goimports@v0.30.0"
            ]
        );
        assert_eq!(
            plan.runtimes,
            [
                RuntimeInstall::Node {
                    version: "24".into()
                },
                RuntimeInstall::Python {
                    version: "3.11".into(),
                    debian: true
                },
                RuntimeInstall::Go {
                    version: "1.26".into()
                },
                RuntimeInstall::Rust {
                    toolchain: "stable".into()
                },
            ]
        );
    }

    #[test]
    fn node_layer_for_a_major_and_a_full_version() {
        let mirrors = Mirrors {
            node: "http://127.0.0.1:8080/dist/".into(),
            ..Mirrors::default()
        };
        let major = RuntimeInstall::Node {
            version: "22".into(),
        }
        .render(&mirrors);
        assert!(
            major.contains("base='http://127.0.0.1:8080/dist/latest-v22.x'"),
            "{major}"
        );
        assert!(major.contains(r#"grep -E "node-v22\.[0-9]+\.[0-9]+-linux-$arch\.tar\.gz\$""#));
        assert!(major.contains("node --version | grep -qE '^v22\\.'"));
        let full = RuntimeInstall::Node {
            version: "22.11.0".into(),
        }
        .render(&Mirrors::default());
        assert!(
            full.contains("base='https://nodejs.org/dist/v22.11.0'"),
            "{full}"
        );
        assert!(full.contains("node --version | grep -qE '^v22\\.11\\.0$'"));
    }

    #[test]
    fn go_layer_probes_patches_only_for_a_minor() {
        let minor = RuntimeInstall::Go {
            version: "1.26".into(),
        }
        .render(&Mirrors::default());
        assert!(minor.contains("base='https://dl.google.com/go'"));
        assert!(minor.contains(
            r#"while curl -fsSLo /dev/null "$base/go1.26.$patch.linux-$arch.tar.gz.sha256""#
        ));
        let exact = RuntimeInstall::Go {
            version: "1.26.2".into(),
        }
        .render(&Mirrors::default());
        assert!(exact.contains("version='1.26.2'"));
        assert!(!exact.contains("while"));
    }
}
