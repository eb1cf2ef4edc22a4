//! `moat claude [WORKSPACE] [-p PROMPT]`, `moat resume`, `moat claude sessions`: Claude Code
//! in a container, with the workspace's conversation logs kept on the host.
//!
//! A `moat claude` run is a `moat run` with more decided for it: the image has node, git
//! and Claude Code; the `anthropic` grant is implied (the container sees a placeholder);
//! the host's onboarding state (allow-listed keys only) goes into the container's
//! `~/.claude.json`; and `~/.claude/projects/<workspace>` is mounted so conversations
//! persist and can be continued.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use moat_claude::{ClaudeCommand, Conversation};
use moat_container::BindMount;
use moat_run::{AgentSession, HomeFile, RunError, RunRecord, SessionId};
use serde::Serialize;

use crate::cli::{ClaudeArgs, ClaudeCommand as ClaudeSubcommand, ClaudeRunArgs};
use crate::settings::{self, Context};
use crate::ui::{UserError, age, outln, table};

/// Which conversation the user asked for.
enum Wanted {
    New,
    Continue,
    Resume(String),
}

pub async fn claude(ctx: &Context, args: ClaudeArgs) -> Result<i32> {
    match args.command {
        Some(ClaudeSubcommand::Sessions { json }) => return sessions(ctx, json).await,
        Some(ClaudeSubcommand::Plugins {
            command: crate::cli::PluginsCommand::List { path, json },
        }) => return plugins_list(ctx, path, json),
        None => {}
    }
    let wanted = match (args.conversation.continue_, args.conversation.resume) {
        (true, _) => Wanted::Continue,
        (false, Some(arg)) => Wanted::Resume(arg),
        (false, None) => Wanted::New,
    };
    start(ctx, args.run, wanted).await
}

/// `moat resume`: `moat claude --continue`.
pub async fn resume(ctx: &Context, args: ClaudeRunArgs) -> Result<i32> {
    start(ctx, args, Wanted::Continue).await
}

async fn start(ctx: &Context, args: ClaudeRunArgs, wanted: Wanted) -> Result<i32> {
    if args.yolo {
        crate::ui::errln!(
            "moat: `--yolo` is what moat does already: Claude Code skips its permission \
             prompts, the container is the boundary (`--noyolo` keeps the prompts)"
        );
    }
    let (conversation, resumed_workspace) = match wanted {
        Wanted::New => (Conversation::New(SessionId::generate()), None),
        Wanted::Continue => (Conversation::Continue, None),
        Wanted::Resume(arg) => {
            let (id, workspace) = resolve_resume(ctx, &arg).await?;
            (Conversation::Resume(id), workspace)
        }
    };
    let command = ClaudeCommand {
        skip_permissions: !args.noyolo,
        conversation,
        print: args.prompt,
        initial_prompt: args.initial_prompt,
    };
    let home = ctx.env.home.clone().ok_or_else(|| {
        UserError::new("cannot tell your home directory, where Claude Code keeps its state")
            .hint("set `HOME`")
    })?;
    let dry_run = args.exec.dry_run;
    let agent = ClaudeAgent {
        command: &command,
        home: &home,
        stdin_is_terminal: std::io::stdin().is_terminal(),
        path: ctx.env.path.as_deref(),
    };
    let plan = settings::plan_agent_run(
        ctx,
        args.path.or(resumed_workspace),
        &args.exec,
        command.argv(),
        if dry_run {
            settings::Purpose::Show
        } else {
            settings::Purpose::Run
        },
        &agent,
    )
    .map_err(|e| credential_advice(e, ctx.env.anthropic_api_key.is_some()))?;
    if dry_run {
        super::config::print_plan(&plan)?;
        return Ok(0);
    }
    for warning in &plan.warnings {
        crate::ui::warning(warning);
    }
    let request = plan.request;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if request.interactive && !request.detach && !terminal {
        return Err(UserError::new("an interactive Claude Code session needs a terminal")
            .hint("give a prompt with `-p \"...\"` to get an answer without one, or add `-d` and `moat attach` later")
            .into());
    }
    let project_dir = moat_claude::host_project_dir(&home, request.workspace.path());
    // `--continue` with no conversation would build and start a container only for
    // Claude Code to say "No conversation found".
    if matches!(command.conversation, Conversation::Continue) && !has_conversation(&project_dir) {
        return Err(UserError::new(format!(
            "no Claude Code conversation to continue in `{}`",
            request.workspace.path().display()
        ))
        .hint(
            "`moat claude` starts a new one; `moat claude sessions` lists the ones moat \
             started, `moat claude --resume ID` takes one of them",
        )
        .into());
    }
    let image = request.image.spec();
    make_project_dir(&project_dir, image.uid, image.gid)?;
    super::run::execute(ctx, request).await
}

