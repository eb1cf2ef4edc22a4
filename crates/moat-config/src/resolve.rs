//! Precedence, in one place: command-line flags (and moat's environment variables) over
//! the workspace file over the global file over defaults. [`resolve`] is the only code
//! that merges layers; everything a run needs comes out of it as a [`ResolvedConfig`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{ConfigError, ConfigErrors, Problems};
use crate::global::{GlobalConfig, check_ca_file};
use crate::network::{ConnectTo, HostPattern, NetworkPolicy, parse_port};
use crate::settings::{
    ClaudeSettings, Command, ContainerSettings, DebugSettings, DependencySpec, EnvVars, Hooks,
    KeyringMode, Mirrors, Mount, ProxySettings, RemoteMcpServer, SnapshotSettings,
};
use crate::values::{self, Invalid};
use crate::workspace::{WorkspaceConfig, choice_error, resolve_mount};

/// What the command line and moat's environment variables say, as plain values; the CLI
/// reads flags and the environment, this crate never does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOverrides {
    /// `--name`: replaces `name`.
    pub name: Option<String>,
    /// `--grant`, in order: added after the file's grants, duplicates dropped. A value may
    /// hold several grants separated by commas.
    pub grants: Vec<String>,
    /// `-e KEY=VALUE`, already split at the first `=`: each replaces the file's value for
    /// that key; a later pair wins over an earlier one.
    pub env: Vec<(String, String)>,
    /// `-i`: `Some(true)`; `Some(false)` to turn off the file's `interactive: true`.
    pub interactive: Option<bool>,
    /// The words after `--`; when not empty they replace `command`.
    pub command: Vec<String>,
    /// `--mount SRC:DST[:ro|rw]`: added after the file's mounts; one with the same target
    /// as a file mount replaces it. Relative sources start at the workspace (the CLI makes
    /// them absolute first if it wants them to start at the current directory).
    pub mounts: Vec<String>,
    /// `--allow-host PATTERN`: added to `network.allow`.
    pub allow_hosts: Vec<String>,
    /// `--no-snapshots`: turns snapshots off for this run.
    pub no_snapshots: bool,
    /// `MOAT_EXTRA_CA_CERTS`: replaces the global `extra_ca_certs`.
    pub extra_ca_certs: Option<PathBuf>,
    /// `MOAT_CONNECT_TO` (comma-separated rules): replaces the global `connect_to`.
    pub connect_to: Option<String>,
    /// `MOAT_KEYRING` (`auto` or `file`): replaces the global `keyring`.
    pub keyring: Option<String>,
    /// `MOAT_PROXY_PORT`: replaces the global `proxy.port`.
    pub proxy_port: Option<String>,
    /// `MOAT_BASE_IMAGE`: replaces [`DEFAULT_BASE_IMAGE`].
    pub base_image: Option<String>,
}

/// The image every run's image is built on when `MOAT_BASE_IMAGE` names no other.
pub const DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";

/// Everything a run needs, after precedence. `Serialize` (and [`ResolvedConfig::render`])
/// show it for `moat config` and `moat run --dry-run`; secret-looking env values are hidden.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedConfig {
    /// The workspace directory, as given.
    pub workspace: PathBuf,
    /// The files that were read.
    pub files: ConfigFiles,
    /// `None`: the run store picks a name.
    pub name: Option<String>,
    /// `None`: the image's default shell.
    pub command: Option<Command>,
    pub interactive: bool,
    /// Raw dependency strings with their file positions, for the dependency parser.
    pub dependencies: Vec<DependencySpec>,
    pub grants: Vec<String>,
    pub env: EnvVars,
    pub mounts: Vec<Mount>,
    pub network: Network,
    /// Endpoint name → container port.
    pub ports: BTreeMap<String, u16>,
    pub snapshots: SnapshotSettings,
    pub hooks: Hooks,
    pub container: ContainerSettings,
    pub claude: ClaudeSettings,
    pub mcp: Vec<RemoteMcpServer>,
    /// Extra CA certificates (PEM) trusted upstream and installed into built images.
    pub extra_ca_certs: Option<PathBuf>,
    pub connect_to: Vec<ConnectTo>,
    /// Where image builds download from: the global file's mirrors, else upstream.
    pub mirrors: moat_image::Mirrors,
    pub keyring: KeyringMode,
    pub debug: DebugSettings,
    pub proxy: ProxySettings,
    /// The image a run's image is built on.
    pub base_image: String,
    /// Paths the run may not change besides moat's defaults: the global list, then the
    /// workspace's.
    pub protect: Vec<String>,
    /// Settings that are set but not carried out yet, from both files and the environment:
    /// a run refuses them; showing the settings lists them.
    #[serde(skip)]
    pub not_yet: Vec<ConfigError>,
    /// What the user should know about how the layers combined (a workspace setting the
    /// machine's settings overrule). Not part of the settings themselves.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Which configuration files were read (`None`: there was none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigFiles {
    pub workspace: Option<PathBuf>,
    pub global: Option<PathBuf>,
}

