//! Settings, resolved once at the top: the environment is read here and nowhere else,
//! flags and configuration files are merged (through `moat_config::load`, the one place
//! precedence lives), and the result is turned into the values the libraries take.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use moat_config::{CliOverrides, ConfigErrors, ResolvedConfig};
use moat_container::{BindMount, Docker, DockerEndpoint};
use moat_home::MoatHome;
use moat_image::{ImageSpec, ResolvedDependencies};
use moat_run::{RunRequest, RunStore};

use crate::cli::ExecArgs;
use crate::ui::UserError;
use moat_credentials::{KeyringMode, Secret};
use moat_providers::HttpOptions;

/// What moat reads of its process environment: variables, the home directory and the
/// working directory. Read once, here; nothing else in moat reads the environment (the
/// build enforces it: `clippy.toml` disallows `std::env::var*`, `current_dir` and
/// `home_dir` everywhere but in this function).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// The working directory, where relative paths on the command line start.
    pub cwd: Option<PathBuf>,
    /// `PATH`, `RUST_LOG`, and what reaches the OS keyring (the session bus): handed to a
    /// run's supervisor, which gets no other variable.
    pub path: Option<std::ffi::OsString>,
    pub rust_log: Option<String>,
    pub dbus_session_bus_address: Option<std::ffi::OsString>,
    pub xdg_runtime_dir: Option<std::ffi::OsString>,
    pub moat_home: Option<String>,
    pub docker_host: Option<String>,
    pub home: Option<PathBuf>,
    pub term: Option<String>,
    /// `NO_COLOR` set to anything (https://no-color.org): no colour, even on a terminal.
    pub no_color: bool,
    pub base_image: Option<String>,
    pub build_network: Option<String>,
    pub extra_ca_certs: Option<String>,
    pub connect_to: Option<String>,
    pub keyring: Option<String>,
    pub proxy_port: Option<String>,
    /// `SSH_AUTH_SOCK`: the user's SSH agent, whose keys `ssh:` grants use (handed to a
    /// run's supervisor as a setting, never as an inherited variable).
    pub ssh_auth_sock: Option<PathBuf>,
    /// Credentials `moat grant` takes from the environment; `Debug` shows no value.
    pub anthropic_api_key: Option<Secret>,
    pub github_token: Option<Secret>,
    pub gh_token: Option<Secret>,
    pub openai_api_key: Option<Secret>,
    /// Every variable, for the `token_env` of YAML providers (known only once the
    /// provider files are read); `Debug` shows names only.
    pub token_vars: TokenVars,
}

impl Environment {
    #[allow(clippy::disallowed_methods)] // the one place the environment is read
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let var_os = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            cwd: std::env::current_dir().ok(),
            path: var_os("PATH"),
            rust_log: var("RUST_LOG"),
            dbus_session_bus_address: var_os("DBUS_SESSION_BUS_ADDRESS"),
            xdg_runtime_dir: var_os("XDG_RUNTIME_DIR"),
            moat_home: var("MOAT_HOME"),
            docker_host: var("DOCKER_HOST"),
            home: std::env::home_dir(),
            term: var("TERM"),
            no_color: var("NO_COLOR").is_some(),
            base_image: var("MOAT_BASE_IMAGE"),
            build_network: var("MOAT_BUILD_NETWORK"),
            extra_ca_certs: var("MOAT_EXTRA_CA_CERTS"),
            connect_to: var("MOAT_CONNECT_TO"),
            keyring: var("MOAT_KEYRING"),
            proxy_port: var("MOAT_PROXY_PORT"),
            ssh_auth_sock: var_os("SSH_AUTH_SOCK").map(PathBuf::from),
            anthropic_api_key: var("ANTHROPIC_API_KEY").map(Secret::new),
            github_token: var("GITHUB_TOKEN").map(Secret::new),
            gh_token: var("GH_TOKEN").map(Secret::new),
            openai_api_key: var("OPENAI_API_KEY").map(Secret::new),
            token_vars: TokenVars::read(),
        }
    }

    /// moat's own variables as the configuration's overrides (`MOAT_EXTRA_CA_CERTS`,
    /// `MOAT_CONNECT_TO`, `MOAT_KEYRING`, `MOAT_PROXY_PORT`, `MOAT_BASE_IMAGE`), for
    /// `moat_config` to apply with its precedence.
    pub fn overrides(&self) -> CliOverrides {
        CliOverrides {
            extra_ca_certs: self.extra_ca_certs.as_ref().map(PathBuf::from),
            connect_to: self.connect_to.clone(),
            keyring: self.keyring.clone(),
            proxy_port: self.proxy_port.clone(),
            base_image: self.base_image.clone(),
            ..CliOverrides::default()
        }
    }
}

/// What every command works with.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: RunStore,
    pub endpoint: DockerEndpoint,
    pub env: Environment,
}