/// Whether Claude Code has kept a conversation of the workspace (a `*.jsonl` log in its
/// project directory).
fn has_conversation(project_dir: &Path) -> bool {
    fs_err::read_dir(project_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
    })
}

/// What Claude Code adds to a run: node, git and Claude Code in the image, the
/// `anthropic` grant, its environment, the container's `~/.claude.json` (made from the
/// host's allow-listed keys, with the credential placeholder approved), and the
/// workspace's conversation directory.
struct ClaudeAgent<'a> {
    command: &'a ClaudeCommand,
    home: &'a Path,
    stdin_is_terminal: bool,
    /// `PATH`, for the git that fetches plugin marketplaces.
    path: Option<&'a std::ffi::OsStr>,
}

impl settings::Agent for ClaudeAgent<'_> {
    fn dependencies(&self) -> &'static [&'static str] {
        moat_claude::IMPLIED_DEPENDENCIES
    }

    fn grants(&self) -> &'static [&'static str] {
        &[moat_claude::IMPLIED_GRANT]
    }

    fn config_grants(&self, config: &moat_config::ResolvedConfig) -> Vec<String> {
        config
            .claude
            .mcp
            .values()
            .filter_map(|server| server.grant.clone())
            .collect()
    }

    fn contribute(&self, inputs: &settings::AgentInputs<'_>) -> Result<settings::AgentParts> {
        let api_key = inputs
            .placeholders
            .iter()
            .find(|(k, _)| k == "ANTHROPIC_API_KEY")
            .map(|(_, v)| v.as_str());
        let host_claude_json = read_claude_json(&self.home.join(moat_claude::CLAUDE_JSON))?;
        if let Some(route) = inputs
            .mcp
            .iter()
            .find(|r| inputs.config.claude.mcp.contains_key(&r.name))
        {
            return Err(UserError::new(format!(
                "two MCP servers are named `{}`: one in `mcp` and one in `claude.mcp`",
                route.name
            ))
            .hint("give each server its own name")
            .into());
        }
        let mcp_servers = mcp_servers(inputs);
        let (claude_json, problem) = moat_claude::container_claude_json(
            host_claude_json.as_deref(),
            self.command.skip_permissions,
            api_key,
            &mcp_servers,
        );
        let project_dir = moat_claude::host_project_dir(self.home, inputs.workspace);
        let mut warnings: Vec<String> = problem.map(|p| p.to_string()).into_iter().collect();
        let mut env: Vec<(String, String)> = moat_claude::CONTAINER_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut home_files = vec![HomeFile {
            path: moat_claude::CLAUDE_JSON.to_owned(),
            contents: claude_json,
        }];
        let (seed, enabled) = plugin_seed(self.home, inputs, self.path, &mut warnings)?;
        if !enabled.is_empty() {
            env.push((
                moat_claude::PLUGIN_SEED_VARIABLE.to_owned(),
                moat_run::CONTAINER_SEED_DIR.to_owned(),
            ));
            home_files.push(HomeFile {
                path: moat_claude::CLAUDE_SETTINGS.to_owned(),
                contents: moat_claude::container_settings_json(&enabled),
            });
            // Registered before Claude Code starts, too: a `-p` session syncs seed
            // marketplaces only after it has registered its plugins' hooks (2.1.332), so
            // without this a plugin's hooks would not run in the run's one session.
            if let Some(known) = seed.files.first() {
                home_files.push(HomeFile {
                    path: moat_claude::KNOWN_MARKETPLACES.to_owned(),
                    contents: known.contents.clone(),
                });
            }
        }
        Ok(settings::AgentParts {
            env,
            home_files,
            seed,
            mounts: vec![BindMount {
                source: project_dir.display().to_string(),
                target: moat_claude::container_project_dir(),
                read_only: false,
            }],
            session: Some(AgentSession {
                agent: moat_claude::AGENT.to_owned(),
                session_id: self.command.conversation.known_id().cloned(),
                sessions_dir: project_dir,
            }),
            interactive: Some(self.command.interactive()),
            // `claude -p` reads piped input as part of the prompt; a terminal's is not
            // meant so.
            no_stdin: self.stdin_is_terminal,
            warnings,
        })
    }
}

