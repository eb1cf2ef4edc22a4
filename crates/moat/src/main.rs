//! The `moat` binary: parse the command line, resolve settings once, run one command,
//! print, and exit with the right code. The only crate that prints.

mod cli;
mod cmd;
mod launcher;
mod session;
mod settings;
mod term;
mod trust;
mod ui;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit code when moat itself fails to run a command (as `docker run` uses 125), so it is
/// told apart from the command's own codes.
pub const EXIT_MOAT_FAILED: i32 = 125;
/// Exit code after Ctrl-C interrupted moat itself (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: i32 = 130;

fn main() {
    let cli = Cli::parse();
    let env = settings::Environment::read();
    ui::init_colour(env.no_color);
    init_tracing(cli.verbose, env.rust_log.as_deref());
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.command, Command::Supervise(_)) {
        // A run's supervisor works on one worker. Its work is I/O that hops between tasks
        // (the client's connection, the upstream connection, the trace writer); on two
        // workers each hop could wake the other thread, and a small proxied request cost
        // 4.3 context switches and 0.23 ms of CPU, against 3.1 and 0.19 ms on one; a MiB
        // through it 2.5 ms against 1.55 ms (issue 12, docs/speed.md). One core's worth of
        // TLS is far more than an agent's traffic needs.
        builder.worker_threads(1);
    }
    let runtime = builder
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let uses_container = matches!(
        cli.command,
        Command::Run(_) | Command::Attach(_) | Command::Claude(_) | Command::Resume(_)
    );
    let code = match runtime.block_on(dispatch(cli.command, env)) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                0
            } else if is_cancelled(&err) {
                crate::ui::errln!("moat: cancelled; nothing was left behind");
                EXIT_CANCELLED
            } else if let Some(signal) = interrupted_by(&err) {
                crate::ui::errln!(
                    "moat: cancelled by {}; nothing was left behind",
                    signal.name()
                );
                signal.exit_code()
            } else {
                ui::print_error(&err);
                if uses_container { EXIT_MOAT_FAILED } else { 1 }
            }
        }
    };
    // Exit without waiting for the stdin reader thread, which may sit in a read forever.
    std::process::exit(code);
}

async fn dispatch(command: Command, env: settings::Environment) -> anyhow::Result<i32> {
    // What needs no MOAT_HOME, Docker or settings.
    match command {
        // On one of the runtime's workers, not on the thread in `block_on`: a task woken
        // by I/O then runs where the I/O driver ran, instead of each frame of a log flood
        // waking another thread across cores (the copy of a flood went from 30k to 49k
        // lines/s, about what Docker's own `docker logs -f` reads; see docs/speed.md).
        Command::Supervise(args) => {
            return tokio::spawn(cmd::supervise::supervise(args))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        }
        Command::Version(args) => return cmd::meta::version(&args),
        Command::Completion(args) => return cmd::meta::completion(&args),
        Command::Man(args) => return cmd::meta::man(&args),
        _ => {}
    }
    let ctx = settings::Context::new(&env)?;
    match command {
        Command::Run(args) => cmd::run::run(&ctx, args).await,
        Command::List(args) => cmd::list::list(&ctx, args).await,
        Command::Logs(args) => cmd::logs::logs(&ctx, args).await,
        Command::Attach(args) => cmd::attach::attach(&ctx, args).await,
        Command::Stop(args) => cmd::stop::stop(&ctx, args).await,
        Command::Destroy(args) => cmd::destroy::destroy(&ctx, args).await,
        Command::Prune(args) => cmd::prune::prune(&ctx, args).await,
        Command::Trace(args) => cmd::trace::trace(&ctx, args),
        Command::Config(args) => cmd::config::config(&ctx, args),
        Command::Deps(command) => cmd::deps::deps(&ctx, command),
        Command::Supervise(_) | Command::Version(_) | Command::Completion(_) | Command::Man(_) => {
            unreachable!("handled above")
        }
        Command::Grant(args) => cmd::grant::grant(&ctx, args).await,
        Command::Revoke(args) => cmd::grant::revoke(&ctx, args),
        Command::Claude(args) => cmd::claude::claude(&ctx, args).await,
        Command::Resume(args) => cmd::claude::resume(&ctx, args).await,
        Command::Doctor(args) => cmd::doctor::doctor(&ctx, args).await,
        Command::Trust(args) => cmd::trust::trust(&ctx, args),
        Command::Audit(args) => cmd::audit::audit(&ctx, args).await,
        Command::Snapshot(args) => cmd::snapshot::snapshot(&ctx, args).await,
        Command::Untrust(args) => cmd::trust::untrust(&ctx, args),
        Command::Accept(args) => cmd::accept::accept(&ctx, args).await,
    }
}

/// Logs on stderr: debug with `-v`, else what `RUST_LOG` asks for, else warnings.
fn init_tracing(verbose: bool, rust_log: Option<&str>) {
    let filter = if verbose {
        tracing_subscriber::EnvFilter::new("moat=debug,moat_run=debug,moat_container=debug,info")
    } else {
        rust_log
            .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn"))
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| QuietStderr)
        .with_target(false)
        // Colour only on a terminal and without NO_COLOR: a piped warning stays plain text.
        .with_ansi(ui::stderr_colour())
        // Its default is to `eprintln!` about a failed write, which panics when stderr is
        // closed (`moat logs 2>&1 | head -1`); a lost diagnostic is not worth a crash.
        .log_internal_errors(false)
        .init();
}

/// stderr for logs, where a failed write is dropped: a full disk under a supervisor's
/// `supervisor.log`, or a closed pipe, must not turn a warning into a crash (tracing
/// panics when its writer fails and its own fallback print fails too).
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn is_cancelled(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(moat_run::RunError::Cancelled)))
}

fn interrupted_by(err: &anyhow::Error) -> Option<session::LeaveSignal> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<session::Interrupted>())
        .map(|interrupted| interrupted.0)
}

/// `moat logs | head` closing the pipe is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