impl Context {
    pub fn new(env: &Environment) -> Result<Self> {
        let home = MoatHome::resolve(
            env.moat_home.as_deref(),
            env.home.as_deref(),
            env.cwd.as_deref(),
        )?;
        Ok(Context {
            store: RunStore::new(home),
            endpoint: moat_container::resolve_endpoint(
                env.docker_host.as_deref(),
                env.home.as_deref(),
            ),
            env: env.clone(),
        })
    }

    pub fn home(&self) -> &MoatHome {
        self.store.home()
    }

    pub async fn docker(&self) -> Result<Docker> {
        Ok(Docker::connect(self.endpoint.clone()).await?)
    }
}

/// A run, fully resolved: what to ask `moat-run` for and the merged configuration it came
/// from (the request holds the image and its plan).
#[derive(Debug)]
pub struct RunPlan {
    pub request: RunRequest,
    pub config: ResolvedConfig,
    /// Things to tell the user before the run starts (a credential about to expire).
    pub warnings: Vec<String>,
    /// The workspace file and whether the user trusts it (`None`: there is none).
    pub trust: Option<crate::trust::FileTrust>,
}

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Showing the settings (`moat config`, `--dry-run`): grants are only listed, and an
    /// untrusted workspace file is shown as such, not refused.
    Show,
    /// A run: the workspace file must be trusted (asked at a terminal, refused without
    /// one), and the grants are checked against the credential store (present, not
    /// expired) and turn into the container's placeholders.
    Run,
}

/// Merge flags, the workspace file, the global file and the environment into a run plan,
/// rejecting bad input before anything starts.
pub fn plan_run(
    ctx: &Context,
    path: Option<PathBuf>,
    exec: &ExecArgs,
    command: Vec<String>,
    purpose: Purpose,
) -> Result<RunPlan> {
    let mut plan = plan_agent_run(ctx, path, exec, command, purpose, &NoAgent)?;
    // `claude` settings are `moat claude`'s: said, not silently dropped.
    if !plan.config.claude.mcp.is_empty() {
        plan.warnings.push(
            "`claude.mcp` is for `moat claude`: `moat run` does not configure these MCP servers"
                .to_owned(),
        );
    }
    Ok(plan)
}

/// What an agent command (`moat claude`) adds to every run of its own. Its parts go into
/// the plan before the plan is finished, so the request is made once, whole.
pub trait Agent {
    /// Dependencies the image always has; a declared one of the same name (with its
    /// version) takes the place of each.
    fn dependencies(&self) -> &'static [&'static str] {
        &[]
    }

    /// Grants the run always has, before the configuration's and `--grant`s.
    fn grants(&self) -> &'static [&'static str] {
        &[]
    }

    /// Grants the configuration implies for this agent (`claude.mcp.<name>.grant`),
    /// added to the run's own once the configuration is loaded.
    fn config_grants(&self, _config: &ResolvedConfig) -> Vec<String> {
        Vec::new()
    }

    /// The agent's own part of the run, once the settings, the grants' placeholders and
    /// the image's owner are known.
    fn contribute(&self, _inputs: &AgentInputs<'_>) -> Result<AgentParts> {
        Ok(AgentParts::default())
    }
}

/// A plain `moat run`.
struct NoAgent;

impl Agent for NoAgent {}

/// What an agent is told about the run it joins.
#[derive(Debug)]
pub struct AgentInputs<'a> {
    pub workspace: &'a std::path::Path,
    /// The run's merged configuration.
    pub config: &'a ResolvedConfig,
    /// The container's credential placeholders (variable, value); empty when the plan only
    /// shows settings.
    pub placeholders: &'a [(String, String)],
    /// The same variables by the grant (as written) they belong to.
    pub grant_env: &'a [(String, Vec<(String, String)>)],
    /// The remote MCP servers (top-level `mcp`), routed through the run's proxy.
    pub mcp: &'a [moat_run::McpRoute],
    /// The header placeholders of the servers with `auth`; empty when the plan only shows
    /// settings.
    pub mcp_placeholders: &'a [moat_providers::McpPlaceholder],
    /// What the run's proxy will enforce, for host-side fetches made on the run's behalf.
    pub egress: &'a moat_run::EgressSettings,
    /// The grants' proxy rules, real secrets included; empty when the plan only shows
    /// settings.
    pub grant_rules: &'a [moat_proxy::GrantRule],
    /// `--rebuild`: fetch again what is cached.
    pub rebuild: bool,
    /// Whether the run is to happen (`false`: the plan only shows settings; nothing is
    /// fetched).
    pub acting: bool,
    pub moat_home: &'a moat_home::MoatHome,
}

/// What an agent adds to a run.
#[derive(Debug, Default)]
pub struct AgentParts {
    pub env: Vec<(String, String)>,
    pub home_files: Vec<moat_run::HomeFile>,
    /// Host directories the run gets read-only copies of (installed plugins).
    pub seed: moat_run::SeedDir,
    pub mounts: Vec<BindMount>,
    pub session: Option<moat_run::AgentSession>,
    /// Replaces the configuration's `interactive`.
    pub interactive: Option<bool>,
    pub no_stdin: bool,
    pub warnings: Vec<String>,
}

