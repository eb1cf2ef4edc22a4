//! `moat run [PATH] [-- COMMAND...]`: prepare a run, hand it to a supervisor, and (unless
//! detached) stay attached to it until it ends.

use std::io::IsTerminal;

use anyhow::{Context as _, Result, bail};
use moat_container::Docker;
use moat_run::{Rollback, RunError, RunRecord, SupervisorEvent};

use crate::cli::RunArgs;
use crate::launcher::Supervisor;
use crate::session::{self, CtrlC, Interrupted, LeaveSignals, SessionEnd};
use crate::settings::{self, Context};
use crate::term::ESCAPE_HELP;
use crate::ui::outln;
use crate::ui::{BuildProgress, UserError};

pub async fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    let purpose = if args.exec.dry_run {
        settings::Purpose::Show
    } else {
        settings::Purpose::Run
    };
    let plan = settings::plan_run(ctx, args.path, &args.exec, args.command, purpose)?;
    if args.exec.dry_run {
        super::config::print_plan(&plan)?;
        return Ok(0);
    }
    for warning in &plan.warnings {
        crate::ui::warning(warning);
    }
    let mut request = plan.request;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // A bare `moat run` at a terminal means "give me a shell".
    if request.command.is_empty() && !request.detach && terminal {
        request.interactive = true;
    }
    if request.interactive && !request.detach && !terminal {
        return Err(UserError::new("an interactive session needs a terminal")
            .hint("run it from a terminal, drop `-i` to pipe stdin, or add `-d` and `moat attach` later")
            .into());
    }
    execute(ctx, request).await
}

/// Prepare a resolved run, hand it to its supervisor and, unless detached, stay with it
/// until it ends; return its exit code.
pub async fn execute(ctx: &Context, request: moat_run::RunRequest) -> Result<i32> {
    // From here on SIGTERM and SIGHUP are moat's to handle: preparing, they cancel it
    // cleanly; attached, they leave the run going (and the terminal as it was).
    let mut signals = LeaveSignals::register().context("handling signals")?;
    let docker = ctx.docker().await?;
    let mut rollback = Rollback::default();
    let record = match prepare(ctx, &docker, &request, &mut rollback, &mut signals).await {
        Ok(record) => record,
        Err(e) => {
            rollback.undo(&docker).await;
            return Err(e);
        }
    };
    launch(ctx, &docker, record, !request.no_stdin, rollback, signals).await
}

/// Image, record and container, or nothing at all (Ctrl-C included).
async fn prepare(
    ctx: &Context,
    docker: &Docker,
    request: &moat_run::RunRequest,
    rollback: &mut Rollback,
    signals: &mut LeaveSignals,
) -> Result<RunRecord> {
    let mut progress = BuildProgress::new();
    let mut on_event = |event| progress.handle(event);
    tokio::select! {
        result = moat_run::prepare_run(docker, &ctx.store, request, rollback, &mut on_event) => Ok(result?),
        signal = signals.next() => Err(match signal {
            // Ctrl-C, as before there were other signals to handle.
            session::LeaveSignal::Int => RunError::Cancelled.into(),
            other => Interrupted(other).into(),
        }),
    }
}

/// Start the supervisor and, for an attached run, the session; return the exit code.
async fn launch(
    ctx: &Context,
    docker: &Docker,
    record: RunRecord,
    with_stdin: bool,
    mut rollback: Rollback,
    mut signals: LeaveSignals,
) -> Result<i32> {
    let container = record
        .container_id
        .clone()
        .expect("a prepared run has a container");
    // Attach before the start, so not a byte of output is missed.
    let attached = if record.detached {
        None
    } else {
        match docker.attach(&container, true).await {
            Ok(attached) => Some(attached),
            Err(e) => {
                rollback.undo(docker).await;
                return Err(e.into());
            }
        }
    };
    let mut supervisor = match Supervisor::spawn(ctx, &record.id) {
        Ok(s) => s,
        Err(e) => {
            rollback.undo(docker).await;
            return Err(e);
        }
    };
    // From here the supervisor owns the run and cleans up after it.
    rollback.disarm();
    match supervisor.next_event().await {
        Some(SupervisorEvent::Started) => {}
        Some(SupervisorEvent::Failed { error }) => {
            bail!("run {} could not start: {error}", record.id)
        }
        _ => {
            let record = super::wait_until_final(ctx, docker, &record).await?;
            bail!(
                "the supervisor of run {} ended unexpectedly ({}); see `{}`",
                record.id,
                record.state_label(),
                ctx.store.supervisor_log_path(&record.id).display()
            );
        }
    }

    let Some(attached) = attached else {
        outln!("{}", record.id)?;
        crate::ui::errln!(
            "moat: run {} ({}) started in the background\n  moat logs {0}     see its output\n  moat attach {0}   reconnect\n  moat stop {0}     stop it",
            record.id,
            record.name
        );
        return Ok(0);
    };

    let end = if record.interactive {
        crate::ui::errln!("{ESCAPE_HELP}\r");
        let mut on_size = session::record_sizes(ctx.store.clone(), record.id.clone());
        session::terminal_session(
            docker,
            &container,
            attached,
            false,
            &mut signals,
            &mut on_size,
        )
        .await?
    } else {
        session::pipe_session(
            docker,
            &container,
            attached,
            with_stdin,
            CtrlC::Forward,
            &mut signals,
        )
        .await?
    };
    finish(ctx, docker, &record, end, Some(supervisor), &mut signals).await
}