/// The installed plugins the run gets, as a seed of copies (see
/// `moat_claude::plugins::plugin_seed`), and their IDs. A plugin `claude.plugins` enables that cannot
/// come is an error; one only Claude Code's settings enable, a warning.
fn plugin_seed(
    home: &Path,
    inputs: &settings::AgentInputs<'_>,
    path: Option<&std::ffi::OsStr>,
    warnings: &mut Vec<String>,
) -> Result<(moat_run::SeedDir, Vec<String>)> {
    let mut report = plugin_report(home, inputs.workspace, &inputs.config.claude)?;
    let fetch = inputs.acting.then_some(Fetching {
        egress: inputs.egress,
        rules: inputs.grant_rules,
        rebuild: inputs.rebuild,
        path,
    });
    fetched_marketplaces(
        &mut report,
        inputs.moat_home,
        &inputs.config.claude,
        fetch.as_ref(),
    )?;
    warnings.extend(report.warnings.iter().cloned());
    // Only what Claude Code keeps under `~/.claude/plugins`, what moat fetched into its
    // own cache, and the directories of `directory` marketplaces that this machine's
    // Claude Code or a trusted `claude.marketplaces` added (never a workspace file's) are
    // copied; a stale entry names what is gone. A directory may be one a run can change
    // (a workspace's own marketplace): the copy follows no link (moat_run::seed).
    let roots: Vec<PathBuf> = [
        home.join(".claude/plugins"),
        inputs.moat_home.root().join("plugins/marketplaces"),
    ]
    .iter()
    .filter_map(|dir| fs_err::canonicalize(dir).ok())
    .collect();
    let directories: Vec<PathBuf> = report
        .marketplaces
        .iter()
        .filter(|m| {
            m.origin != moat_claude::plugins::Origin::Workspace
                && m.source_json["source"] == "directory"
        })
        .filter_map(|m| fs_err::canonicalize(m.install_location.as_ref()?).ok())
        .collect();
    let copyable = |source: &str| match fs_err::canonicalize(source).ok() {
        Some(path) => {
            (roots
                .iter()
                .any(|root| path.starts_with(root) && path != *root)
                || directories.iter().any(|dir| path.starts_with(dir)))
                && path.is_dir()
        }
        None => false,
    };
    let seed = moat_claude::plugins::plugin_seed(&report, moat_run::CONTAINER_SEED_DIR, copyable);
    for (id, why, by_agent_yaml) in &seed.missing {
        if *by_agent_yaml {
            return Err(UserError::new(format!(
                "`claude.plugins` enables `{id}`, which this run cannot have: {why}"
            ))
            .hint("install it with Claude Code on this machine, or set it to false in `claude.plugins`; `moat claude plugins list` shows every plugin's state")
            .into());
        }
        warnings.push(format!(
            "plugin `{id}` is enabled but not in this run: {why}"
        ));
    }
    if seed.enabled.is_empty() {
        return Ok((moat_run::SeedDir::default(), Vec::new()));
    }
    let dir = moat_run::SeedDir {
        files: vec![HomeFile {
            path: "known_marketplaces.json".to_owned(),
            contents: seed.known_marketplaces,
        }],
        trees: seed
            .trees
            .into_iter()
            // Resolved now, when they were checked: the copy then opens exactly these
            // paths, refusing a link anywhere on the way (moat_run::seed).
            .map(|(source, target)| moat_run::SeedTree {
                source: fs_err::canonicalize(&source).unwrap_or_else(|_| source.into()),
                target,
            })
            .collect(),
    };
    Ok((dir, seed.enabled))
}

/// What fetching marketplaces for a run needs: the run's egress and grants.
struct Fetching<'a> {
    egress: &'a moat_run::EgressSettings,
    rules: &'a [moat_proxy::GrantRule],
    rebuild: bool,
    path: Option<&'a std::ffi::OsStr>,
}