/// [`plan_run`] for an agent command: its implied dependencies and grants, and its parts.
pub fn plan_agent_run(
    ctx: &Context,
    path: Option<PathBuf>,
    exec: &ExecArgs,
    command: Vec<String>,
    purpose: Purpose,
    agent: &dyn Agent,
) -> Result<RunPlan> {
    let cwd = ctx
        .env
        .cwd
        .clone()
        .context("reading the current directory")?;
    let workspace = moat_run::Workspace::resolve(&path.unwrap_or_else(|| cwd.clone()), ctx.home())?;
    let mut env = Vec::new();
    let mut unset = Vec::new();
    for pair in &exec.settings.env {
        match parse_env(pair, &ctx.env.token_vars)? {
            Some(pair) => env.push(pair),
            None => unset.push(pair.clone()),
        }
    }
    let overrides = CliOverrides {
        name: exec.name.clone(),
        grants: agent
            .grants()
            .iter()
            .map(|g| (*g).to_owned())
            .chain(exec.settings.grant.iter().cloned())
            .collect(),
        env,
        interactive: exec.settings.interactive.then_some(true),
        command,
        // `--mount` paths are typed relative to where the user stands, not the workspace.
        mounts: exec
            .settings
            .mount
            .iter()
            .map(|m| absolute_mount(m, &cwd))
            .collect(),
        allow_hosts: exec.settings.allow_host.clone(),
        no_snapshots: exec.settings.no_snapshots,
        ..ctx.env.overrides()
    };
    let moat_config::Loaded {
        config,
        workspace_file,
    } = moat_config::load(workspace.path(), &ctx.home().config_file(), &overrides)?;
    let mut config = config;
    for grant in agent.config_grants(&config) {
        if !config.grants.contains(&grant) {
            config.grants.push(grant);
        }
    }
    let mut warnings = config.warnings.clone();
    warnings.extend(
        unset
            .iter()
            .map(|key| format!("`-e {key}`: {key} is not set here, so the run does not get it")),
    );
    // A setting no run carries out yet is refused, never accepted and ignored; showing
    // the settings lists it.
    match purpose {
        Purpose::Run => {
            if let Some(errors) = ConfigErrors::from_vec(config.not_yet.clone()) {
                return Err(errors.into());
            }
        }
        Purpose::Show => warnings.extend(config.not_yet.iter().map(ToString::to_string)),
    }
    // Dependencies are checked first: a file that does not validate is reported as such,
    // before any trust question.
    // An `ssh:` grant needs an SSH client in the image: `git` brings OpenSSH's with it,
    // and git over SSH is what the grant is for.
    let mut implied: Vec<&str> = agent.dependencies().to_vec();
    if config.grants.iter().any(|g| g.trim().starts_with("ssh:")) && !implied.contains(&"git") {
        implied.push("git");
    }
    let image_spec = image_spec(ctx, workspace.path(), &config, &implied)?;
    // Nothing the file asks for is looked at (credentials) or acted on (image hooks)
    // before the user trusts it.
    let trust = crate::trust::gate(
        ctx,
        workspace.path(),
        workspace_file.as_ref(),
        exec.trust,
        purpose == Purpose::Run,
    )?;
    let proxy_token = moat_proxy::Secret::random_token().context("making the run's proxy token")?;
    let mut env: Vec<(String, String)> = config
        .env
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut allow = config.network.allow.clone();
    let mut placeholders = Vec::new();
    let mut grant_env = Vec::new();
    let mut ssh = None;
    let mut grant_rules = Vec::new();
    if purpose == Purpose::Run && !config.grants.is_empty() {
        let registry = provider_registry(ctx)?;
        let grants = moat_providers::grants_for_run(
            &credential_store(ctx, config.keyring)?,
            &registry,
            &config.grants,
            proxy_token.expose(),
            jiff::Timestamp::now(),
        )
        .map_err(|e| unknown_provider(e, &registry, workspace_file.as_ref()))?;
        for host in grants.hosts {
            if !allow.contains(&host) {
                allow.push(host);
            }
        }
        placeholders = grants.env;
        grant_env = grants.env_by_grant;
        grant_rules = grants.rules;
        warnings.extend(grants.warnings);
        if !grants.ssh.is_empty() {
            ssh = Some(ssh_settings(ctx, &grants.ssh)?);
        }
    }
    // Remote MCP servers: each host is allowed (a strict policy included), and each
    // server with `auth` has its credential checked now and a placeholder for the agent.
    let (mcp, mcp_connect_to) = mcp_routes(&config.mcp)?;
    for route in &mcp {
        if !allow.contains(&route.host) {
            allow.push(route.host.clone());
        }
    }
    let mut mcp_placeholders = Vec::new();
    let servers = mcp_server_auths(&mcp);
    if purpose == Purpose::Run && !servers.is_empty() {
        let run_mcp = moat_providers::mcp_for_run(
            &credential_store(ctx, config.keyring)?,
            &servers,
            proxy_token.expose(),
            jiff::Timestamp::now(),
        )?;
        warnings.extend(run_mcp.warnings);
        mcp_placeholders = run_mcp.placeholders;
    }
    let egress = moat_run::EgressSettings {
        policy: config.network.policy,
        allow,
        passthrough: config.network.passthrough.clone(),
        connect_to: config
            .connect_to
            .iter()
            .cloned()
            .chain(mcp_connect_to)
            .collect(),
        extra_ca_file: config.extra_ca_certs.clone(),
        grants: config.grants.clone(),
        keyring: config.keyring,
        mcp,
    };
    let parts = agent.contribute(&AgentInputs {
        workspace: workspace.path(),
        config: &config,
        placeholders: &placeholders,
        grant_env: &grant_env,
        mcp: &egress.mcp,
        mcp_placeholders: &mcp_placeholders,
        egress: &egress,
        grant_rules: &grant_rules,
        rebuild: exec.rebuild,
        acting: purpose == Purpose::Run,
        moat_home: ctx.home(),
    })?;
    warnings.extend(parts.warnings);
    env.extend(parts.env);
    // Placeholders win over a same-named variable: a real token must never be there.
    env.retain(|(k, _)| !placeholders.iter().any(|(p, _)| p == k));
    env.extend(placeholders);
    // Before Docker is asked: past the kernel's limits the container would not even start
    // (`argument list too long`), and say nothing of which variable.
    check_env_size(&env)?;
    let mounts = config
        .mounts
        .iter()
        .map(|m| BindMount {
            source: m.source.display().to_string(),
            target: m.target.clone(),
            read_only: m.read_only,
        })
        .chain(parts.mounts)
        .collect();
    // Refusals no file can override: a trusted file cannot lift them either.
    let docker_socket = ctx.endpoint.host.strip_prefix("unix://").map(PathBuf::from);
    let (mounts, mount_warnings) =
        moat_run::check_mounts(ctx.home(), mounts, docker_socket.as_deref())?;
    warnings.extend(mount_warnings);
    let request = RunRequest {
        workspace,
        command: config
            .command
            .as_ref()
            .map(|c| c.argv())
            .unwrap_or_default(),
        name: config.name.clone(),
        replace: exec.replace,
        env,
        interactive: parts.interactive.unwrap_or(config.interactive),
        detach: exec.detach,
        keep: exec.keep,
        rebuild: exec.rebuild,
        term: ctx.env.term.clone(),
        image: moat_run::RunImage::new(image_spec),
        build_network: ctx.env.build_network.clone(),
        mounts,
        memory_mb: config.container.memory_mb,
        cpus: config.container.cpus,
        pids_limit: config.container.pids_limit,
        protect: config.protect.clone(),
        config_file: workspace_file.as_ref().map(|f| f.name().to_owned()),
        config_hash: workspace_file
            .as_ref()
            .map(|f| moat_trust::content_hash(f.text.as_bytes())),
        snapshots: snapshot_plan(&config.snapshots, &config.protect),
        egress,
        proxy_token,
        home_files: parts.home_files,
        agent: parts.session,
        no_stdin: parts.no_stdin,
        ssh,
        seed: parts.seed,
    };
    Ok(RunPlan {
        request,
        config,
        warnings,
        trust,
    })
}