/// The network settings of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Network {
    pub policy: NetworkPolicy,
    /// Global patterns, then the workspace's, then `--allow-host`, without repeats.
    pub allow: Vec<HostPattern>,
    /// Hosts tunnelled without interception: global patterns, then the workspace's.
    pub passthrough: Vec<HostPattern>,
}

impl ResolvedConfig {
    /// The settings as YAML, for people to read.
    pub fn render(&self) -> String {
        serde_saphyr::to_string(self)
            .unwrap_or_else(|error| format!("# the settings cannot be shown: {error}\n"))
    }
}

/// Merge the layers: `cli` over `file` (the workspace file) over `global` over defaults.
///
/// Command-line values are checked with the same rules as the files; problems with them
/// are reported together, naming the flag or variable.
pub fn resolve(
    workspace: &Path,
    file: Option<&WorkspaceConfig>,
    global: Option<&GlobalConfig>,
    cli: &CliOverrides,
) -> Result<ResolvedConfig, ConfigErrors> {
    let default_file = WorkspaceConfig::default();
    let default_global = GlobalConfig::default();
    let file_or_default = file.unwrap_or(&default_file);
    let global_or_default = global.unwrap_or(&default_global);
    let (file, global) = (file_or_default, global_or_default);
    let mut problems = Problems::default();
    let mut flag = |source: &str, result: Result<(), Invalid>| match result {
        Ok(()) => true,
        Err(invalid) => {
            problems.push(invalid.for_input(source));
            false
        }
    };

    // name: --name, then the file.
    let name = match &cli.name {
        Some(name) if flag("`--name`", values::check_run_name_flag(name)) => Some(name.clone()),
        Some(_) => None,
        None => file.name.clone(),
    };

    // grants: the file's, then --grant, in order, without repeats.
    let mut grants = file.grants.clone();
    for grant in cli.grants.iter().flat_map(|g| g.split(',')).map(str::trim) {
        if flag("`--grant`", values::check_grant(grant)) && !grants.iter().any(|g| g == grant) {
            grants.push(grant.to_owned());
        }
    }

    // env: the file's, each -e replacing its key.
    let mut env = file.env.clone();
    for (key, value) in &cli.env {
        let ok = flag("`--env`", values::check_env_name(key))
            && flag("`--env`", values::check_env_value(key, value));
        if ok {
            env.insert(key.clone(), value.clone());
        }
    }

    // command: the words after --, then the file's.
    let command = if cli.command.is_empty() {
        file.command.clone()
    } else if cli.command[0].trim().is_empty() {
        problems.push(
            ConfigError::input("the command after `--` is empty")
                .with_hint("write the program to run after `--`, e.g. `moat run -- npm test`"),
        );
        None
    } else {
        Some(Command::Exec(cli.command.clone()))
    };

    // interactive: -i, then the file, then off.
    let interactive = cli.interactive.or(file.interactive).unwrap_or(false);

    // mounts: the file's, then --mount; a flag mount replaces a file mount on its target.
    let mut mounts = file.mounts.clone();
    for spec in &cli.mounts {
        match resolve_mount(workspace, spec) {
            Ok(mount) => {
                mounts.retain(|m| m.target != mount.target);
                mounts.push(mount);
            }
            Err(invalid) => problems.push(invalid.for_input("`--mount`")),
        }
    }

    // network: the policy from the file, then global, then permissive; allow lists add up.
    // A machine-wide `strict` is a floor: a workspace file (which may come from anyone)
    // can narrow it, never widen it, so its `permissive` and its own allow entries give
    // way; `--allow-host` is the user's own word and still adds.
    let mut warnings = Vec::new();
    let strict_floor = global.network.policy == Some(NetworkPolicy::Strict);
    let policy = if strict_floor {
        if file.network.policy == Some(NetworkPolicy::Permissive) {
            warnings.push(format!(
                "{} asks for `network.policy: permissive`, but {} sets `strict` for every \
                 workspace: the run is strict",
                shown_path(&file.path),
                shown_path(&global.path)
            ));
        }
        NetworkPolicy::Strict
    } else {
        file.network
            .policy
            .or(global.network.policy)
            .unwrap_or_default()
    };
    let mut allow: Vec<HostPattern> = Vec::new();
    let mut add = |pattern: HostPattern| {
        if !allow.contains(&pattern) {
            allow.push(pattern);
        }
    };
    global.network.allow.iter().cloned().for_each(&mut add);
    if strict_floor {
        let dropped: Vec<String> = file
            .network
            .allow
            .iter()
            .filter(|p| !global.network.allow.contains(p))
            .map(ToString::to_string)
            .collect();
        if !dropped.is_empty() {
            warnings.push(format!(
                "{} allows {}, which {} (strict for every workspace) does not: not allowed; \
                 add them to `network.allow` there, or pass `--allow-host` for one run",
                shown_path(&file.path),
                dropped.join(", "),
                shown_path(&global.path)
            ));
        }
    } else {
        file.network.allow.iter().cloned().for_each(&mut add);
    }
    for text in &cli.allow_hosts {
        match HostPattern::parse(text) {
            Ok(pattern) => add(pattern),
            Err(invalid) => problems.push(Invalid::from(invalid).for_input("`--allow-host`")),
        }
    }

    let mut passthrough: Vec<HostPattern> = Vec::new();
    for pattern in global
        .network
        .passthrough
        .iter()
        .chain(&file.network.passthrough)
    {
        if !passthrough.contains(pattern) {
            passthrough.push(pattern.clone());
        }
    }

    // snapshots: the file's, with --no-snapshots on top.
    let mut snapshots = file.snapshots.clone();
    if cli.no_snapshots {
        snapshots.disabled = true;
    }

    // claude: logs are shared by default when Claude's credentials are granted.
    let claude = ClaudeSettings {
        plugins: file.claude.plugins.clone(),
        marketplaces: file.claude.marketplaces.clone(),
        sync_logs: file.claude.sync_logs.unwrap_or_else(|| {
            grants.iter().any(|g| {
                let provider = g.split(':').next().unwrap_or(g);
                provider == "anthropic" || provider == "claude"
            })
        }),
        mcp: file.claude.mcp.clone(),
    };

    let HostSettings {
        extra_ca_certs,
        connect_to,
        keyring,
        proxy,
        base_image,
        mirrors,
    } = host_settings(global, cli, &mut problems);

    let resolved = ResolvedConfig {
        workspace: workspace.to_owned(),
        files: ConfigFiles {
            workspace: file_path(file),
            global: file_path_global(global),
        },
        name,
        command,
        interactive,
        dependencies: file.dependencies.clone(),
        grants,
        env,
        mounts,
        network: Network {
            policy,
            allow,
            passthrough,
        },
        ports: file.ports.clone(),
        snapshots,
        hooks: file.hooks.clone(),
        container: ContainerSettings {
            memory_mb: file
                .container
                .memory_mb
                .unwrap_or(ContainerSettings::DEFAULT_MEMORY_MB),
            cpus: file.container.cpus,
            pids_limit: file
                .container
                .pids_limit
                .unwrap_or(ContainerSettings::DEFAULT_PIDS_LIMIT),
            dns: file.container.dns.clone(),
        },
        claude,
        mcp: file.mcp.clone(),
        extra_ca_certs,
        connect_to,
        mirrors,
        keyring,
        debug: global.debug.clone(),
        proxy,
        base_image,
        protect: {
            let mut protect = global.protect.clone();
            for path in &file.protect {
                if !protect.contains(path) {
                    protect.push(path.clone());
                }
            }
            protect
        },
        not_yet: {
            let mut not_yet: Vec<ConfigError> = global.not_yet.clone();
            not_yet.extend(file.not_yet.iter().cloned());
            if cli.proxy_port.is_some() {
                not_yet.push(
                    ConfigError::input(
                        "`MOAT_PROXY_PORT` is not supported yet: moat does not route to services in a run's container yet",
                    )
                    .with_hint("unset it; moat would not act on it"),
                );
            }
            not_yet
        },
        warnings,
    };
    problems.finish(resolved)
}

