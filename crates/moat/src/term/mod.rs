//! The terminal: raw mode that is always restored, the `Ctrl-/` escape keys, the modes a
//! program in the container switched on (switched off again when moat leaves), and the
//! control strings of theirs that never reach it (the clipboard, file transfers).

mod escape;
mod modes;
mod raw;
mod screen_filter;

pub use escape::{ESCAPE_HELP, EscapeAction, EscapeParser};
pub use modes::TerminalModes;
pub use raw::{RawMode, exit_on_signals, forget, remember};
pub use screen_filter::ScreenFilter;
