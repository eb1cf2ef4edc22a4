//! The terminal: raw mode that is always restored, and the `Ctrl-/` escape keys.

mod escape;
mod raw;

pub use escape::{ESCAPE_HELP, EscapeAction, EscapeParser};
pub use raw::{RawMode, exit_on_signals, forget, remember};
