//! What the agent records: one event per signature made or refused, written by the
//! supervisor to the run's `ssh.jsonl` and shown by `moat trace`.

use serde::{Deserialize, Serialize};

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SshAction {
    /// A signature was made (by the user's agent) and handed to the container.
    Signed,
    /// The request was refused by moat's policy; nothing was signed.
    Refused,
    /// The request was allowed but the user's agent could not be reached or refused it.
    Failed,
}

/// One line of `ssh.jsonl`. Holds no signature and no data that was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshEvent {
    pub ts: jiff::Timestamp,
    pub action: SshAction,
    /// The destination, when the connection said which (its session-bind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The fingerprint of the key asked to sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The user the login was for (`git`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SshEvent {
    pub(crate) fn new(action: SshAction) -> Self {
        SshEvent {
            ts: jiff::Timestamp::now(),
            action,
            host: None,
            port: None,
            key: None,
            user: None,
            reason: None,
        }
    }
}

/// Where the agent delivers events; called on the request path, so it must not block.
pub trait SshEventSink: Send + Sync + 'static {
    fn record(&self, event: SshEvent);
}

impl SshEventSink for tokio::sync::mpsc::UnboundedSender<SshEvent> {
    fn record(&self, event: SshEvent) {
        let _ = self.send(event);
    }
}
