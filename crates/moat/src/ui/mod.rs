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

mod error;
mod progress;
pub mod prompt;
mod table;

pub use error::{UserError, print_error};
pub(crate) use error::{hint as error_hint, message as error_message};
pub use progress::BuildProgress;
pub use table::{age, held_back_notice, runs_table, table};
