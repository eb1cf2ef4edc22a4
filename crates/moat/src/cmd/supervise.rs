//! `moat __supervise`: the body of a run's supervisor process (see `moat_run::supervise`).
//! Started by `moat run`, never by hand.

use std::io::Write;

use anyhow::{Context as _, Result};
use moat_container::{Docker, DockerEndpoint, Runtime as _};
use moat_home::{MoatHome, RunId};
use moat_run::{RunState, RunStore, SupervisorEvent};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::SuperviseArgs;

/// The proxy rules of the run's grants and remote MCP servers, with the real secrets:
/// decrypted here, in the supervisor, and never handed to anyone else.
fn grant_rules(store: &RunStore, id: &RunId) -> Result<Vec<moat_proxy::GrantRule>> {
    let (settings, token) = store.load_egress(id)?;
    let servers = crate::settings::mcp_server_auths(&settings.mcp);
    if settings.grants.is_empty() && servers.is_empty() {
        return Ok(Vec::new());
    }
    let home = store.home();
    let credentials = crate::settings::credential_store_in(home, settings.keyring)?;
    let mut rules = Vec::new();
    if !settings.grants.is_empty() {
        let grants = moat_providers::grants_for_run(
            &credentials,
            &crate::settings::provider_registry_in(home)?,
            &settings.grants,
            token.expose(),
            jiff::Timestamp::now(),
        )?;
        rules.extend(grants.rules);
    }
    if !servers.is_empty() {
        let mcp = moat_providers::mcp_for_run(
            &credentials,
            &servers,
            token.expose(),
            jiff::Timestamp::now(),
        )?;
        rules.extend(mcp.rules);
    }
    Ok(rules)
}

/// The supervisor holds a descriptor per connection into the proxy and out of it, besides
/// its logs, its audit log and the snapshots' git: a shell's soft limit of 1,024 is a
/// number an agent can reach on purpose, after which the audit log could not be opened.
/// So the soft limit goes up to the hard one (at most 65,536); the proxy's own cap on
/// connections (`moat_proxy::MAX_CLIENT_CONNECTIONS`) stays well below it.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let wanted = hard.min(65_536);
        if soft < wanted
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)
        {
            tracing::debug!(error = %e, "the descriptor limit stays {soft}");
        }
    }
}

pub async fn supervise(args: SuperviseArgs) -> Result<i32> {
    // A session of its own: the terminal closing or Ctrl-C at the CLI does not reach it.
    let _ = nix::unistd::setsid();
    raise_descriptor_limit();
    moat_proxy::preload_system_roots();
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangup.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    });
    let mut terminate = signal(SignalKind::terminate())?;
    let stop = async move {
        terminate.recv().await;
    };

    let id: RunId = args.run_id.parse()?;
    let store = RunStore::new(MoatHome::at(args.home));
    let emit = |event: &SupervisorEvent| {
        // The launcher may be gone (detached, or killed): nobody to tell is fine.
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut stdout, event);
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
    };
    let endpoint = DockerEndpoint {
        host: args.docker_host,
        source: "supervisor",
    };
    let docker = match Docker::connect(endpoint).await {
        Ok(docker) => docker,
        Err(e) => {
            let error = e.to_string();
            store.update(&id, |r| {
                r.state = RunState::Failed;
                r.error = Some(error.clone());
            })?;
            emit(&SupervisorEvent::Failed { error });
            return Ok(1);
        }
    };
    let rules = match grant_rules(&store, &id) {
        Ok(rules) => rules,
        Err(e) => {
            let error = format!("{e:#}");
            store.update(&id, |r| {
                r.state = RunState::Failed;
                r.error = Some(error.clone());
            })?;
            if let Some(container) = store.load(&id)?.container_id {
                docker.remove_container(&container, true).await?;
            }
            emit(&SupervisorEvent::Failed { error });
            return Ok(1);
        }
    };
    moat_run::supervise(&docker, &store, &id, rules, emit, stop)
        .await
        .with_context(|| format!("supervising run {id}"))?;
    Ok(0)
}
