//! Being attached to a run: passing stdin, stdout and stderr through, and for interactive
//! runs the raw terminal, the escape keys and window resizes.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use moat_container::{Attached, Docker, LogStream};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::term::{EscapeAction, EscapeParser, RawMode, ScreenFilter, TerminalModes};

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The container's output ended: the command exited.
    Exited,
    /// The user left; the run goes on.
    Detached,
    /// The user asked to stop the run.
    StopRequested,
    /// moat was told to go (SIGTERM, SIGHUP: a closed terminal, a logout); the run goes on.
    Signalled(LeaveSignal),
}

/// A signal that makes an attached CLI leave while its run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveSignal {
    Term,
    Hup,
    /// Only in terminal mode, where Ctrl-C is a key sent to the run, so a SIGINT can only
    /// come from outside (`kill -INT`).
    Int,
}

impl LeaveSignal {
    pub fn name(self) -> &'static str {
        match self {
            LeaveSignal::Term => "SIGTERM",
            LeaveSignal::Hup => "SIGHUP",
            LeaveSignal::Int => "SIGINT",
        }
    }

    /// 128 + the signal's number, as shells report a process the signal ended.
    pub fn exit_code(self) -> i32 {
        128 + match self {
            LeaveSignal::Hup => 1,
            LeaveSignal::Int => 2,
            LeaveSignal::Term => 15,
        }
    }
}

/// moat's own work (preparing a run) was cut short by a signal; what it had made is
/// undone, and moat exits with 128 + the signal's number.
#[derive(Debug)]
pub struct Interrupted(pub LeaveSignal);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", self.0.name())
    }
}

impl std::error::Error for Interrupted {}

/// The signals an attached CLI handles itself, registered once before the session (so
/// one arriving between two waits is kept, not lost to the default action that would
/// kill moat with the terminal still raw).
pub struct LeaveSignals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl LeaveSignals {
    pub fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(LeaveSignals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM, SIGHUP or SIGINT (what a SIGINT means is the caller's: Ctrl-C in
    /// pipe mode and while preparing, a `kill -INT` in terminal mode).
    pub async fn next(&mut self) -> LeaveSignal {
        tokio::select! {
            _ = self.term.recv() => LeaveSignal::Term,
            _ = self.hup.recv() => LeaveSignal::Hup,
            _ = self.int.recv() => LeaveSignal::Int,
        }
    }
}

/// What Ctrl-C does in a non-interactive session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlC {
    /// Send SIGINT to the command (as `docker run` does); a second Ctrl-C within two
    /// seconds stops the run.
    Forward,
    /// Leave the run going (for `moat attach` to an output-only run).
    Detach,
}

/// Reads the process's stdin on a thread of its own (a blocking read cannot be
/// cancelled, and stdin must not be made non-blocking: the shell shares it).
fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Pass stdin (when `with_stdin`) to the container and its output to stdout and stderr.
pub async fn pipe_session(
    docker: &Docker,
    container: &str,
    attached: Attached,
    with_stdin: bool,
    ctrl_c: CtrlC,
    signals: &mut LeaveSignals,
) -> Result<SessionEnd> {
    let Attached {
        mut output,
        mut input,
    } = attached;
    let mut stdin = with_stdin.then(stdin_reader);
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    // Output to a terminal loses what reaches beyond the screen (`ScreenFilter`);
    // output to a file or a pipe is the program's bytes, as written. Both streams on
    // terminals share one filter: the terminal reads them as one stream, so a sequence
    // begun on stdout and ended on stderr is one sequence there.
    use std::io::IsTerminal as _;
    let terminals = [
        std::io::stdout().is_terminal(),
        std::io::stderr().is_terminal(),
    ];
    let mut filter = ScreenFilter::default();
    let mut last_interrupt: Option<Instant> = None;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => {
                    let (out, terminal): (&mut (dyn tokio::io::AsyncWrite + Unpin + Send), _) = match chunk.stream {
                        LogStream::Stdout => (&mut stdout, terminals[0]),
                        LogStream::Stderr => (&mut stderr, terminals[1]),
                    };
                    if terminal {
                        out.write_all(&filter.filter(&chunk.bytes)).await?;
                    } else {
                        out.write_all(&chunk.bytes).await?;
                    }
                    out.flush().await?;
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(SessionEnd::Exited),
            },
            data = recv(&mut stdin) => match data {
                Some(bytes) => {
                    // The command may have closed its stdin already; its output decides
                    // when the session ends, not this.
                    let _ = input.write_all(&bytes).await;
                }
                None => {
                    stdin = None;
                    // EOF: close the container's stdin, as `docker run -i` does.
                    let _ = input.shutdown().await;
                }
            },
            signal = signals.next() => match (signal, ctrl_c) {
                (LeaveSignal::Term | LeaveSignal::Hup, _) => {
                    return Ok(SessionEnd::Signalled(signal));
                }
                (LeaveSignal::Int, CtrlC::Detach) => return Ok(SessionEnd::Detached),
                (LeaveSignal::Int, CtrlC::Forward) => {
                    if last_interrupt.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
                        return Ok(SessionEnd::StopRequested);
                    }
                    last_interrupt = Some(Instant::now());
                    docker.signal_container(container, "SIGINT").await?;
                }
            },
        }
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// An interactive session on the container's terminal. `redraw` nudges the terminal size
/// so a full-screen program repaints (used when re-attaching); `on_size` learns each
/// size the container's terminal is given (the run keeps them for `moat logs`).
///
/// However the session ends, what the program switched on in the user's terminal and
/// left on (the alternate screen, a hidden cursor, mouse reporting...) is switched off
/// before moat says anything, and when the program keeps running, moat's words go below
/// its screen, not over it.
pub async fn terminal_session(
    docker: &Docker,
    container: &str,
    attached: Attached,
    redraw: bool,
    signals: &mut LeaveSignals,
    on_size: &mut (dyn FnMut(u16, u16) + Send),
) -> Result<SessionEnd> {
    let mut modes = TerminalModes::default();
    let ended = {
        let _raw = RawMode::enable()?;
        terminal_loop(
            docker, container, attached, redraw, signals, on_size, &mut modes,
        )
        .await
    };
    let mut leave = Vec::new();
    if modes.any_on() {
        leave.extend(modes.reset_sequence());
    }
    if !matches!(ended, Ok(SessionEnd::Exited)) && !modes.on_alternate_screen() {
        // The program is still drawing in the main screen, the cursor somewhere in
        // it: below its last row is the one place moat's words do not land on it.
        leave.extend_from_slice(b"\x1b[999;1H\r\n");
    }
    if !leave.is_empty() {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&leave).and_then(|()| stdout.flush());
    }
    ended
}

