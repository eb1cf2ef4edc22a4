//! The agent's policy, as a pure state machine per client connection: what it lists, and
//! the checks a signature request must pass before it is handed to the user's agent.
//!
//! A request is signed only when all hold:
//! * the key is one the run was granted;
//! * the data is a user-authentication request (never an SSHSIG blob or anything else);
//! * the connection carried a `session-bind@openssh.com` whose server signature over the
//!   session ID verifies with the host key in it, for a direct connection (no agent
//!   forwarding), and no bind on it failed;
//! * the login is for the session bound last (the session ID in the data is its ID; the
//!   key in the data is the key asked to sign; a host-bound login names that host key);
//! * the run's proxy saw that very key exchange on a tunnel to a host, that host is
//!   granted with this key, and the bound host key is one pinned for it.
//!
//! Everything else is answered with a failure and recorded with the reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::event::{SshAction, SshEvent};
use crate::key::PublicKey;
use crate::protocol::{Identity, Request, Response, request_name};
use crate::userauth::{NotUserAuth, parse_userauth};
use crate::witness::{Seen, Witness};

/// OpenSSH's `AGENT_MAX_SESSION_IDS`: a connection binds at most this many times.
const MAX_BINDS: usize = 16;

/// One host a run may use SSH keys for: the key and the host keys pinned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshGrantRule {
    /// Lowercase host name, as granted (`github.com`).
    pub host: String,
    pub port: u16,
    /// The user's public key granted for this host.
    pub key: PublicKey,
    /// The host's keys pinned when it was granted.
    pub host_keys: Vec<PublicKey>,
}

/// The grants of one run and what its proxy saw.
#[derive(Debug, Clone)]
pub struct AgentPolicy {
    pub grants: Vec<SshGrantRule>,
    pub witness: Witness,
    /// Up while the run's records cannot be written: nothing is signed then, as the proxy
    /// forwards nothing (a signature the run cannot record is not made).
    pub records_unwritable: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Clone)]
struct Bind {
    host_key: Vec<u8>,
    session_id: Vec<u8>,
    forwarding: bool,
    seen: Seen,
}

/// The state of one client connection: its session binds.
#[derive(Debug, Default)]
pub struct Connection {
    binds: Vec<Bind>,
    bind_failed: bool,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer this, with an event to record if any.
    Reply(Response, Option<SshEvent>),
    /// Ask the user's agent for its keys and answer with those whose blobs are here;
    /// the event says why none are offered, when the connection is bound to a host it
    /// gets no key for.
    List(Vec<Vec<u8>>, Option<SshEvent>),
    /// Forward the signature request to the user's agent as it is (flags included);
    /// `event` is recorded as signed or failed by the outcome.
    Sign {
        key: Vec<u8>,
        data: Vec<u8>,
        flags: u32,
        event: SshEvent,
    },
}

fn refused(reason: impl Into<String>, key: Option<&PublicKey>) -> Decision {
    let mut event = SshEvent::new(SshAction::Refused);
    event.reason = Some(reason.into());
    event.key = key.map(PublicKey::fingerprint);
    Decision::Reply(Response::Failure, Some(event))
}

impl Connection {
    pub fn new() -> Self {
        Connection::default()
    }

    pub fn decide(&mut self, policy: &AgentPolicy, request: Request) -> Decision {
        match request {
            Request::Identities => {
                let keys = self.listed(policy);
                let event = if keys.is_empty() {
                    self.why_no_keys(policy)
                } else {
                    None
                };
                Decision::List(keys, event)
            }
            Request::SessionBind {
                host_key,
                session_id,
                signature,
                forwarding,
            } => self.bind(policy, host_key, session_id, signature, forwarding),
            Request::Sign { key, data, flags } => self.sign(policy, key, data, flags),
            Request::Extension { name } => {
                // Extensions are optional; a client asking for one it does not get goes on.
                tracing::debug!(%name, "an unsupported agent extension was asked for");
                Decision::Reply(Response::Failure, None)
            }
            Request::Other { kind } => refused(
                format!(
                    "{} is not allowed: the run's agent only lists and signs",
                    request_name(kind)
                ),
                None,
            ),
        }
    }