/// How long the end of a run may take before moat says what it is waiting for.
const SAYING_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// After a session: report a detach, carry out a stop, and return the run's exit code.
pub async fn finish(
    ctx: &Context,
    docker: &Docker,
    record: &RunRecord,
    end: SessionEnd,
    supervisor: Option<Supervisor>,
    signals: &mut LeaveSignals,
) -> Result<i32> {
    match end {
        SessionEnd::Detached => {
            if let Ok(audit) = moat_run::RunAudit::open(&ctx.store, &record.id) {
                audit.record("detached", serde_json::json!({}));
            }
            crate::ui::errln!(
                "\r\nmoat: detached from run {} ({}); it keeps running. `moat attach {0}` to return.",
                record.id,
                record.name
            );
            return Ok(0);
        }
        SessionEnd::Signalled(signal) => {
            crate::ui::errln!(
                "\r\nmoat: {}: left run {} ({}); it keeps running. `moat attach {1}` to return.",
                signal.name(),
                record.id,
                record.name
            );
            return Ok(signal.exit_code());
        }
        SessionEnd::StopRequested => {
            crate::ui::errln!("\r\nmoat: stopping run {}", record.id);
            moat_run::stop_run(docker, &ctx.store, record).await?;
        }
        SessionEnd::Exited => {}
    }
    // The supervisor says when the run is recorded and cleaned up; without one (attach),
    // the record itself is watched.
    let recorded = async {
        if let Some(mut supervisor) = supervisor {
            // The supervisor finishes once the run's log is copied to its end, which for a
            // flood of output takes a while after the output itself.
            let event = match tokio::time::timeout(SAYING_AFTER, supervisor.next_event()).await {
                Ok(event) => event,
                Err(_) => {
                    crate::ui::errln!(
                        "\r\nmoat: saving the rest of the output to the run's log...\r"
                    );
                    supervisor.next_event().await
                }
            };
            match event {
                Some(SupervisorEvent::Finished {
                    exit_code,
                    unrecorded: Some(why),
                    ..
                }) => {
                    // The command ended; only its record could not be written. Its exit
                    // code is the command's all the same.
                    crate::ui::errln!(
                        "\r\nwarning: run {} ended, but its record could not be written: {why}\r\n\
                         hint: free space under MOAT_HOME (`{}`); the next `moat list` records the end from Docker\r",
                        record.id,
                        ctx.home().root().display()
                    );
                    return Ok(Err(exit_code.map_or(crate::EXIT_MOAT_FAILED, |code| {
                        i32::try_from(code.clamp(0, 255)).unwrap_or(crate::EXIT_MOAT_FAILED)
                    })));
                }
                Some(SupervisorEvent::Finished { .. }) | None => {}
                Some(other) => tracing::debug!(?other, "unexpected supervisor event"),
            }
        }
        super::wait_until_final(ctx, docker, record).await.map(Ok)
    };
    let record = tokio::select! {
        recorded = recorded => match recorded? {
            Ok(record) => record,
            Err(exit_code) => return Ok(exit_code),
        },
        // The run's end is the supervisor's to record, with or without us.
        signal = signals.next() => {
            crate::ui::errln!(
                "\r\nmoat: {}: stopped waiting for run {} to be recorded; `moat list` shows how it ended.",
                signal.name(),
                record.id
            );
            return Ok(signal.exit_code());
        }
    };
    if let Some(notice) = crate::ui::held_back_notice(&record) {
        crate::ui::errln!("\r\n{}\r", notice.replace('\n', "\r\n"));
    }
    if let Some(line) = resume_line(&record) {
        crate::ui::errln!("{line}\r");
    }
    Ok(super::exit_code_of(&record))
}

/// After an interactive agent session that kept a conversation, the way to go on with
/// it under moat (Claude Code's own last line names `claude --resume`, which is not).
fn resume_line(record: &RunRecord) -> Option<String> {
    let agent = record.agent.as_ref()?;
    if !record.interactive || agent.agent != moat_claude::AGENT {
        return None;
    }
    // A conversation that was never written to has nothing to resume.
    agent.last_active()?;
    let session = agent.session_id.as_ref()?;
    Some(format!(
        "moat: to go on with this conversation: `moat claude --resume {session}` (or `moat resume` in {})",
        record.workspace.display()
    ))
}