/// The domain under which the container reaches MCP servers on the user's machine.
pub const LOCAL_MCP_DOMAIN: &str = "mcp.moat.internal";

/// The workspace file's remote MCP servers as the run's proxy sees them, and the
/// `connect_to` rules that route the ones on the user's machine (`http://localhost:PORT`)
/// to its loopback: each gets a name of its own, `NAME.mcp.moat.internal:PORT`, so the
/// proxy reaches that one port and the host's other services stay refused.
fn mcp_routes(
    servers: &[moat_config::RemoteMcpServer],
) -> Result<(Vec<moat_run::McpRoute>, Vec<moat_proxy::ConnectTo>)> {
    let mut routes = Vec::new();
    let mut connect_to = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for server in servers {
        let (url, local_url) = match moat_config::local_mcp_url(&server.url) {
            Some(moat_config::LocalUrl {
                connect_to: to_host,
                port,
                rest,
            }) => {
                let mut label: String = server
                    .name
                    .to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect::<String>()
                    .trim_matches('-')
                    .chars()
                    .take(50)
                    .collect();
                if label.is_empty() {
                    label = "server".into();
                }
                let base = label.clone();
                let mut n = 2;
                while labels.contains(&label) {
                    label = format!("{base}-{n}");
                    n += 1;
                }
                labels.push(label.clone());
                let name = format!("{label}.{LOCAL_MCP_DOMAIN}");
                let rule = moat_proxy::ConnectTo::parse(&format!("{name}:{port}:{to_host}:{port}"))
                    .map_err(|e| UserError::new(format!("MCP server `{}`: {e}", server.name)))?;
                connect_to.push(rule);
                (
                    format!("http://{name}:{port}{rest}"),
                    Some(server.url.clone()),
                )
            }
            None => (server.url.clone(), None),
        };
        let host = moat_providers::url_host(&url).ok_or_else(|| {
            UserError::new(format!(
                "MCP server `{}`: moat cannot tell the host of `{}`",
                server.name, server.url
            ))
            .hint("write the URL as `https://HOST[:PORT]/PATH`")
        })?;
        routes.push(moat_run::McpRoute {
            name: server.name.clone(),
            url,
            local_url,
            host,
            auth: server.auth.as_ref().map(|a| moat_run::McpRouteAuth {
                grant: a.grant.clone(),
                header: a.header.clone(),
            }),
        });
    }
    Ok((routes, connect_to))
}

