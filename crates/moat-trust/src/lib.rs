//! Workspace trust: a workspace's `moat.yaml`/`agent.yaml` takes effect only once the user
//! has approved that exact content.
//!
//! A workspace may come from a stranger's repository, and the agent inside a run can write
//! to it; its configuration file can ask for credentials, host mounts and root hooks. So,
//! like `direnv allow` and VS Code's Workspace Trust, moat records what the user approved
//! — the file's SHA-256 and its text, per workspace path, under `$MOAT_HOME/trust/` — and
//! treats any other content as untrusted until the user says otherwise.
//!
//! * [`TrustStore`]: the records (`state`, `approve`, `revoke`, `list`).
//! * [`Summary`]: what a configuration asks for, shown before the user decides.
//! * [`diff`]: the change since the version last trusted.
//!
//! The crate takes values and returns values: asking the question is the CLI's job.

mod diff;
mod store;
mod summary;

pub use diff::diff;
pub use store::{TrustError, TrustRecord, TrustState, TrustStore, content_hash};
pub use summary::{Summary, SummaryItem};
