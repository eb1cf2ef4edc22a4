//! The terminal: raw mode that is always restored, the `Ctrl-/` escape keys, the modes a
//! program in the container switched on (switched off again when moat leaves), and the
//! clipboard sequences that never reach it.

mod clipboard;
mod escape;
mod modes;
mod raw;

pub use clipboard::ClipboardFilter;
pub use escape::{ESCAPE_HELP, EscapeAction, EscapeParser};
pub use modes::TerminalModes;
pub use raw::{RawMode, exit_on_signals, forget, remember};