/// Fill `report` with the marketplaces moat fetches: each `claude.marketplaces` entry,
/// and each host marketplace whose files are not here, that an enabled plugin comes
/// from. With `fetch`, what is not cached (or everything, with `--rebuild`) is fetched;
/// without, only the cache is looked at (`moat claude plugins list`, `--dry-run`).
/// A workspace file's marketplace is never fetched: it comes with the repository,
/// without the trust question.
fn fetched_marketplaces(
    report: &mut moat_claude::plugins::PluginReport,
    moat_home: &moat_home::MoatHome,
    claude: &moat_config::ClaudeSettings,
    fetch: Option<&Fetching<'_>>,
) -> Result<()> {
    use super::marketplaces::{self, Remote};
    use moat_claude::plugins::Origin;
    for index in 0..report.marketplaces.len() {
        let row = &report.marketplaces[index];
        // Fetched only for a plugin that a trusted source enables (the host's settings or
        // `claude.plugins`): a workspace's `.claude/settings.json` may turn on what is
        // here, but never makes moat fetch with the run's grants.
        let wanted = report.plugins.iter().any(|p| {
            p.enabled
                && p.marketplace == row.name
                && p.install_path.is_none()
                && p.settings
                    .iter()
                    .rfind(|s| s.origin != Origin::Workspace)
                    .is_some_and(|s| s.enabled)
        });
        let name = row.name.clone();
        // A directory marketplace (a trusted `claude.marketplaces` one, or the host's own)
        // is used where it is: its listing says where its plugins are, and the run gets
        // copies made without following a link (moat_run::seed). It must be named by its
        // real path: a link on the way, which an agent could have put in place of a
        // workspace directory, would make it another directory of this machine.
        let directory = match row.origin {
            Origin::AgentYaml => claude
                .marketplaces
                .get(&name)
                .map(serde_json::to_value)
                .transpose()?
                .filter(|source| source["source"] == "directory")
                .map(|source| (source["path"].as_str().map(str::to_owned), source)),
            Origin::Host if row.source_json["source"] == "directory" => {
                Some((row.install_location.clone(), row.source_json.clone()))
            }
            _ => None,
        };
        if let Some((path, source)) = directory {
            let real = path.as_deref().and_then(real_dir);
            let row = &mut report.marketplaces[index];
            row.install_location = real.as_ref().map(|dir| dir.display().to_string());
            let Some(dir) = real else {
                if let Some(path) = path {
                    report.warnings.push(format!(
                        "directory marketplace `{name}`: `{path}` is not a directory named by its real path (a link on the way could make it another); moat does not copy it"
                    ));
                }
                continue;
            };
            if row.origin == Origin::AgentYaml {
                row.last_updated = Some(jiff::Timestamp::now().to_string());
                row.source_json = source;
                // Its plugins are what its listing says, not what the host installed
                // under the same marketplace name.
                for plugin in report.plugins.iter_mut().filter(|p| p.marketplace == name) {
                    plugin.install_path = None;
                }
            }
            plugins_of_marketplace(report, &name, &dir, None, true);
            continue;
        }
        let source = match row.origin {
            Origin::AgentYaml => match claude.marketplaces.get(&row.name) {
                Some(m) => serde_json::to_value(m)?,
                None => continue,
            },
            Origin::Host if row.install_location.is_none() => row.source_json.clone(),
            _ => continue,
        };
        let Some(remote) = Remote::of_source(&source) else {
            continue;
        };
        let fetched = match fetch {
            Some(f) => {
                let grants = marketplaces::grant_names(f.rules);
                let cached = marketplaces::cached(moat_home, &remote, &grants);
                if wanted && (f.rebuild || cached.is_none()) {
                    crate::ui::errln!(
                        "moat: fetching plugin marketplace `{name}` from {}",
                        moat_text::escaped(&remote.url)
                    );
                    Some(marketplaces::fetch(
                        moat_home, &name, &remote, f.egress, f.rules, f.path,
                    )?)
                } else {
                    cached
                }
            }
            // `plugins list` and `--dry-run` know no run's grants: what any fetch got.
            None => marketplaces::cached_any(moat_home, &remote),
        };
        let Some(fetched) = fetched else {
            continue;
        };
        let row = &mut report.marketplaces[index];
        row.install_location = Some(fetched.dir.display().to_string());
        row.last_updated = Some(fetched.fetched_at.to_string());
        row.source_json = source;
        plugins_of_marketplace(report, &name, &fetched.dir, Some(&fetched.commit), false);
    }
    Ok(())
}

