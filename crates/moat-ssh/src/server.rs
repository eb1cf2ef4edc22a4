//! Serving the run's agent on a unix socket: each connection gets its own
//! [`Connection`] state; lists and allowed signatures go to the user's agent, every
//! signature made or refused becomes an [`SshEvent`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;

use crate::agent::{AgentPolicy, Connection, Decision, filter_identities};
use crate::client::{call, list_identities, read_message};
use crate::event::{SshAction, SshEventSink};
use crate::protocol::{Request, Response, frame};

/// How many client connections may be open at once (each is one `ssh` or `git` process
/// inside the container).
const MAX_CONNECTIONS: usize = 256;

/// What the run's agent works with.
pub struct AgentConfig {
    pub policy: AgentPolicy,
    /// The user's agent (`SSH_AUTH_SOCK` of the CLI that started the run), if any.
    pub upstream: Option<PathBuf>,
}

/// A running agent; dropping it or [`AgentHandle::shutdown`] stops it.
pub struct AgentHandle {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl AgentHandle {
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Listen on `path` (mode 0666: the container's user may have any UID; the policy, not
/// the file mode, guards what the socket gives) and serve until shut down.
pub fn start(
    path: &Path,
    config: AgentConfig,
    events: impl SshEventSink,
) -> std::io::Result<AgentHandle> {
    let listener = UnixListener::bind(path)?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    let shared = Arc::new((config, events));
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            match accepted {
                Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                Ok(_) => tracing::warn!("too many SSH agent connections; one was closed"),
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an SSH agent connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(AgentHandle { task: Some(task) })
}

async fn serve_connection<E: SshEventSink>(mut stream: UnixStream, shared: Arc<(AgentConfig, E)>) {
    let (config, events) = &*shared;
    let mut connection = Connection::new();
    loop {
        let message = match read_message(&mut stream).await {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(_) => return,
        };
        let response = match Request::decode(&message) {
            Err(e) => {
                tracing::debug!(error = %e, "an undecodable agent request");
                Response::Failure
            }
            Ok(request) => match connection.decide(&config.policy, request) {
                Decision::Reply(response, event) => {
                    if let Some(event) = event {
                        events.record(event);
                    }
                    response
                }
                Decision::List(keep, event) => match &config.upstream {
                    _ if keep.is_empty() => {
                        if let Some(event) = event {
                            events.record(event);
                        }
                        Response::Identities(Vec::new())
                    }
                    None => Response::Identities(Vec::new()),
                    Some(upstream) => match list_identities(upstream).await {
                        Ok(keys) => Response::Identities(filter_identities(keys, &keep)),
                        Err(e) => {
                            tracing::warn!(error = %e, "listing the user's keys failed");
                            Response::Failure
                        }
                    },
                },
                Decision::Sign {
                    key,
                    data,
                    flags,
                    mut event,
                } => {
                    let answer = match &config.upstream {
                        None => Err("SSH_AUTH_SOCK was not set when the run started".to_owned()),
                        Some(upstream) => {
                            match call(upstream, &Request::Sign { key, data, flags }).await {
                                Ok(Response::Signature(sig)) => Ok(sig),
                                Ok(Response::Failure) => {
                                    Err("your SSH agent refused to sign".to_owned())
                                }
                                Ok(other) => Err(format!("your SSH agent answered {other:?}")),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                    };
                    match answer {
                        Ok(sig) => {
                            events.record(event);
                            Response::Signature(sig)
                        }
                        Err(why) => {
                            event.action = SshAction::Failed;
                            event.reason = Some(why);
                            events.record(event);
                            Response::Failure
                        }
                    }
                }
            },
        };
        if stream.write_all(&frame(&response.encode())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::SshGrantRule;
    use crate::key::tests::{ed25519, ed25519_public, ed25519_sign};
    use crate::protocol::Identity;
    use crate::userauth::tests::userauth;
    use crate::witness::Witness;
    use crate::witness::tests::server_start;
    use std::sync::Mutex;

    /// A stand-in for the user's agent: one Ed25519 key; records the flags it was asked
    /// to sign with. Serves until the returned task is aborted.
    fn fake_user_agent(
        path: &Path,
        key: ed25519_dalek::SigningKey,
        flags: Arc<Mutex<Vec<u32>>>,
    ) -> tokio::task::JoinHandle<()> {
        let listener = UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let key = key.clone();
                let flags = flags.clone();
                tokio::spawn(async move {
                    while let Ok(Some(message)) = read_message(&mut stream).await {
                        let response = match Request::decode(&message).unwrap() {
                            Request::Identities => Response::Identities(vec![Identity {
                                key: ed25519_public(&key).blob().to_vec(),
                                comment: "me@laptop".into(),
                            }]),
                            Request::Sign { data, flags: f, .. } => {
                                flags.lock().unwrap().push(f);
                                Response::Signature(ed25519_sign(&key, &data))
                            }
                            _ => Response::Failure,
                        };
                        stream.write_all(&frame(&response.encode())).await.unwrap();
                    }
                });
            }
        })
    }

    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<crate::SshEvent>>>);

    impl SshEventSink for Events {
        fn record(&self, event: crate::SshEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[tokio::test]
    async fn signs_through_the_users_agent_and_finds_it_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let upstream = dir.path().join("user-agent.sock");
        let user_key = ed25519(1);
        let host = ed25519(2);
        let flags = Arc::new(Mutex::new(Vec::new()));
        let user_agent = fake_user_agent(&upstream, user_key.clone(), flags.clone());
        let witness = Witness::new();
        let user = ed25519_public(&user_key);
        let config = AgentConfig {
            policy: AgentPolicy {
                grants: vec![SshGrantRule {
                    host: "github.com".into(),
                    port: 22,
                    key: user.clone(),
                    host_keys: vec![ed25519_public(&host)],
                }],
                witness: witness.clone(),
                records_unwritable: None,
            },
            upstream: Some(upstream.clone()),
        };
        let events = Events::default();
        let socket = dir.path().join("agent.sock");
        let agent = start(&socket, config, events.clone()).unwrap();

        let login = |sid: &'static [u8]| {
            let host = host.clone();
            let user = user.clone();
            let witness = witness.clone();
            let socket = socket.clone();
            async move {
                let host_key = ed25519_public(&host);
                let signature = ed25519_sign(&host, sid);
                witness
                    .watch("github.com", 22)
                    .feed(&server_start(host_key.blob(), &signature));
                let mut stream = UnixStream::connect(&socket).await.unwrap();
                let mut ask = async |request: Request| {
                    stream.write_all(&frame(&request.encode())).await.unwrap();
                    let message = read_message(&mut stream).await.ok().flatten().unwrap();
                    Response::decode(&message).unwrap()
                };
                let bound = ask(Request::SessionBind {
                    host_key: host_key.blob().to_vec(),
                    session_id: sid.to_vec(),
                    signature,
                    forwarding: false,
                })
                .await;
                assert_eq!(bound, Response::Success);
                let listed = ask(Request::Identities).await;
                let signed = ask(Request::Sign {
                    key: user.blob().to_vec(),
                    data: userauth(sid, user.blob(), None),
                    flags: crate::SSH_AGENT_RSA_SHA2_512,
                })
                .await;
                (listed, signed)
            }
        };
        let listed_one = |r: &Response| matches!(r, Response::Identities(keys) if keys.len() == 1);

        let (listed, signed) = login(b"first").await;
        assert!(listed_one(&listed) && matches!(signed, Response::Signature(_)));
        // The user's agent goes away and comes back at the same path.
        user_agent.abort();
        let _ = user_agent.await;
        let (listed, signed) = login(b"second").await;
        assert_eq!((listed, signed), (Response::Failure, Response::Failure));
        fs_err::remove_file(&upstream).unwrap();
        let _again = fake_user_agent(&upstream, user_key.clone(), flags.clone());
        let (listed, signed) = login(b"third").await;
        assert!(listed_one(&listed) && matches!(signed, Response::Signature(_)));

        assert_eq!(
            *flags.lock().unwrap(),
            [4, 4],
            "flags reach the user's agent"
        );
        let actions: Vec<SshAction> = events.0.lock().unwrap().iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [SshAction::Signed, SshAction::Failed, SshAction::Signed]
        );
        agent.shutdown().await;
    }
}