    /// The keys to list: those granted for the destination this connection is bound to,
    /// or, before any bind, every granted key.
    fn listed(&self, policy: &AgentPolicy) -> Vec<Vec<u8>> {
        let bound = match self.binds.last().map(|b| &b.seen) {
            Some(Seen::Once(s)) => Some((s.host.clone(), s.port)),
            _ => None,
        };
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for grant in &policy.grants {
            let for_here = bound
                .as_ref()
                .is_none_or(|(h, p)| *h == grant.host && *p == grant.port);
            if for_here && !keys.iter().any(|k| k == grant.key.blob()) {
                keys.push(grant.key.blob().to_vec());
            }
        }
        keys
    }

    /// Why a bound connection is offered no key: it is bound to a host that is not
    /// granted, or to a session the proxy did not carry.
    fn why_no_keys(&self, policy: &AgentPolicy) -> Option<SshEvent> {
        let bind = self.binds.last()?;
        let mut event = SshEvent::new(SshAction::Refused);
        match &bind.seen {
            Seen::Once(s) => {
                event.host = Some(s.host.clone());
                event.port = Some(s.port);
                let granted = policy
                    .grants
                    .iter()
                    .any(|g| g.host == s.host && g.port == s.port);
                event.reason = Some(if granted {
                    return None;
                } else {
                    format!(
                        "SSH to `{}` is not granted to this run: no key was offered",
                        host_label(&s.host, s.port)
                    )
                });
            }
            Seen::Never => {
                event.reason = Some(
                    "the session did not go through the run's proxy: no key was offered".into(),
                )
            }
            Seen::Conflicting => {
                event.reason = Some(
                    "the server's key exchange was seen on tunnels to different hosts: no key \
                     was offered"
                        .into(),
                )
            }
        }
        Some(event)
    }

    fn bind(
        &mut self,
        policy: &AgentPolicy,
        host_key: Vec<u8>,
        session_id: Vec<u8>,
        signature: Vec<u8>,
        forwarding: bool,
    ) -> Decision {
        if self.binds.len() >= MAX_BINDS {
            self.bind_failed = true;
            return refused("too many session-binds on one agent connection", None);
        }
        let verified = PublicKey::from_blob(&host_key)
            .map_err(|e| e.to_string())
            .and_then(|key| {
                key.verify(&session_id, &signature)
                    .map_err(|e| e.to_string())
                    .map(|()| key)
            });
        let key = match verified {
            Ok(key) => key,
            Err(why) => {
                self.bind_failed = true;
                return refused(
                    format!(
                        "a session-bind did not verify ({why}); this connection gets no signature"
                    ),
                    None,
                );
            }
        };
        let seen = policy.witness.lookup(key.blob(), &signature);
        self.binds.push(Bind {
            host_key,
            session_id,
            forwarding,
            seen,
        });
        Decision::Reply(Response::Success, None)
    }