/// `path` as a directory if it is absolute and names it with no link on the way (what
/// it resolves to is what it says, `..` taken as written).
fn real_dir(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    let real = fs_err::canonicalize(path).ok()?;
    (path.is_absolute() && real == moat_home::lexically_normal(path) && real.is_dir())
        .then_some(real)
}

/// Where each plugin of marketplace `name` is in its files at `dir` (a checkout moat
/// fetched, of `commit`, or a `directory` marketplace), by the listing: the install paths
/// and versions of plugins the host has not installed, each one's place in a directory
/// marketplace, or a warning for an enabled one whose directory is not inside.
fn plugins_of_marketplace(
    report: &mut moat_claude::plugins::PluginReport,
    name: &str,
    dir: &Path,
    commit: Option<&str>,
    directory: bool,
) {
    // The listing is read only from inside the checkout: a committed link in its place
    // must not make moat read a file of this machine.
    let listing_path = dir.join(".claude-plugin/marketplace.json");
    let listing = match (
        fs_err::canonicalize(&listing_path),
        fs_err::canonicalize(dir),
    ) {
        (Ok(path), Ok(root)) if path.starts_with(&root) => {
            moat_home::read_bounded(&path, moat_home::FileKind::CLAUDE_SETTINGS)
                .map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "`{}` is not a file inside the marketplace's files",
            listing_path.display()
        )),
    };
    for plugin in report
        .plugins
        .iter_mut()
        .filter(|p| p.marketplace == name && (directory || p.install_path.is_none()))
    {
        let found = match &listing {
            Ok(json) => moat_claude::plugins::marketplace_plugin(json, &plugin.name),
            Err(e) => Err(format!("the marketplace has no listing: {e}")),
        };
        // The plugin's directory must be inside its marketplace's checkout once links
        // are followed: a link in a hostile repository must not make the run copy
        // another directory of this machine. The resolved path is what is copied.
        let found = found.and_then(|(relative, version)| {
            let resolved = fs_err::canonicalize(dir.join(&relative)).ok();
            let root = fs_err::canonicalize(dir).ok();
            match resolved.zip(root) {
                Some((path, root)) if path.starts_with(&root) && path != root && path.is_dir() => {
                    Ok((path, version, relative))
                }
                _ => Err(format!(
                    "its source `{relative}` is not a directory inside the marketplace's files"
                )),
            }
        });
        match found {
            Ok((path, version, relative)) => {
                if directory {
                    plugin.listed_dir = Some(relative);
                    if plugin.install_path.is_some() {
                        continue;
                    }
                }
                plugin.install_path = Some(path.display().to_string());
                plugin.version =
                    version.or_else(|| commit.map(|c| c[..12.min(c.len())].to_owned()));
                plugin.commit = commit.map(str::to_owned);
            }
            Err(why) if plugin.enabled => {
                // The reason may quote the marketplace's listing: shown as plain text.
                let why = moat_text::plain(&why);
                report.warnings.push(format!(
                    "plugin `{}` of the marketplace `{name}`: {why}",
                    plugin.id
                ));
            }
            Err(_) => {}
        }
    }
}

/// The container's MCP servers: the remote ones of the workspace file (top-level `mcp`),
/// each with the placeholder of its credential in its `auth.header`, and the local ones
/// (`claude.mcp`), each with its `env` and, with a `grant`, that grant's placeholders.
fn mcp_servers(inputs: &settings::AgentInputs<'_>) -> Vec<(String, moat_claude::McpServer)> {
    let local = inputs.config.claude.mcp.iter().map(|(name, server)| {
        let mut env: Vec<(String, String)> = server
            .env
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(grant) = &server.grant {
            let granted = inputs
                .grant_env
                .iter()
                .find(|(g, _)| g == grant.trim())
                .map(|(_, vars)| vars.as_slice())
                .unwrap_or_default();
            for (var, value) in granted {
                // A placeholder wins over a same-named `env` entry, as in the run's own
                // environment: a real token must never be there.
                env.retain(|(k, _)| k != var);
                env.push((var.clone(), value.clone()));
            }
        }
        (
            name.clone(),
            moat_claude::McpServer::Stdio {
                command: server.command.clone(),
                args: server.args.clone(),
                env,
                cwd: server.cwd.clone(),
            },
        )
    });
    let remote = inputs.mcp.iter().map(|route| {
        let headers = inputs
            .mcp_placeholders
            .iter()
            .filter(|p| p.server == route.name)
            .map(|p| (p.header.clone(), p.placeholder.clone()))
            .collect();
        (
            route.name.clone(),
            moat_claude::McpServer::Remote {
                url: route.url.clone(),
                headers,
            },
        )
    });
    remote.chain(local).collect()
}