/// The servers of `routes` that have `auth`, as `moat_providers::mcp_for_run` takes them.
pub fn mcp_server_auths(routes: &[moat_run::McpRoute]) -> Vec<moat_providers::McpServerAuth<'_>> {
    routes
        .iter()
        .filter_map(|route| {
            let auth = route.auth.as_ref()?;
            Some(moat_providers::McpServerAuth {
                server: &route.name,
                host: &route.host,
                grant: &auth.grant,
                header: &auth.header,
            })
        })
        .collect()
}

/// An unknown provider in `grants` said as the file's other mistakes are: where it is
/// written (`moat.yaml:3:12`, when the workspace file has it) and the closest provider
/// moat knows. Other errors pass as they are.
fn unknown_provider(
    err: moat_providers::ProviderError,
    registry: &moat_providers::ProviderRegistry,
    file: Option<&moat_config::WorkspaceFile>,
) -> anyhow::Error {
    let moat_providers::ProviderError::UnknownProvider { name } = &err else {
        return err.into();
    };
    let known: Vec<&str> = registry
        .list()
        .iter()
        .flat_map(|p| std::iter::once(p.name()).chain(p.aliases()))
        .map(|n| n.as_str())
        .collect();
    let closest = known
        .iter()
        .map(|k| (moat_text::edit_distance(k, name), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min();
    let place = file.and_then(|f| {
        locate_word(&f.text, name).map(|(line, col)| format!("{}:{line}:{col}: ", f.path.display()))
    });
    let error = UserError::new(match place {
        Some(place) => format!("{place}unknown provider `{name}` in `grants`"),
        None => format!("unknown provider `{name}`"),
    });
    match closest {
        Some((_, close)) => error.hint(format!(
            "did you mean `{close}`? `moat grant providers` lists the providers moat knows"
        )),
        None => match err.hint() {
            Some(hint) => error.hint(hint),
            None => error,
        },
    }
    .into()
}

/// The line and column (1-based) where `word` first stands alone in `text`, outside
/// comments: not inside a longer name.
fn locate_word(text: &str, word: &str) -> Option<(usize, usize)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for (index, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        if code.trim_start().starts_with('#') {
            continue;
        }
        let mut from = 0;
        while let Some(at) = code[from..].find(word).map(|i| i + from) {
            let before = code[..at].chars().next_back();
            let after = code[at + word.len()..].chars().next();
            if !before.is_some_and(is_name) && !after.is_some_and(is_name) {
                return Some((index + 1, code[..at].chars().count() + 1));
            }
            from = at + word.len();
        }
    }
    None
}

/// What the run's SSH agent needs: the user's agent (which must be running and hold
/// every granted key, checked now so the run does not start to fail at its first
/// `git push`) and the grants.
fn ssh_settings(
    ctx: &Context,
    grants: &[moat_credentials::SshGrant],
) -> Result<moat_run::SshSettings> {
    let socket = ctx
        .env
        .ssh_auth_sock
        .clone()
        .ok_or(moat_ssh::SshError::NoAgent)?;
    let held = moat_ssh::list_identities_blocking(&socket).map_err(|e| {
        moat_ssh::SshError::AgentUnreachable {
            path: socket.clone(),
            reason: e.to_string(),
        }
    })?;
    for grant in grants {
        let wanted = moat_ssh::PublicKey::from_openssh(&grant.key)
            .map(|(k, _)| k.blob().to_vec())
            .unwrap_or_default();
        if !held.iter().any(|id| id.key == wanted) {
            return Err(moat_ssh::SshError::GrantedKeyMissing {
                grant: grant.name(),
                fingerprint: grant.fingerprint.clone(),
            }
            .into());
        }
    }
    Ok(moat_run::SshSettings {
        upstream: socket,
        grants: grants
            .iter()
            .map(|g| moat_run::SshRunGrant {
                host: g.host.clone(),
                port: g.port,
                key: g.key.clone(),
                host_keys: g.host_keys.clone(),
            })
            .collect(),
    })
}

/// The credential store, with its key from the keyring or the key file as `keyring` says.
pub fn credential_store(
    ctx: &Context,
    keyring: KeyringMode,
) -> Result<moat_credentials::CredentialStore> {
    credential_store_in(ctx.home(), keyring)
}

/// The credential store under `home`.
pub fn credential_store_in(
    home: &MoatHome,
    keyring: KeyringMode,
) -> Result<moat_credentials::CredentialStore> {
    let keys = moat_credentials::ChainKeySource::for_home(home, keyring);
    Ok(moat_credentials::CredentialStore::open(home, &keys)?)
}

/// Built-in providers and the user's own from `$MOAT_HOME/providers/*.yaml`.
pub fn provider_registry(ctx: &Context) -> Result<moat_providers::ProviderRegistry> {
    provider_registry_in(ctx.home())
}

pub fn provider_registry_in(home: &MoatHome) -> Result<moat_providers::ProviderRegistry> {
    Ok(moat_providers::ProviderRegistry::load(
        &home.providers_dir(),
    )?)
}

/// The image a workspace's configuration asks for.
fn image_spec(
    ctx: &Context,
    workspace: &std::path::Path,
    config: &ResolvedConfig,
    implied: &[&str],
) -> Result<ImageSpec> {
    let mut declared = Vec::new();
    let mut problems = Vec::new();
    for dep in &config.dependencies {
        match moat_image::Dependency::parse(&dep.spec) {
            Ok(parsed) => declared.push(parsed),
            Err(e) => {
                let mut error = dep.location.error(e.to_string());
                if let Some(hint) = e.hint() {
                    error = error.with_hint(hint);
                }
                problems.push(error);
            }
        }
    }
    if let Some(errors) = ConfigErrors::from_vec(problems) {
        return Err(errors.into());
    }
    for name in implied {
        let dependency = moat_image::Dependency::parse(name).expect("implied dependencies parse");
        if !declared.iter().any(|d| d.name() == dependency.name()) {
            declared.push(dependency);
        }
    }
    let dependencies = ResolvedDependencies::resolve(&declared).map_err(|e| {
        let mut error = UserError::new(format!("dependencies: {e}"));
        if let Some(hint) = e.hint() {
            error = error.hint(hint);
        }
        error
    })?;
    let extra_ca =
        match &config.extra_ca_certs {
            Some(path) => {
                let pem = moat_home::read_bounded(path, moat_home::FileKind::CA_CERTIFICATES)?;
                Some(moat_image::ExtraCa::from_pem(&pem).with_context(|| {
                    format!("reading extra CA certificates `{}`", path.display())
                })?)
            }
            None => None,
        };
    let owner = fs_err::metadata(workspace)
        .with_context(|| format!("reading `{}`", workspace.display()))?;
    let mirrors = config.mirrors.clone();
    let spec = ImageSpec::new(config.base_image.clone(), owner.uid(), owner.gid())
        .with_dependencies(dependencies)
        .with_extra_ca(extra_ca)
        .with_hooks(moat_image::Hooks {
            post_build_root: config.hooks.post_build_root.clone(),
            post_build: config.hooks.post_build.clone(),
            pre_run: config.hooks.pre_run.clone(),
        })
        .with_mirrors(mirrors);
    // Every run reaches the outside only through its proxy: the image trusts the proxy's CA
    // (made here on first use; its key never leaves the host).
    let ca_dir = ctx.home().proxy_ca_dir();
    let ca = moat_proxy::CertificateAuthority::load_or_create(&ca_dir)
        .with_context(|| format!("preparing the proxy CA in `{}`", ca_dir.display()))?;
    Ok(spec.with_proxy_ca(ca.cert_pem()))
}

/// The download mirrors of `$MOAT_HOME/config.yaml`, for commands without a workspace
/// (`moat deps`): the same file and checks a run uses.
pub fn host_mirrors(ctx: &Context) -> Result<moat_image::Mirrors> {
    let host = moat_config::load_host(&ctx.home().config_file(), &ctx.env.overrides())?;
    Ok(host.mirrors)
}

/// The run's snapshot plan from its settings; `None` when snapshots are off
/// (`snapshots.disabled`, `--no-snapshots`).
fn snapshot_plan(
    settings: &moat_config::SnapshotSettings,
    protect: &[String],
) -> Option<moat_run::SnapshotPlan> {
    if settings.disabled {
        return None;
    }
    let t = &settings.triggers;
    Some(moat_run::SnapshotPlan {
        respect_gitignore: !settings.exclude.ignore_gitignore,
        exclude: settings.exclude.additional.clone(),
        pre_run: !t.disable_pre_run,
        git_commits: !t.disable_git_commits,
        idle_after_seconds: (!t.disable_idle).then_some(t.idle_threshold_seconds),
        agent_turns: !t.disable_agent_turns,
        max_count: settings.retention.max_count,
        delete_initial: settings.retention.delete_initial,
        protected: moat_config::WORKSPACE_FILE_NAMES
            .iter()
            .map(|name| (*name).to_owned())
            .chain(protect.iter().cloned())
            .collect(),
    })
}

/// `SRC:DST[:MODE]` with a relative SRC made absolute from `cwd`.
fn absolute_mount(mount: &str, cwd: &std::path::Path) -> String {
    match mount.split_once(':') {
        Some((src, rest)) if !src.is_empty() && !src.starts_with('/') => {
            format!("{}:{rest}", cwd.join(src).display())
        }
        _ => mount.to_owned(),
    }
}

/// `KEY=VALUE` with a POSIX variable name, or `KEY` alone for the value KEY has here (as
/// `docker run -e KEY`): `None` when KEY is not set here, and the run does not get it.
pub fn parse_env(pair: &str, host: &TokenVars) -> Result<Option<(String, String)>, UserError> {
    let Some((key, value)) = pair.split_once('=') else {
        if moat_config::is_env_name(pair) {
            return Ok(host
                .get(pair)
                .map(|value| (pair.to_owned(), value.expose().to_owned())));
        }
        return Err(UserError::new(format!(
            "invalid --env `{}`: expected KEY=VALUE, or a variable's name to pass its value",
            redact_env(pair)
        ))
        .hint("for example `-e DEBUG=1`, or `-e DEBUG` for the value DEBUG has here"));
    };
    if !moat_config::is_env_name(key) {
        return Err(UserError::new(format!(
            "invalid --env key `{key}`: not a valid variable name"
        ))
        .hint("names are letters, digits and `_`, not starting with a digit, e.g. `MY_VAR=1`"));
    }
    Ok(Some((key.to_owned(), value.to_owned())))
}

/// The largest `NAME=value` a process can be given: the kernel's `MAX_ARG_STRLEN`
/// (32 pages), counting the terminating NUL.
pub const MAX_ENV_VAR_BYTES: usize = 128 * 1024;
/// The most a run's variables may take together. The kernel allows about 2 MiB for a
/// command's arguments and environment (a quarter of the default 8 MiB stack); half of it
/// leaves room for the command line and the variables moat itself adds.
pub const MAX_ENV_TOTAL_BYTES: usize = 1024 * 1024;

/// The run's variables fit what the container's command can be started with. Errors
/// name the variable and sizes, never the value: values may be secrets.
pub fn check_env_size(env: &[(String, String)]) -> Result<(), UserError> {
    let size = |(k, v): &(String, String)| k.len() + 1 + v.len() + 1;
    let hint = "pass large data as a file instead: put it in the workspace (or `--mount` it) \
        and give the variable its path";
    if let Some(var) = env.iter().find(|var| size(var) > MAX_ENV_VAR_BYTES) {
        return Err(UserError::new(format!(
            "the environment variable `{}` is too large for a container: {}, where Linux \
                starts a command only with variables of at most {}",
            var.0,
            moat_home::human_bytes(size(var) as u64),
            moat_home::human_bytes(MAX_ENV_VAR_BYTES as u64)
        ))
        .hint(hint));
    }
    let total: usize = env.iter().map(size).sum();
    if total > MAX_ENV_TOTAL_BYTES {
        let mut largest: Vec<&(String, String)> = env.iter().collect();
        largest.sort_by_key(|var| std::cmp::Reverse(size(var)));
        let names: Vec<String> = largest
            .iter()
            .take(3)
            .map(|v| format!("`{}`", v.0))
            .collect();
        return Err(UserError::new(format!(
            "the run's environment is too large: {} in {} variables (the largest: {}), where \
                moat allows {} in all",
            moat_home::human_bytes(total as u64),
            env.len(),
            names.join(", "),
            moat_home::human_bytes(MAX_ENV_TOTAL_BYTES as u64)
        ))
        .hint(hint));
    }
    Ok(())
}

/// A malformed `--env` may hold a secret; show only enough to recognise it.
fn redact_env(pair: &str) -> String {
    let shown: String = pair.chars().take(3).collect();
    if pair.chars().count() > 3 {
        format!("{shown}…")
    } else {
        shown
    }
}

impl Environment {
    /// The value of the credential variable `name` (`GITHUB_TOKEN`, a YAML provider's
    /// `token_env`), as read at start-up; empty values count as unset.
    pub fn token(&self, name: &str) -> Option<&Secret> {
        match name {
            "ANTHROPIC_API_KEY" => self.anthropic_api_key.as_ref(),
            "GITHUB_TOKEN" => self.github_token.as_ref(),
            "GH_TOKEN" => self.gh_token.as_ref(),
            "OPENAI_API_KEY" => self.openai_api_key.as_ref(),
            other => self.token_vars.get(other),
        }
    }
}

/// The environment's variables as secrets: only names show in `Debug`.
#[derive(Clone, Default)]
pub struct TokenVars(std::collections::BTreeMap<String, Secret>);

impl TokenVars {
    #[allow(clippy::disallowed_methods)] // part of `Environment::read`
    fn read() -> Self {
        TokenVars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, Secret::new(v)))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        TokenVars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Secret::new(*v)))
                .collect(),
        )
    }
}

