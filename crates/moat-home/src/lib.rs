//! Where moat keeps its state (`$MOAT_HOME`, default `~/.moat`), the ids that name things
//! there, the one way files under it are written (atomically, with tight permissions),
//! the one way a file someone else may have chosen is read (bounded, never waiting), and
//! the path checks for a tree someone else writes (a link on the way).
//!
//! This crate knows paths and bytes only: it never talks to Docker or prints.

mod atomic;
mod ids;
mod keyring;
mod layout;
mod paths;
mod read;

pub use atomic::{write_atomic, write_private_atomic};
pub use ids::{IdError, RunId, check_run_name};
pub use keyring::KeyringMode;
pub use layout::{HomeError, MoatHome};
pub use paths::{lexically_normal, linked_on_the_way};
pub use read::{BoundedFile, FileKind, MIB, ReadError, human_bytes, read_bounded};