/// Turn "`anthropic` is not granted" into what a `moat claude` user needs to hear.
fn credential_advice(err: anyhow::Error, env_key_set: bool) -> anyhow::Error {
    let not_granted = matches!(
        err.downcast_ref::<moat_providers::ProviderError>(),
        Some(moat_providers::ProviderError::NotGranted { provider }) if provider == moat_claude::IMPLIED_GRANT
    );
    if !not_granted {
        return err;
    }
    if env_key_set {
        // Runs use granted credentials only: a variable of this shell is no grant.
        return UserError::new(
            "no Anthropic credential is granted: ANTHROPIC_API_KEY is set here, but runs use \
             only credentials moat keeps",
        )
        .hint("run `moat grant anthropic` once: it stores that key for every run")
        .into();
    }
    UserError::new("no Anthropic credential: Claude Code needs one to reach the Claude API")
        .hint(
            "run `moat grant anthropic` (a Claude subscription, an API key, or your Claude Code \
             login), or with an API key: `export ANTHROPIC_API_KEY=\"sk-ant-...\" && moat grant anthropic`",
        )
        .into()
}

/// `--resume ARG`: a session ID as given, or the session a finished moat run held.
/// Returns the ID and, when a moat run held it, that run's workspace.
async fn resolve_resume(ctx: &Context, arg: &str) -> Result<(SessionId, Option<PathBuf>)> {
    let runs = ctx.store.list()?;
    if let Ok(id) = SessionId::parse(arg) {
        let workspace = runs
            .iter()
            .find(|r| session_of(r) == Some(&id))
            .map(|r| r.workspace.clone());
        return Ok((id, workspace));
    }
    let record = match moat_run::resolve_run(&runs, Some(arg)) {
        Ok(record) => record,
        Err(RunError::NoSuchRun { .. } | RunError::NoRuns) => {
            return Err(UserError::new(format!(
                "`{arg}` is neither a Claude session ID nor a moat run"
            ))
            .hint("`--resume` takes a session ID (a UUID, see `moat claude sessions`), or the ID or name of a `moat claude` run")
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let mut docker = super::LazyDocker::new(ctx);
    let record = super::refresh(ctx, &mut docker, record).await?;
    if record.state.is_active() {
        return Err(UserError::new(format!(
            "run {} ({}) is still running",
            record.id, record.name
        ))
        .hint(format!("use `moat attach {}` to return to it", record.id))
        .into());
    }
    let agent = record
        .agent
        .as_ref()
        .filter(|a| a.agent == moat_claude::AGENT);
    let Some(agent) = agent else {
        return Err(UserError::new(format!(
            "run {} ({}) did not run Claude Code",
            record.id, record.name
        ))
        .hint("`moat claude sessions` lists the runs that did")
        .into());
    };
    let Some(id) = agent.session_id.clone() else {
        return Err(UserError::new(format!(
            "run {} ({}) left no Claude Code conversation",
            record.id, record.name
        ))
        .hint("`moat claude sessions` lists the conversations moat knows")
        .into());
    };
    Ok((id, Some(record.workspace)))
}

fn session_of(record: &RunRecord) -> Option<&SessionId> {
    record
        .agent
        .as_ref()
        .filter(|a| a.agent == moat_claude::AGENT)
        .and_then(|a| a.session_id.as_ref())
}

/// The host's `~/.claude.json`, or `None` if there is none. Read bounded: a FIFO there
/// would hang `moat claude`, a device or a huge file fill its memory.
fn read_claude_json(path: &Path) -> Result<Option<Vec<u8>>> {
    match moat_home::read_bounded(path, moat_home::FileKind::CLAUDE_JSON) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Make the workspace's Claude project directory. A new one belongs to the container's
/// user (the workspace owner), which differs from moat's user only when moat runs as root.
fn make_project_dir(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs_err::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let ours = fs_err::metadata(dir)?;
    if ours.uid() != uid || ours.gid() != gid {
        // Only root can give a directory away; anyone else already is the owner.
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .with_context(|| format!("giving `{}` to UID {uid}", dir.display()))?;
        }
    }
    Ok(())
}

/// One line of `moat claude sessions`.
#[derive(Debug, Serialize)]
struct SessionRow {
    session_id: SessionId,
    run_id: String,
    run_name: String,
    workspace: PathBuf,
    /// The run's state (`created`, `running`, `exited`, `stopped`, `failed`), as in
    /// `moat list --json`; its exit code apart.
    state: moat_run::RunState,
    exit_code: Option<i64>,
    last_active: jiff::Timestamp,
    /// The table's STATE cell, e.g. `stopped (143)`.
    #[serde(skip)]
    status: String,
}

async fn sessions(ctx: &Context, json: bool) -> Result<i32> {
    let mut docker = super::LazyDocker::new(ctx);
    let mut rows = Vec::new();
    for record in ctx.store.list()? {
        if session_of(&record).is_none() {
            continue;
        }
        let record = super::refresh(ctx, &mut docker, record).await?;
        let Some(agent) = record.agent.as_ref() else {
            continue;
        };
        let Some(session_id) = agent.session_id.clone() else {
            continue;
        };
        let last_active = agent
            .last_active()
            .or(record.finished_at)
            .or(record.started_at)
            .unwrap_or(record.created_at);
        rows.push(SessionRow {
            session_id,
            run_id: record.id.to_string(),
            run_name: record.name.clone(),
            workspace: record.workspace.clone(),
            state: record.state,
            exit_code: record.exit_code,
            status: record.state_label(),
            last_active,
        });
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.last_active));
    if json {
        outln!("{}", crate::ui::json(&rows)?)?;
        return Ok(0);
    }
    if rows.is_empty() {
        crate::ui::errln!("No Claude Code sessions yet. Start one with `moat claude`.");
        return Ok(0);
    }
    let now = jiff::Timestamp::now();
    let header = [
        "SESSION ID",
        "RUN",
        "RUN ID",
        "STATE",
        "LAST ACTIVE",
        "WORKSPACE",
    ]
    .map(String::from);
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.session_id.to_string(),
                row.run_name.clone(),
                row.run_id.clone(),
                row.status.clone(),
                format!("{} ago", age(row.last_active, now)),
                row.workspace.display().to_string(),
            ]
        })
        .collect();
    outln!("{}", table(&header, &lines).trim_end())?;
    Ok(0)
}

