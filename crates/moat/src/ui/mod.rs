//! Everything moat shows a person: errors with hints, tables, build progress, ages.
//! The binary is the only crate that prints, and within it this module formats.

/// `println!` that returns an error instead of panicking when stdout is gone
/// (`moat list | head`); `main` treats a broken pipe as success.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// `print!` with the same care as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use out;

/// `eprintln!` for moat's own messages (notes, warnings, questions): stderr, never a
/// panic when stderr is gone. With `outln!`/`out!` these are the only ways moat writes to
/// the terminal; the workspace lints deny `println!` and `eprintln!` everywhere.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use errln;

/// `eprint!` with the same care as [`errln!`] (a prompt, a line finished later).
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, $($arg)*);
        let _ = stderr.flush();
    }};
}
pub(crate) use err;

/// Whether moat may colour what it writes to stderr: a terminal, and no `NO_COLOR`.
static STDERR_COLOUR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decide once, at start-up, whether output may be coloured: only on a terminal, and
/// never with `NO_COLOR` (read by `Environment::read`). Also tells `console` (what
/// indicatif draws with), which would otherwise look at the environment itself.
pub fn init_colour(no_color: bool) {
    use std::io::IsTerminal;
    let stderr = !no_color && std::io::stderr().is_terminal();
    let stdout = !no_color && std::io::stdout().is_terminal();
    STDERR_COLOUR.store(stderr, std::sync::atomic::Ordering::Relaxed);
    console::set_colors_enabled(stdout);
    console::set_colors_enabled_stderr(stderr);
}

/// See [`init_colour`].
pub fn stderr_colour() -> bool {
    STDERR_COLOUR.load(std::sync::atomic::Ordering::Relaxed)
}

/// `warning: TEXT` on stderr. A warning often quotes what a run or a repository chose (a
/// plugin's name from a workspace's settings, git's message about a file the run made),
/// so the text is shown [`moat_text::escaped_text`].
pub fn warning(text: &str) {
    errln!("warning: {}", moat_text::escaped_text(text));
}

/// `value` as the pretty JSON a `--json` listing prints: much of it is what a run or a
/// repository chose, so it is [`moat_text::escaped_json`] (the same document, shown as
/// text on a terminal).
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let json = serde_json::to_string_pretty(value)?;
    Ok(moat_text::escaped_json(&json).into_owned())
}

mod error;
mod progress;
pub mod prompt;
mod size;
mod table;
mod template;

pub use error::{UserError, print_error};
pub(crate) use error::{hint as error_hint, message as error_message};
pub use progress::{BuildProgress, Progress};
pub use size::{age_of, bytes, parse_age};
pub use table::{age, held_back_notice, runs_table, state_cell, table};
pub use template::{TEMPLATE_HELP, Template};
