//! A run's audit log as moat writes it: what happened to the run, each credential the
//! proxy injected and each request it refused, the digests of `network.jsonl` and
//! `logs.jsonl`, and signed checkpoints — at intervals while the run lives and one that
//! closes the log when it ends. See `moat-audit` for the format and what it proves.
//!
//! Writing is best effort on purpose: a run is never stopped because its audit log could
//! not be written; the failure is logged, and `moat audit verify` then reports the gap.

use std::sync::Arc;
use std::time::Duration;

use moat_audit::{AuditKey, AuditLog};
use moat_home::RunId;
use moat_proxy::NetworkEvent;
use serde_json::{Value, json};

use crate::{RunError, RunStore};

/// How often a long run's log is covered and signed.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// The audit log of one run, with the machine's key.
#[derive(Debug, Clone)]
pub struct RunAudit {
    log: AuditLog,
    key: Arc<AuditKey>,
    store: RunStore,
    id: RunId,
}

impl RunAudit {
    /// The log of run `id`, signed with the key in `MOAT_HOME` (made on first use).
    pub fn open(store: &RunStore, id: &RunId) -> Result<Self, RunError> {
        let key = AuditKey::load_or_create(&store.home().audit_key_file())
            .map_err(|e| RunError::Audit(e.to_string()))?;
        Ok(RunAudit {
            log: AuditLog::new(store.audit_path(id), id.as_str()),
            key: Arc::new(key),
            store: store.clone(),
            id: id.clone(),
        })
    }

    /// Append an entry; a failure is logged, not returned (see the module's note).
    pub fn record(&self, kind: &str, data: Value) {
        if let Err(e) = self.log.append(kind, data) {
            tracing::warn!(%kind, error = %e, "cannot write the run's audit log");
        }
    }

    /// A signature the run's SSH agent made, or refused, or could not get from the user's
    /// agent: which key, for which host and user. Never the signature or what was signed.
    pub fn ssh(&self, event: &moat_ssh::SshEvent) {
        let kind = match event.action {
            moat_ssh::SshAction::Signed => "ssh_signed",
            moat_ssh::SshAction::Refused => "ssh_refused",
            moat_ssh::SshAction::Failed => "ssh_failed",
        };
        self.record(
            kind,
            json!({
                "host": event.host,
                "port": event.port,
                "key": event.key,
                "user": event.user,
                "reason": event.reason,
            }),
        );
    }

    /// What the audit log keeps of a proxied request: a credential going in, or a refusal.
    /// Every request is covered anyway through `network.jsonl`'s digests.
    pub fn network(&self, event: &NetworkEvent) {
        let host = host_of(&event.url);
        if let Some(grant) = &event.grant {
            self.record(
                "credential_injected",
                json!({
                    "grant": grant,
                    "host": host,
                    "headers": event.injected_headers,
                    "method": event.method,
                    "status": event.status,
                }),
            );
        }
        if event.blocked {
            self.record(
                "request_refused",
                json!({
                    "host": host,
                    "method": event.method,
                    "status": event.status,
                    "reason": event.error.clone().unwrap_or_else(|| "the network policy".into()),
                }),
            );
        }
    }

    /// Cover what `network.jsonl` and `logs.jsonl` hold now and sign the head; `last`
    /// closes the log.
    pub fn checkpoint(&self, last: bool) {
        for (name, path) in [
            ("network.jsonl", self.store.network_log_path(&self.id)),
            ("logs.jsonl", self.store.logs_path(&self.id)),
        ] {
            if let Err(e) = self.log.cover(name, &path) {
                tracing::warn!(file = name, error = %e, "cannot cover a file in the audit log");
            }
        }
        if let Err(e) = self.log.checkpoint(&self.key, last) {
            tracing::warn!(error = %e, "cannot sign the run's audit log");
        }
    }

    /// Sign the log every [`CHECKPOINT_INTERVAL`] until the task is aborted.
    pub fn spawn_checkpoints(&self) -> tokio::task::JoinHandle<()> {
        let audit = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let audit = audit.clone();
                let _ = tokio::task::spawn_blocking(move || audit.checkpoint(false)).await;
            }
        })
    }
}

/// `host` of a URL or a `host:port` tunnel label.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_urls_and_tunnel_labels() {
        assert_eq!(host_of("https://api.github.com/user"), "api.github.com");
        assert_eq!(host_of("api.example.test:443"), "api.example.test:443");
        assert_eq!(host_of("http://u:p@10.0.0.1:8000/x?y"), "10.0.0.1:8000");
    }
}