/// `moat claude plugins list [WORKSPACE] [--json]`: what `moat_claude::plugins` makes of the
/// host's Claude Code files, the workspace's `.claude/settings.json` and the workspace
/// file. Only reads: nothing is fetched, and an untrusted workspace file is shown too.
fn plugins_list(ctx: &Context, path: Option<PathBuf>, json: bool) -> Result<i32> {
    let home = ctx.env.home.clone().ok_or_else(|| {
        UserError::new("cannot tell your home directory, where Claude Code keeps its settings")
            .hint("set `HOME`")
    })?;
    let cwd = ctx
        .env
        .cwd
        .clone()
        .context("reading the current directory")?;
    let workspace = moat_run::Workspace::resolve(&path.unwrap_or(cwd), ctx.home())?;
    let loaded = moat_config::load(
        workspace.path(),
        &ctx.home().config_file(),
        &ctx.env.overrides(),
    )?;
    let mut report = plugin_report(&home, workspace.path(), &loaded.config.claude)?;
    fetched_marketplaces(&mut report, ctx.home(), &loaded.config.claude, None)?;
    for warning in &report.warnings {
        crate::ui::warning(warning);
    }
    if json {
        outln!("{}", crate::ui::json(&report)?)?;
        return Ok(0);
    }
    if report.plugins.is_empty() {
        crate::ui::errln!(
            "No Claude Code plugins: none is enabled on the host, in the workspace's \
             `.claude/settings.json` or in `claude.plugins`."
        );
    } else {
        let header = ["PLUGIN", "MARKETPLACE", "VERSION", "SOURCES", "STATUS"].map(String::from);
        let rows: Vec<[String; 5]> = report
            .plugins
            .iter()
            .map(|p| {
                let marketplace = match &p.marketplace_source {
                    Some(source) => format!("{} ({source})", p.marketplace),
                    None => p.marketplace.clone(),
                };
                let version = match (&p.version, &p.commit) {
                    (Some(v), Some(c)) => {
                        format!("{v} ({})", c.chars().take(12).collect::<String>())
                    }
                    (Some(v), None) => v.clone(),
                    (None, Some(c)) => c.chars().take(12).collect(),
                    (None, None) => "-".to_owned(),
                };
                let sources: Vec<String> = p
                    .settings
                    .iter()
                    .map(|s| {
                        format!(
                            "{}={}",
                            s.origin.label(),
                            if s.enabled { "on" } else { "off" }
                        )
                    })
                    .collect();
                let status = match &p.reason {
                    None => "enabled".to_owned(),
                    Some(reason) => format!("not enabled: {reason}"),
                };
                [
                    p.id.clone(),
                    marketplace,
                    version,
                    sources.join(" "),
                    status,
                ]
            })
            .collect();
        outln!("{}", table(&header, &rows).trim_end())?;
    }
    if !report.plugins.is_empty() {
        crate::ui::errln!(
            "note: a `moat claude` run gets copies of the enabled plugins this machine's Claude \
             Code installed, and of those from marketplaces moat fetched for it (see docs/plugins.md)"
        );
    }
    if !report.marketplaces.is_empty() {
        outln!()?;
        let header = ["MARKETPLACE", "SOURCE", "FROM"].map(String::from);
        let rows: Vec<[String; 3]> = report
            .marketplaces
            .iter()
            .map(|m| {
                [
                    m.name.clone(),
                    m.source.clone(),
                    m.origin.label().to_owned(),
                ]
            })
            .collect();
        outln!("{}", table(&header, &rows).trim_end())?;
    }
    Ok(0)
}

