//! The terminal's settings, restored however moat leaves: normal return, error, panic, or
//! a signal.
//!
//! Two things change them: raw mode ([`RawMode`], attached sessions and `claude
//! setup-token`) and hidden input (`ui::prompt::ask_secret`, which registers what it
//! changed with [`remember`]). Guards restore on drop, and so on returns and errors; the
//! panic hook restores before the message; a signal is handled by whoever is running:
//! an attached session leaves the run going ([`crate::session::LeaveSignals`]), a prompt
//! calls [`exit_on_signals`].

use std::os::fd::AsFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::termios::{self, SetArg, Termios};

static RAW: AtomicBool = AtomicBool::new(false);
/// The settings hidden input replaced, while it is on.
static HIDDEN: Mutex<Option<Termios>> = Mutex::new(None);

/// While alive, the terminal is in raw mode.
#[derive(Debug)]
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> std::io::Result<Self> {
        install_panic_hook();
        crossterm::terminal::enable_raw_mode()?;
        RAW.store(true, Ordering::SeqCst);
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if RAW.swap(false, Ordering::SeqCst) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Hidden input replaced `saved` on stdin's terminal: put it back if moat leaves early.
pub fn remember(saved: Termios) {
    install_panic_hook();
    *HIDDEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
}

/// Hidden input is over (and put the settings back itself).
pub fn forget() {
    *HIDDEN.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Put the terminal back as moat found it, whatever changed it.
pub fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
    // `try_lock`: this may run in the panic hook of a thread holding the lock.
    if let Ok(mut hidden) = HIDDEN.try_lock()
        && let Some(saved) = hidden.take()
    {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &saved);
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// From now on, SIGTERM or SIGHUP restore the terminal, say `moat: SIGTERM: <what>` and
/// exit with 128 + the signal's number; for questions and `claude setup-token`, where
/// the default (dying at once) would leave the terminal without echo. Not for attached
/// sessions, which handle the signals themselves. Must run inside the async runtime;
/// outside it, it does nothing.
pub fn exit_on_signals(what: &'static str) {
    use tokio::signal::unix::{SignalKind, signal};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Registered here, not in the task: a signal before the task first runs is kept.
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        runtime.spawn(async move {
            let (name, code) = tokio::select! {
                _ = term.recv() => ("SIGTERM", 128 + 15),
                _ = hup.recv() => ("SIGHUP", 128 + 1),
            };
            restore();
            crate::ui::errln!("\r\nmoat: {name}: {what}");
            std::process::exit(code);
        });
    });
}
