//! Where moat keeps its state (`$MOAT_HOME`, default `~/.moat`), the ids that name things
//! there, the one way files under it are written (atomically, with tight permissions),
//! and the one way a file someone else may have chosen is read (bounded, never waiting).
//!
//! This crate knows paths and bytes only: it never talks to Docker or prints.

mod atomic;
mod ids;
mod keyring;
mod layout;
mod read;

pub use atomic::{write_atomic, write_private_atomic};
pub use ids::{IdError, RunId, check_run_name};
pub use keyring::KeyringMode;
pub use layout::{HomeError, MoatHome};
pub use read::{BoundedFile, FileKind, MIB, ReadError, human_bytes, read_bounded};
