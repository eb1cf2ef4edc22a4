//! The terminal: raw mode that is always restored, the `Ctrl-/` escape keys, and the
//! modes a program in the container switched on (switched off again when moat leaves).

mod escape;
mod modes;
mod raw;

pub use escape::{ESCAPE_HELP, EscapeAction, EscapeParser};
pub use modes::TerminalModes;
pub use raw::{RawMode, exit_on_signals, forget, remember};