impl std::fmt::Debug for TokenVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenVars({} variables)", self.0.len())
    }
}

/// What `moat grant` needs besides the environment's tokens: where the store's key may
/// live, and how validation requests reach the services.
#[derive(Debug, Clone)]
pub struct GrantSettings {
    pub keyring: KeyringMode,
    pub http: HttpOptions,
}

/// `MOAT_KEYRING`, else the global file's `keyring:`, else the keyring with the file as
/// fallback (the precedence of `moat_config::resolve_host`).
pub fn keyring_mode(
    env: &Environment,
    global: Option<&moat_config::GlobalConfig>,
) -> Result<KeyringMode> {
    // Only the keyring's own variable: a bad value elsewhere must not hide the key.
    let overrides = CliOverrides {
        keyring: env.keyring.clone(),
        ..CliOverrides::default()
    };
    Ok(moat_config::resolve_host(global, &overrides)?.keyring)
}

/// `MOAT_KEYRING`, `MOAT_EXTRA_CA_CERTS` and `MOAT_CONNECT_TO`, each falling back to the
/// global `config.yaml` (`keyring:`, `extra_ca_certs:`, `connect_to:`), with the
/// precedence and checks of a run (`moat_config::load_host`).
pub fn grant_settings(ctx: &Context) -> Result<GrantSettings> {
    let host = moat_config::load_host(&ctx.home().config_file(), &ctx.env.overrides())?;
    let keyring = host.keyring;
    let extra_roots_pem = match &host.extra_ca_certs {
        Some(path) => moat_home::read_bounded(path, moat_home::FileKind::CA_CERTIFICATES)?,
        None => Vec::new(),
    };
    Ok(GrantSettings {
        keyring,
        http: HttpOptions {
            extra_roots_pem,
            connect_to: host.connect_to,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs() {
        let host = TokenVars::from_pairs(&[("HOSTVAR", "from-host")]);
        let parse = |pair| parse_env(pair, &host);
        let pair = |k: &str, v: &str| Some((k.to_owned(), v.to_owned()));
        assert_eq!(parse("A=1").unwrap(), pair("A", "1"));
        assert_eq!(parse("_x=a=b").unwrap(), pair("_x", "a=b"));
        assert_eq!(parse("EMPTY=").unwrap(), pair("EMPTY", ""));
        // A name alone passes the value it has here, as `docker run -e NAME` does.
        assert_eq!(parse("HOSTVAR").unwrap(), pair("HOSTVAR", "from-host"));
        assert_eq!(parse("NOT_SET_HERE").unwrap(), None);
        for bad in ["1A=x", "A-B=x", "=x", "A B=x", "A-B"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_sizes_within_the_kernel_limits() {
        let var = |name: &str, len: usize| (name.to_owned(), "s".repeat(len));
        assert!(check_env_size(&[var("A", 100), var("B", MAX_ENV_VAR_BYTES - 3)]).is_ok());

        let err = check_env_size(&[var("A", 1), var("BIG", 1024 * 1024)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the environment variable `BIG` is too large for a container: 1.0 MiB, where \
                Linux starts a command only with variables of at most 128 KiB"
        );
        assert!(!err.to_string().contains("sss"), "never the value");

        let many: Vec<_> = (0..10).map(|i| var(&format!("V{i}"), 120 * 1024)).collect();
        let err = check_env_size(&many).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the run's environment is too large: 1.2 MiB in 10 variables"),
            "{err}"
        );
        let hint = crate::ui::error_hint(&err.into()).unwrap();
        assert!(hint.contains("as a file"), "{hint}");
    }

    #[test]
    fn a_word_is_found_where_it_stands_alone() {
        let text = "# grants: [githb]\nname: githb-x\ngrants: [github, githb]\n";
        assert_eq!(locate_word(text, "githb"), Some((3, 18)));
        assert_eq!(locate_word(text, "nope"), None);
    }

    #[test]
    fn a_bad_env_never_echoes_its_value() {
        let e = parse_env("sk-ant-secret-token", &TokenVars::from_pairs(&[])).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn mount_sources_are_relative_to_the_current_directory() {
        let cwd = std::path::Path::new("/home/u/project");
        assert_eq!(
            absolute_mount("data:/data:ro", cwd),
            "/home/u/project/data:/data:ro"
        );
        assert_eq!(absolute_mount("/abs:/data", cwd), "/abs:/data");
    }

    #[test]
    fn credential_variables_never_show_in_debug() {
        let env = Environment {
            github_token: Some(Secret::new("ghp_SECRET")),
            token_vars: TokenVars::from_pairs(&[("ACME_TOKEN", "acme-SECRET")]),
            ..Environment::default()
        };
        let debug = format!("{env:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert_eq!(env.token("GITHUB_TOKEN").unwrap().expose(), "ghp_SECRET");
        assert_eq!(env.token("ACME_TOKEN").unwrap().expose(), "acme-SECRET");
        assert!(env.token("GH_TOKEN").is_none());
    }
}