async fn terminal_loop(
    docker: &Docker,
    container: &str,
    attached: Attached,
    redraw: bool,
    signals: &mut LeaveSignals,
    on_size: &mut (dyn FnMut(u16, u16) + Send),
    modes: &mut TerminalModes,
) -> Result<SessionEnd> {
    let Attached {
        mut output,
        mut input,
    } = attached;
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    resize_to_terminal(docker, container, redraw, on_size).await;
    let mut stdin = Some(stdin_reader());
    let mut parser = EscapeParser::default();
    let mut stdout = tokio::io::stdout();
    let mut screen = ScreenFilter::default();
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => {
                    // The modes followed are those of what reaches the terminal.
                    let shown = screen.filter(&chunk.bytes);
                    modes.feed(&shown);
                    stdout.write_all(&shown).await?;
                    stdout.flush().await?;
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(SessionEnd::Exited),
            },
            data = recv(&mut stdin) => match data {
                Some(bytes) => {
                    for action in parser.feed(&bytes) {
                        match action {
                            EscapeAction::Forward(bytes) => {
                                let _ = input.write_all(&bytes).await;
                            }
                            EscapeAction::Detach => return Ok(SessionEnd::Detached),
                            EscapeAction::Stop => return Ok(SessionEnd::StopRequested),
                        }
                    }
                }
                // The terminal closed: leave the run going.
                None => return Ok(SessionEnd::Detached),
            },
            _ = winch.recv() => resize_to_terminal(docker, container, false, on_size).await,
            // Returning drops the raw-mode guard: the terminal is restored before moat
            // says anything or exits.
            signal = signals.next() => return Ok(SessionEnd::Signalled(signal)),
        }
    }
}

/// Give the container's terminal the size of ours (first one row more when `nudge`, so
/// a full-screen program sees a change and repaints).
async fn resize_to_terminal(
    docker: &Docker,
    container: &str,
    nudge: bool,
    on_size: &mut (dyn FnMut(u16, u16) + Send),
) {
    if let Ok((cols, rows)) = crossterm::terminal::size() {
        if nudge {
            let _ = docker
                .resize_tty(container, cols, rows.saturating_add(1))
                .await;
        }
        if docker.resize_tty(container, cols, rows).await.is_ok() {
            on_size(cols, rows);
        }
    }
}

/// `on_size` for [`terminal_session`]: each size goes into the run's `terminal.jsonl`
/// (for `moat logs`); a write that fails costs only that (the session goes on).
pub fn record_sizes(
    store: moat_run::RunStore,
    id: moat_home::RunId,
) -> impl FnMut(u16, u16) + Send {
    move |cols, rows| {
        let size = moat_run::TerminalSize {
            ts: jiff::Timestamp::now(),
            cols,
            rows,
        };
        if let Err(e) = moat_run::record_terminal_size(&store.terminal_sizes_path(&id), size) {
            tracing::debug!(error = %e, "recording the terminal's size");
        }
    }
}