/// The machine's own settings, which no workspace file can change: where upstream TLS
/// roots, `connect_to` rules, the credential key, the proxy port and the download mirrors
/// come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    pub extra_ca_certs: Option<PathBuf>,
    pub connect_to: Vec<ConnectTo>,
    pub keyring: KeyringMode,
    pub proxy: ProxySettings,
    pub base_image: String,
    /// The global file's; no variable replaces them.
    /// Where image builds download from: the global file's mirrors, else upstream.
    pub mirrors: moat_image::Mirrors,
}

/// The machine settings alone, for commands without a workspace (`moat grant`): moat's
/// environment variables in `cli` (`extra_ca_certs`, `connect_to`, `keyring`,
/// `proxy_port`; the other fields are ignored) over the global file over defaults. The
/// same precedence and checks as [`resolve`] applies for a run.
pub fn resolve_host(
    global: Option<&GlobalConfig>,
    cli: &CliOverrides,
) -> Result<HostSettings, ConfigErrors> {
    let default_global = GlobalConfig::default();
    let mut problems = Problems::default();
    let settings = host_settings(global.unwrap_or(&default_global), cli, &mut problems);
    problems.finish(settings)
}

/// Machine settings: environment variables over the global file over defaults.
fn host_settings(
    global: &GlobalConfig,
    cli: &CliOverrides,
    problems: &mut Problems,
) -> HostSettings {
    let extra_ca_certs = match &cli.extra_ca_certs {
        Some(path) => check_ca_file(path)
            .map_err(|invalid| problems.push(invalid.for_input("`MOAT_EXTRA_CA_CERTS`")))
            .ok(),
        None => global.extra_ca_certs.clone(),
    };
    let connect_to = match &cli.connect_to {
        Some(rules) => ConnectTo::parse_list(rules)
            .map_err(|invalid| problems.push(Invalid::from(invalid).for_input("`MOAT_CONNECT_TO`")))
            .unwrap_or_default(),
        None => global.connect_to.clone(),
    };
    let keyring = match &cli.keyring {
        Some(word) => KeyringMode::parse(word)
            .ok_or_else(|| {
                problems.push(
                    choice_error("keyring", word, KeyringMode::WORDS).for_input("`MOAT_KEYRING`"),
                )
            })
            .unwrap_or_default(),
        None => global.keyring,
    };
    let proxy = match &cli.proxy_port {
        Some(port) => match parse_port(port) {
            Ok(port) => ProxySettings { port },
            Err(why) => {
                problems.push(Invalid::new(why).for_input("`MOAT_PROXY_PORT`"));
                global.proxy.clone()
            }
        },
        None => global.proxy.clone(),
    };

    let base_image = match &cli.base_image {
        Some(image) if !image.trim().is_empty() => image.clone(),
        _ => DEFAULT_BASE_IMAGE.to_owned(),
    };

    HostSettings {
        extra_ca_certs,
        connect_to,
        keyring,
        proxy,
        base_image,
        mirrors: resolve_mirrors(&global.mirrors),
    }
}