/// What `moat_claude::plugins` makes of the host's Claude Code files under `home`, the
/// workspace's `.claude/settings.json` and the workspace file's `claude` settings. Files
/// that cannot be read are warnings (printed), never failures.
fn plugin_report(
    home: &Path,
    workspace: &Path,
    claude: &moat_config::ClaudeSettings,
) -> Result<moat_claude::plugins::PluginReport> {
    let plugins: Vec<(String, bool)> = claude
        .plugins
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let marketplaces: Vec<(String, String)> = claude
        .marketplaces
        .iter()
        .map(|(name, m)| {
            let mut source = match &m.source {
                moat_config::MarketplaceSource::Github { repo } => format!("github {repo}"),
                moat_config::MarketplaceSource::Git { url } => format!("git {url}"),
                moat_config::MarketplaceSource::Directory { path } => {
                    format!("directory {}", path.display())
                }
            };
            if let Some(git_ref) = &m.git_ref {
                source.push_str(&format!(" @ {git_ref}"));
            }
            (name.clone(), source)
        })
        .collect();
    let mut unread = Vec::new();
    let mut read = |path: PathBuf, kind: moat_home::FileKind| -> Option<Vec<u8>> {
        match moat_home::read_bounded(&path, kind) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                unread.push(format!("{e}; its plugin settings are ignored"));
                None
            }
        }
    };
    let claude_dir = home.join(".claude");
    let host = moat_home::FileKind::CLAUDE_SETTINGS;
    let host_settings = read(claude_dir.join("settings.json"), host);
    let known = read(claude_dir.join("plugins/known_marketplaces.json"), host);
    let installed = read(claude_dir.join("plugins/installed_plugins.json"), host);
    let workspace_settings = read(
        workspace.join(".claude/settings.json"),
        moat_home::FileKind::WORKSPACE_CLAUDE_SETTINGS,
    );
    let mut report = moat_claude::plugins::resolve_plugins(&moat_claude::plugins::PluginInputs {
        host_settings: host_settings.as_deref(),
        host_known_marketplaces: known.as_deref(),
        host_installed_plugins: installed.as_deref(),
        workspace_settings: workspace_settings.as_deref(),
        plugins: &plugins,
        marketplaces: &marketplaces,
        workspace_path: workspace.to_str(),
    });
    report.warnings.splice(0..0, unread);
    Ok(report)
}
