//! Everything moat shows a person: errors with hints, tables, build progress, ages.
//! The binary is the only crate that prints, and within it this module formats.

mod error;
mod progress;
mod table;

pub use error::{UserError, print_error};
pub use progress::BuildProgress;
pub use table::runs_table;