/// The global file's `mirrors:` over the upstream defaults, as the image planner takes
/// them; python-build-standalone's releases stay under the GitHub mirror unless
/// `mirrors.python` names a place of their own.
fn resolve_mirrors(file: &Mirrors) -> moat_image::Mirrors {
    let defaults = moat_image::Mirrors::default();
    let or = |set: &Option<String>, default: String| set.clone().unwrap_or(default);
    moat_image::Mirrors {
        debian: or(&file.debian, defaults.debian),
        debian_security: or(&file.debian_security, defaults.debian_security),
        node: or(&file.node, defaults.node),
        python: file.python.clone(),
        go: or(&file.go, defaults.go),
        rust: or(&file.rust, defaults.rust),
        npm: or(&file.npm, defaults.npm),
        pypi: or(&file.pypi, defaults.pypi),
        github: or(&file.github, defaults.github),
    }
}

fn file_path(file: &WorkspaceConfig) -> Option<PathBuf> {
    (!file.path.as_os_str().is_empty()).then(|| file.path.clone())
}

fn file_path_global(global: &GlobalConfig) -> Option<PathBuf> {
    (!global.path.as_os_str().is_empty()).then(|| global.path.clone())
}

/// A file's path for a message; the built-in defaults have none.
fn shown_path(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "the defaults".to_owned()
    } else {
        format!("`{}`", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_mirror_reaches_the_image() {
        let config = Mirrors {
            debian: Some("http://deb.corp.example/debian".into()),
            debian_security: Some("http://deb.corp.example/security".into()),
            node: Some("https://corp.example/node".into()),
            python: None,
            go: Some("https://corp.example/go".into()),
            rust: Some("https://corp.example/rust".into()),
            npm: Some("https://npm.corp.example".into()),
            pypi: Some("https://pypi.corp.example/simple".into()),
            github: Some("https://gh.corp.example".into()),
        };
        let mirrors = resolve_mirrors(&config);
        assert_eq!(
            mirrors,
            moat_image::Mirrors {
                debian: "http://deb.corp.example/debian".into(),
                debian_security: "http://deb.corp.example/security".into(),
                node: "https://corp.example/node".into(),
                python: None,
                go: "https://corp.example/go".into(),
                rust: "https://corp.example/rust".into(),
                npm: "https://npm.corp.example".into(),
                pypi: "https://pypi.corp.example/simple".into(),
                github: "https://gh.corp.example".into(),
            }
        );
        assert_eq!(
            resolve_mirrors(&Mirrors::default()),
            moat_image::Mirrors::default()
        );
    }

    use crate::global::parse_global;
    use crate::workspace::parse_workspace;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn file(text: &str, workspace: &Path) -> WorkspaceConfig {
        parse_workspace(Path::new("agent.yaml"), text, workspace).unwrap()
    }

    fn global(text: &str) -> GlobalConfig {
        parse_global(Path::new("/home/me/.moat/config.yaml"), text).unwrap()
    }

    fn resolve_ok(
        file: Option<&WorkspaceConfig>,
        global: Option<&GlobalConfig>,
        cli: &CliOverrides,
    ) -> ResolvedConfig {
        match resolve(Path::new("/work/project"), file, global, cli) {
            Ok(config) => config,
            Err(errors) => panic!("{errors}"),
        }
    }

    #[test]
    fn nothing_given_means_defaults() {
        let config = resolve_ok(None, None, &CliOverrides::default());
        assert_eq!(config.name, None);
        assert_eq!(config.command, None);
        assert!(!config.interactive);
        assert!(config.grants.is_empty());
        assert_eq!(config.network.policy, NetworkPolicy::Permissive);
        assert!(!config.claude.sync_logs);
        assert_eq!(config.snapshots, SnapshotSettings::default());
        assert_eq!(config.keyring, KeyringMode::Auto);
        assert_eq!(config.proxy.port, 8080);
        assert_eq!(config.debug.retention_days, 14);
        insta::assert_snapshot!(config.render(), @"
        workspace: /work/project
        files:
          workspace: null
          global: null
        name: null
        command: null
        interactive: false
        dependencies: []
        grants: []
        env: {}
        mounts: []
        network:
          policy: permissive
          allow: []
          passthrough: []
        ports: {}
        snapshots:
          disabled: false
          triggers:
            disable_pre_run: false
            disable_git_commits: false
            disable_builds: false
            disable_agent_turns: false
            disable_idle: false
            idle_threshold_seconds: 30
          exclude:
            ignore_gitignore: false
            additional: []
          retention:
            max_count: 10
            delete_initial: false
        hooks: {}
        container:
          memory_mb: 8192
          pids_limit: 4096
        claude:
          plugins: {}
          marketplaces: {}
          sync_logs: false
          mcp: {}
        mcp: []
        extra_ca_certs: null
        connect_to: []
        mirrors:
          debian: http://deb.debian.org/debian
          debian_security: http://deb.debian.org/debian-security
          node: https://nodejs.org/dist
          python: null
          go: https://dl.google.com/go
          rust: https://static.rust-lang.org
          npm: https://registry.npmjs.org
          pypi: https://pypi.org/simple
          github: https://github.com
        keyring: auto
        debug:
          retention_days: 14
        proxy:
          port: 8080
        base_image: debian:bookworm-slim
        protect: []
        ");
    }

    #[test]
    fn name_command_and_interactive_from_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = file(
            "name: from-file\ncommand: npm start\ninteractive: true\n",
            dir.path(),
        );
        let kept = resolve_ok(Some(&file), None, &CliOverrides::default());
        assert_eq!(kept.name.as_deref(), Some("from-file"));
        assert_eq!(kept.command, Some(Command::Shell("npm start".into())));
        assert!(kept.interactive);

        let cli = CliOverrides {
            name: Some("from-flag".into()),
            command: vec!["bash".into(), "-l".into()],
            interactive: Some(false),
            ..CliOverrides::default()
        };
        let config = resolve_ok(Some(&file), None, &cli);
        assert_eq!(config.name.as_deref(), Some("from-flag"));
        assert_eq!(
            config.command,
            Some(Command::Exec(vec!["bash".into(), "-l".into()]))
        );
        assert!(!config.interactive);

        let only_i = CliOverrides {
            interactive: Some(true),
            ..CliOverrides::default()
        };
        assert!(resolve_ok(None, None, &only_i).interactive);
    }

    #[test]
    fn grant_flags_add_to_the_file_in_order_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let file = file("grants: [anthropic, github]\n", dir.path());
        let cli = CliOverrides {
            grants: vec![
                "github".into(),
                "ssh:github.com,npm".into(),
                "anthropic".into(),
            ],
            ..CliOverrides::default()
        };
        let config = resolve_ok(Some(&file), None, &cli);
        assert_eq!(
            config.grants,
            ["anthropic", "github", "ssh:github.com", "npm"]
        );
        let flags_only = resolve_ok(None, None, &cli);
        assert_eq!(
            flags_only.grants,
            ["github", "ssh:github.com", "npm", "anthropic"]
        );
    }

    #[test]
    fn env_flags_replace_the_file_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = file("env:\n  A: file-a\n  B: file-b\n", dir.path());
        let cli = CliOverrides {
            env: vec![
                ("B".into(), "flag-b".into()),
                ("C".into(), "first".into()),
                ("C".into(), "last".into()),
            ],
            ..CliOverrides::default()
        };
        let config = resolve_ok(Some(&file), None, &cli);
        assert_eq!(config.env.to_pairs(), ["A=file-a", "B=flag-b", "C=last"]);
    }

    #[test]
    fn mount_flags_add_and_replace_by_target() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a", "b", "c"] {
            fs_err::create_dir(dir.path().join(sub)).unwrap();
        }
        let root = fs_err::canonicalize(dir.path()).unwrap();
        let file = file("mounts: [\"a:/one\", \"b:/two:ro\"]\n", dir.path());
        let cli = CliOverrides {
            mounts: vec![
                "c:/two".into(),
                format!("{}:/three:ro", root.join("a").display()),
            ],
            ..CliOverrides::default()
        };
        let config = resolve(dir.path(), Some(&file), None, &cli).unwrap();
        let mounts: Vec<String> = config.mounts.iter().map(|m| m.to_string()).collect();
        let r = root.display();
        assert_eq!(
            mounts,
            [
                format!("{r}/a:/one"),
                format!("{r}/c:/two"),
                format!("{r}/a:/three:ro")
            ]
        );
    }

    #[test]
    fn a_global_strict_policy_is_a_floor_the_workspace_file_cannot_lower() {
        let dir = tempfile::tempdir().unwrap();
        let strict_global =
            global("network:\n  policy: strict\n  allow: [\"*.corp.example\", a.com]\n");
        let permissive_file = file(
            "network:\n  policy: permissive\n  allow: [a.com, b.com]\n",
            dir.path(),
        );
        let silent_file = file("network:\n  allow: [c.com]\n", dir.path());
        let cli = CliOverrides {
            allow_hosts: vec!["d.com:8443".into(), "b.com".into()],
            ..CliOverrides::default()
        };

        // The file's `permissive` and its own `b.com` give way; `--allow-host` still adds.
        let config = resolve_ok(Some(&permissive_file), Some(&strict_global), &cli);
        assert_eq!(config.network.policy, NetworkPolicy::Strict);
        let allow: Vec<String> = config.network.allow.iter().map(|p| p.to_string()).collect();
        assert_eq!(allow, ["*.corp.example", "a.com", "d.com:8443", "b.com"]);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(
            config.warnings[0].contains("the run is strict"),
            "{:?}",
            config.warnings
        );
        assert!(
            config.warnings[1].contains("allows b.com"),
            "{:?}",
            config.warnings
        );

        let config = resolve_ok(Some(&silent_file), Some(&strict_global), &cli);
        assert_eq!(config.network.policy, NetworkPolicy::Strict);

        // Without a global floor the file's policy and allow list apply.
        let permissive_global = global("network:\n  policy: permissive\n  allow: [a.com]\n");
        let strict_file = file("network:\n  policy: strict\n  allow: [b.com]\n", dir.path());
        let config = resolve_ok(Some(&strict_file), Some(&permissive_global), &cli);
        assert_eq!(config.network.policy, NetworkPolicy::Strict);
        let allow: Vec<String> = config.network.allow.iter().map(|p| p.to_string()).collect();
        assert_eq!(allow, ["a.com", "b.com", "d.com:8443"]);
        assert!(config.warnings.is_empty());

        let config = resolve_ok(Some(&silent_file), None, &CliOverrides::default());
        assert_eq!(config.network.policy, NetworkPolicy::Permissive);
    }

    #[test]
    fn no_snapshots_flag_turns_them_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = file(
            "snapshots:\n  triggers:\n    disable_pre_run: true\n",
            dir.path(),
        );
        let cli = CliOverrides {
            no_snapshots: true,
            ..CliOverrides::default()
        };
        let config = resolve_ok(Some(&file), None, &cli);
        assert!(config.snapshots.disabled);
        assert!(config.snapshots.triggers.disable_pre_run);
        assert!(
            !resolve_ok(Some(&file), None, &CliOverrides::default())
                .snapshots
                .disabled
        );
    }

    #[test]
    fn claude_logs_are_shared_when_claude_credentials_are_granted() {
        let dir = tempfile::tempdir().unwrap();
        let granted = CliOverrides {
            grants: vec!["anthropic".into()],
            ..CliOverrides::default()
        };
        assert!(resolve_ok(None, None, &granted).claude.sync_logs);
        let claude = CliOverrides {
            grants: vec!["claude".into()],
            ..CliOverrides::default()
        };
        assert!(resolve_ok(None, None, &claude).claude.sync_logs);
        let off = file("claude:\n  sync_logs: false\n", dir.path());
        assert!(!resolve_ok(Some(&off), None, &granted).claude.sync_logs);
        let on = file("claude:\n  sync_logs: true\n", dir.path());
        assert!(
            resolve_ok(Some(&on), None, &CliOverrides::default())
                .claude
                .sync_logs
        );
    }

    #[test]
    fn environment_variables_replace_global_settings() {
        let home = tempfile::tempdir().unwrap();
        fs_err::write(home.path().join("a.pem"), PEM).unwrap();
        fs_err::write(home.path().join("b.pem"), PEM).unwrap();
        let global = parse_global(
            &home.path().join("config.yaml"),
            "extra_ca_certs: a.pem\nconnect_to: \"x.com:443:127.0.0.1:1\"\nkeyring: file\nproxy: {port: 9000}\n",
        )
        .unwrap();
        let root = fs_err::canonicalize(home.path()).unwrap();

        let from_file = resolve_ok(None, Some(&global), &CliOverrides::default());
        assert_eq!(from_file.extra_ca_certs, Some(root.join("a.pem")));
        assert_eq!(from_file.connect_to[0].to_string(), "x.com:443:127.0.0.1:1");
        assert_eq!(from_file.keyring, KeyringMode::File);
        assert_eq!(from_file.proxy.port, 9000);

        let cli = CliOverrides {
            extra_ca_certs: Some(home.path().join("b.pem")),
            connect_to: Some("y.com:443:127.0.0.1:2,z.com:443:127.0.0.1:3".into()),
            keyring: Some("auto".into()),
            proxy_port: Some("9100".into()),
            ..CliOverrides::default()
        };
        let from_env = resolve_ok(None, Some(&global), &cli);
        assert_eq!(from_env.extra_ca_certs, Some(root.join("b.pem")));
        let rules: Vec<String> = from_env.connect_to.iter().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["y.com:443:127.0.0.1:2", "z.com:443:127.0.0.1:3"]);
        assert_eq!(from_env.keyring, KeyringMode::Auto);
        assert_eq!(from_env.proxy.port, 9100);
        assert_eq!(from_env.debug, global.debug);
    }

    #[test]
    fn machine_settings_alone_follow_the_same_precedence_as_a_run() {
        let home = tempfile::tempdir().unwrap();
        fs_err::write(home.path().join("a.pem"), PEM).unwrap();
        let global = parse_global(
            &home.path().join("config.yaml"),
            "extra_ca_certs: a.pem\nconnect_to: \"x.com:443:127.0.0.1:1\"\nkeyring: file\nmirrors:\n  npm: https://npm.corp.example\n",
        )
        .unwrap();
        let cli = CliOverrides {
            connect_to: Some("y.com:443:127.0.0.1:2".into()),
            ..CliOverrides::default()
        };
        let run = resolve_ok(None, Some(&global), &cli);
        let host = resolve_host(Some(&global), &cli).unwrap();
        assert_eq!(
            host,
            HostSettings {
                extra_ca_certs: run.extra_ca_certs,
                connect_to: run.connect_to,
                keyring: run.keyring,
                proxy: run.proxy,
                base_image: run.base_image,
                mirrors: run.mirrors,
            }
        );
        assert_eq!(host.mirrors.npm, "https://npm.corp.example");
        assert_eq!(host.connect_to[0].to_string(), "y.com:443:127.0.0.1:2");
        assert_eq!(host.keyring, KeyringMode::File);
        assert_eq!(
            resolve_host(None, &CliOverrides::default()).unwrap(),
            HostSettings {
                base_image: DEFAULT_BASE_IMAGE.to_owned(),
                ..HostSettings::default()
            }
        );

        let bad = CliOverrides {
            keyring: Some("fil".into()),
            connect_to: Some("nope".into()),
            ..CliOverrides::default()
        };
        insta::assert_snapshot!(resolve_host(None, &bad).unwrap_err().to_string(), @"
        2 problems in the configuration:
          `MOAT_CONNECT_TO`: invalid connect-to rule `nope`: expected 4 parts separated by `:`, found 1
            hint: write `HOST1:PORT1:HOST2:PORT2`, for example `api.example.com:443:127.0.0.1:8443`
          `MOAT_KEYRING`: unknown keyring `fil`: expected `auto` or `file`
            hint: did you mean `file`?
        ");
    }

    #[test]
    fn bad_flag_values_are_all_reported_by_flag() {
        let cli = CliOverrides {
            name: Some("run_x".into()),
            grants: vec!["github".into(), "Bad".into()],
            env: vec![("1X".into(), "secret-value".into())],
            command: vec!["".into()],
            mounts: vec!["/definitely/not/here:/x".into()],
            allow_hosts: vec!["*.*.x.com".into()],
            extra_ca_certs: Some("/definitely/not/here.pem".into()),
            connect_to: Some("nope".into()),
            keyring: Some("fil".into()),
            proxy_port: Some("http".into()),
            ..CliOverrides::default()
        };
        let errors = resolve(Path::new("/work/project"), None, None, &cli).unwrap_err();
        assert!(!errors.to_string().contains("secret-value"));
        insta::assert_snapshot!(errors.to_string(), @"
        10 problems in the configuration:
          `--name`: `run_x` is not a valid run name: names starting with `run_` would be mistaken for run ids
            hint: choose a name without the `run_` prefix
          `--grant`: invalid grant `Bad`: `Bad` is not a provider name
            hint: provider names are lowercase: `bad`
          `--env`: `1X` is not a valid variable name
            hint: use letters, digits and `_`, not starting with a digit, e.g. `MY_VAR`
          the command after `--` is empty
            hint: write the program to run after `--`, e.g. `moat run -- npm test`
          `--mount`: mount source `/definitely/not/here` does not exist
            hint: create it, or fix the path
          `--allow-host`: invalid host pattern `*.*.x.com`: only a leading `*.` is allowed as a wildcard
            hint: `*.example.com` already matches subdomains at every depth, such as `a.b.example.com`
          `MOAT_EXTRA_CA_CERTS`: CA file `/definitely/not/here.pem` does not exist
            hint: point it at a PEM file of CA certificates, e.g. `/usr/local/share/ca-certificates/corp.crt`
          `MOAT_CONNECT_TO`: invalid connect-to rule `nope`: expected 4 parts separated by `:`, found 1
            hint: write `HOST1:PORT1:HOST2:PORT2`, for example `api.example.com:443:127.0.0.1:8443`
          `MOAT_KEYRING`: unknown keyring `fil`: expected `auto` or `file`
            hint: did you mean `file`?
          `MOAT_PROXY_PORT`: `http` is not a port (1 to 65535)
        ");
    }

    #[test]
    fn load_reads_both_files_and_renders_the_result() {
        let home = tempfile::tempdir().unwrap();
        let workspace = tempfile::tempdir().unwrap();
        fs_err::create_dir(workspace.path().join("data")).unwrap();
        fs_err::write(
            home.path().join("config.yaml"),
            "mirrors:\n  node: https://mirror.example/node\nnetwork:\n  allow: [\"*.corp.example\"]\n",
        )
        .unwrap();
        fs_err::write(
            workspace.path().join("moat.yaml"),
            "\
name: demo
dependencies: [node@22, git]
grants: [anthropic]
env:
  DEBUG: 1
  GITHUB_TOKEN: ghp_do_not_print
mounts: [\"./data:/data:ro\"]
network:
  policy: strict
  allow: [api.example.com]
ports: {web: 3000}
hooks:
  pre_run: npm ci
container: {memory: 2g, cpus: 2}
claude:
  plugins: {\"review@custom\": true}
  marketplaces:
    custom: {source: github, repo: owner/repo, ref: main}
mcp:
  - name: linear
    url: https://mcp.linear.app/sse
    auth: {grant: mcp-linear, header: Authorization}
",
        )
        .unwrap();
        let cli = CliOverrides {
            grants: vec!["github".into()],
            command: vec!["claude".into(), "-p".into(), "hi".into()],
            ..CliOverrides::default()
        };
        let config = crate::load(workspace.path(), &home.path().join("config.yaml"), &cli)
            .unwrap()
            .config;
        let rendered = config
            .render()
            .replace(
                &fs_err::canonicalize(workspace.path())
                    .unwrap()
                    .display()
                    .to_string(),
                "<ws>",
            )
            .replace(&workspace.path().display().to_string(), "<ws>")
            .replace(&home.path().display().to_string(), "<home>");
        assert!(!rendered.contains("ghp_do_not_print"));
        insta::assert_snapshot!(rendered, @r#"
        workspace: <ws>
        files:
          workspace: <ws>/moat.yaml
          global: <home>/config.yaml
        name: demo
        command:
        - claude
        - -p
        - hi
        interactive: false
        dependencies:
        - node@22
        - git
        grants:
        - anthropic
        - github
        env:
          DEBUG: "1"
          GITHUB_TOKEN: <redacted>
        mounts:
        - source: <ws>/data
          target: /data
          read_only: true
        network:
          policy: strict
          allow:
          - "*.corp.example"
          - api.example.com
          passthrough: []
        ports:
          web: 3000
        snapshots:
          disabled: false
          triggers:
            disable_pre_run: false
            disable_git_commits: false
            disable_builds: false
            disable_agent_turns: false
            disable_idle: false
            idle_threshold_seconds: 30
          exclude:
            ignore_gitignore: false
            additional: []
          retention:
            max_count: 10
            delete_initial: false
        hooks:
          pre_run: npm ci
        container:
          memory_mb: 2048
          cpus: 2.0
          pids_limit: 4096
        claude:
          plugins:
            review@custom: true
          marketplaces:
            custom:
              source: github
              repo: owner/repo
              ref: main
          sync_logs: true
          mcp: {}
        mcp:
        - name: linear
          url: https://mcp.linear.app/sse
          auth:
            grant: mcp-linear
            header: Authorization
        extra_ca_certs: null
        connect_to: []
        mirrors:
          debian: http://deb.debian.org/debian
          debian_security: http://deb.debian.org/debian-security
          node: https://mirror.example/node
          python: null
          go: https://dl.google.com/go
          rust: https://static.rust-lang.org
          npm: https://registry.npmjs.org
          pypi: https://pypi.org/simple
          github: https://github.com
        keyring: auto
        debug:
          retention_days: 14
        proxy:
          port: 8080
        base_image: debian:bookworm-slim
        protect: []
        "#);
    }

    #[test]
    fn load_reports_problems_of_both_files_together() {
        let home = tempfile::tempdir().unwrap();
        let workspace = tempfile::tempdir().unwrap();
        fs_err::write(home.path().join("config.yaml"), "keyring: nope\n").unwrap();
        fs_err::write(workspace.path().join("agent.yaml"), "grant: [github]\n").unwrap();
        let errors = crate::load(
            workspace.path(),
            &home.path().join("config.yaml"),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