    fn sign(&mut self, policy: &AgentPolicy, key: Vec<u8>, data: Vec<u8>, flags: u32) -> Decision {
        let Ok(public) = PublicKey::from_blob(&key) else {
            return refused("the key to sign with does not decode", None);
        };
        let public = &public;
        if !policy.grants.iter().any(|g| g.key == *public) {
            return refused("this key is not granted to the run", Some(public));
        }
        if policy
            .records_unwritable
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
        {
            return refused(
                "the run's records cannot be written (is the disk full?); moat signs nothing it cannot record",
                Some(public),
            );
        }
        let auth = match parse_userauth(&data) {
            Ok(auth) => auth,
            Err(e @ NotUserAuth::Sshsig) => return refused(e.to_string(), Some(public)),
            Err(e) => return refused(e.to_string(), Some(public)),
        };
        if self.bind_failed {
            return refused(
                "a session-bind on this connection did not verify",
                Some(public),
            );
        }
        let Some(bind) = self.binds.last() else {
            return refused(
                "the client sent no session-bind, so which server the login is for is unknown \
                 (OpenSSH 8.9 or newer sends one)",
                Some(public),
            );
        };
        if self.binds.iter().any(|b| b.forwarding) {
            return refused("agent forwarding is not allowed", Some(public));
        }
        if auth.session_id != bind.session_id.as_slice() {
            return refused(
                "the login is for another session than the one the connection is bound to",
                Some(public),
            );
        }
        if auth.key != key.as_slice() {
            return refused(
                "the login names another key than the one asked to sign",
                Some(public),
            );
        }
        if auth.host_key.is_some_and(|h| h != bind.host_key.as_slice()) {
            return refused(
                "the login names another host key than the one the session is bound to",
                Some(public),
            );
        }
        let sighting = match &bind.seen {
            Seen::Once(s) => s,
            Seen::Never => {
                return refused(
                    "the session did not go through the run's proxy (a connection nested in \
                     another SSH connection, or made up)",
                    Some(public),
                );
            }
            Seen::Conflicting => {
                return refused(
                    "the server's key exchange was seen on tunnels to different hosts",
                    Some(public),
                );
            }
        };
        let mut event = SshEvent::new(SshAction::Refused);
        event.host = Some(sighting.host.clone());
        event.port = Some(sighting.port);
        event.key = Some(public.fingerprint());
        event.user = Some(auth.user.to_owned());
        let for_host: Vec<&SshGrantRule> = policy
            .grants
            .iter()
            .filter(|g| g.host == sighting.host && g.port == sighting.port)
            .collect();
        let reason = if for_host.is_empty() {
            Some(format!(
                "SSH to `{}` is not granted to this run",
                host_label(&sighting.host, sighting.port)
            ))
        } else if !for_host.iter().any(|g| g.key == *public) {
            Some(format!(
                "this key is not the one granted for `{}`",
                host_label(&sighting.host, sighting.port)
            ))
        } else if !for_host
            .iter()
            .any(|g| g.key == *public && g.host_keys.iter().any(|k| k.blob() == bind.host_key))
        {
            Some(format!(
                "the server's host key {} is not one pinned for `{}`",
                crate::key::fingerprint_of(&bind.host_key),
                sighting.host
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            event.reason = Some(reason);
            return Decision::Reply(Response::Failure, Some(event));
        }
        event.action = SshAction::Signed;
        Decision::Sign {
            key,
            data,
            flags,
            event,
        }
    }
}

/// `host`, or `host:port` off port 22.
fn host_label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// Of the user's agent's keys, those in `keep`, in the order the user's agent lists them.
pub fn filter_identities(upstream: Vec<Identity>, keep: &[Vec<u8>]) -> Vec<Identity> {
    upstream
        .into_iter()
        .filter(|id| keep.contains(&id.key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::tests::{ed25519, ed25519_public, ed25519_sign};
    use crate::userauth::tests::userauth;
    use crate::witness::tests::server_start;

    struct World {
        policy: AgentPolicy,
        user: PublicKey,
        github: ed25519_dalek::SigningKey,
        gitlab: ed25519_dalek::SigningKey,
    }

    fn world() -> World {
        let user = ed25519_public(&ed25519(10));
        let github = ed25519(20);
        let gitlab = ed25519(30);
        let policy = AgentPolicy {
            grants: vec![SshGrantRule {
                host: "github.com".into(),
                port: 22,
                key: user.clone(),
                host_keys: vec![ed25519_public(&github)],
            }],
            witness: Witness::new(),
            records_unwritable: None,
        };
        World {
            policy,
            user,
            github,
            gitlab,
        }
    }

    impl World {
        /// A session `sid` with the server holding `host`, reached through a tunnel the
        /// proxy opened for `name`; returns the bind request the client would send.
        fn session(&self, name: &str, host: &ed25519_dalek::SigningKey, sid: &[u8]) -> Request {
            let host_key = ed25519_public(host);
            let signature = ed25519_sign(host, sid);
            self.policy
                .witness
                .watch(name, 22)
                .feed(&server_start(host_key.blob(), &signature));
            Request::SessionBind {
                host_key: host_key.blob().to_vec(),
                session_id: sid.to_vec(),
                signature,
                forwarding: false,
            }
        }

        fn sign(&self, sid: &[u8]) -> Request {
            Request::Sign {
                key: self.user.blob().to_vec(),
                data: userauth(sid, self.user.blob(), None),
                flags: 4,
            }
        }
    }

    fn reason(decision: &Decision) -> String {
        match decision {
            Decision::Reply(Response::Failure, Some(event)) => {
                assert_eq!(event.action, SshAction::Refused);
                event.reason.clone().unwrap()
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_bound_login_to_a_granted_pinned_host_is_signed_with_its_flags() {
        let w = world();
        let mut conn = Connection::new();
        let bind = w.session("github.com", &w.github, b"sid-1");
        assert_eq!(
            conn.decide(&w.policy, bind),
            Decision::Reply(Response::Success, None)
        );
        assert_eq!(
            conn.decide(&w.policy, Request::Identities),
            Decision::List(vec![w.user.blob().to_vec()], None)
        );
        match conn.decide(&w.policy, w.sign(b"sid-1")) {
            Decision::Sign { flags, event, .. } => {
                assert_eq!(flags, 4, "the RSA hash flags are forwarded");
                assert_eq!(event.action, SshAction::Signed);
                assert_eq!(event.host.as_deref(), Some("github.com"));
                assert_eq!(event.user.as_deref(), Some("git"));
                assert_eq!(event.key, Some(w.user.fingerprint()));
            }
            other => panic!("{other:?}"),
        }
        // The host-bound method naming the bound key is signed too.
        let data = userauth(
            b"sid-1",
            w.user.blob(),
            Some(ed25519_public(&w.github).blob()),
        );
        let request = Request::Sign {
            key: w.user.blob().to_vec(),
            data,
            flags: 0,
        };
        assert!(matches!(
            conn.decide(&w.policy, request),
            Decision::Sign { .. }
        ));
    }

    #[test]
    fn without_a_bind_nothing_is_signed() {
        let w = world();
        let mut conn = Connection::new();
        assert!(reason(&conn.decide(&w.policy, w.sign(b"sid-1"))).contains("no session-bind"));
    }

    #[test]
    fn a_host_behind_another_name_is_refused_even_with_the_same_host_key() {
        let w = world();
        let mut conn = Connection::new();
        // The same server (its key is pinned for github.com), reached as gitlab.com.
        let bind = w.session("gitlab.com", &w.github, b"sid-2");
        conn.decide(&w.policy, bind);
        let Decision::List(keys, Some(event)) = conn.decide(&w.policy, Request::Identities) else {
            panic!("a bound, ungranted connection is told why it gets no key")
        };
        assert!(keys.is_empty());
        assert_eq!(event.host.as_deref(), Some("gitlab.com"));
        assert!(event.reason.unwrap().contains("not granted"));
        let decision = conn.decide(&w.policy, w.sign(b"sid-2"));
        assert_eq!(
            reason(&decision),
            "SSH to `gitlab.com` is not granted to this run"
        );
        let Decision::Reply(_, Some(event)) = decision else {
            panic!()
        };
        assert_eq!(event.host.as_deref(), Some("gitlab.com"));
    }

    #[test]
    fn an_unpinned_host_key_is_refused() {
        let w = world();
        let mut conn = Connection::new();
        let bind = w.session("github.com", &w.gitlab, b"sid-3");
        conn.decide(&w.policy, bind);
        assert!(reason(&conn.decide(&w.policy, w.sign(b"sid-3"))).contains("is not one pinned"));
    }

    #[test]
    fn a_bind_no_tunnel_carried_is_refused() {
        let w = world();
        let mut conn = Connection::new();
        let host_key = ed25519_public(&w.github);
        conn.decide(
            &w.policy,
            Request::SessionBind {
                host_key: host_key.blob().to_vec(),
                session_id: b"sid-4".to_vec(),
                signature: ed25519_sign(&w.github, b"sid-4"),
                forwarding: false,
            },
        );
        assert!(reason(&conn.decide(&w.policy, w.sign(b"sid-4"))).contains("did not go through"));
    }

    #[test]
    fn a_forged_bind_poisons_the_connection() {
        let w = world();
        let mut conn = Connection::new();
        let Request::SessionBind {
            host_key,
            signature,
            ..
        } = w.session("github.com", &w.github, b"sid-5")
        else {
            panic!()
        };
        // The real signature of session 5, claimed for session 6.
        let forged = Request::SessionBind {
            host_key,
            session_id: b"sid-6".to_vec(),
            signature,
            forwarding: false,
        };
        assert!(reason(&conn.decide(&w.policy, forged)).contains("did not verify"));
        let bind = w.session("github.com", &w.github, b"sid-7");
        conn.decide(&w.policy, bind);
        assert!(reason(&conn.decide(&w.policy, w.sign(b"sid-7"))).contains("did not verify"));
    }

    #[test]
    fn nothing_is_signed_while_the_records_cannot_be_written() {
        let mut w = world();
        let flag = Arc::new(AtomicBool::new(true));
        w.policy.records_unwritable = Some(flag.clone());
        let mut conn = Connection::new();
        let bind = w.session("github.com", &w.github, b"sid-10");
        conn.decide(&w.policy, bind);
        assert!(reason(&conn.decide(&w.policy, w.sign(b"sid-10"))).contains("cannot be written"));
        flag.store(false, Ordering::Relaxed);
        assert!(matches!(
            conn.decide(&w.policy, w.sign(b"sid-10")),
            Decision::Sign { .. }
        ));
    }

    #[test]
    fn a_login_for_another_session_or_key_is_refused() {
        let w = world();
        let mut conn = Connection::new();
        let bind = w.session("github.com", &w.github, b"sid-8");
        conn.decide(&w.policy, bind);
        assert!(reason(&conn.decide(&w.policy, w.sign(b"sid-other"))).contains("another session"));
        let other_key = Request::Sign {
            key: w.user.blob().to_vec(),
            data: userauth(b"sid-8", b"another key", None),
            flags: 0,
        };
        assert!(reason(&conn.decide(&w.policy, other_key)).contains("another key"));
        let other_host = Request::Sign {
            key: w.user.blob().to_vec(),
            data: userauth(b"sid-8", w.user.blob(), Some(b"another host key")),
            flags: 0,
        };
        assert!(reason(&conn.decide(&w.policy, other_host)).contains("another host key"));
    }

    #[test]
    fn sshsig_forwarding_ungranted_keys_and_key_management_are_refused() {
        let w = world();
        let mut conn = Connection::new();
        let bind = w.session("github.com", &w.github, b"sid-9");
        conn.decide(&w.policy, bind);
        let sshsig = Request::Sign {
            key: w.user.blob().to_vec(),
            data: b"SSHSIG\0\0\0\x03git".to_vec(),
            flags: 0,
        };
        assert!(reason(&conn.decide(&w.policy, sshsig)).contains("SSHSIG"));
        let stranger = ed25519_public(&ed25519(99));
        let ungranted = Request::Sign {
            key: stranger.blob().to_vec(),
            data: userauth(b"sid-9", stranger.blob(), None),
            flags: 0,
        };
        assert!(reason(&conn.decide(&w.policy, ungranted)).contains("not granted"));
        assert!(
            reason(&conn.decide(&w.policy, Request::Other { kind: 19 })).contains("remove all")
        );

        let mut forwarded = Connection::new();
        let Request::SessionBind {
            host_key,
            session_id,
            signature,
            ..
        } = w.session("github.com", &w.github, b"sid-10")
        else {
            panic!()
        };
        forwarded.decide(
            &w.policy,
            Request::SessionBind {
                host_key,
                session_id,
                signature,
                forwarding: true,
            },
        );
        assert!(reason(&forwarded.decide(&w.policy, w.sign(b"sid-10"))).contains("forwarding"));
    }

    #[test]
    fn binds_are_bounded() {
        let w = world();
        let mut conn = Connection::new();
        for i in 0..MAX_BINDS {
            let bind = w.session("github.com", &w.github, &[i as u8 + 1; 8]);
            assert_eq!(
                conn.decide(&w.policy, bind),
                Decision::Reply(Response::Success, None)
            );
        }
        let bind = w.session("github.com", &w.github, b"one too many");
        assert!(reason(&conn.decide(&w.policy, bind)).contains("too many"));
    }

    #[test]
    fn listing_keeps_the_upstream_order_and_comments() {
        let a = Identity {
            key: b"a".to_vec(),
            comment: "a@h".into(),
        };
        let b = Identity {
            key: b"b".to_vec(),
            comment: "b@h".into(),
        };
        assert_eq!(
            filter_identities(vec![a.clone(), b.clone()], &[b"b".to_vec()]),
            vec![b]
        );
    }
}
