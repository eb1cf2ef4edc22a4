//! The SSH agent protocol (draft-ietf-sshm-ssh-agent, OpenSSH's PROTOCOL.agent), both
//! sides: what a client asks and the agent answers, framed as a uint32 length and a
//! message. moat's agent decodes requests from the container and encodes its answers;
//! towards the user's agent it encodes requests and decodes answers.

use crate::wire::{Reader, WireError, Writer};

pub const SSH_AGENT_FAILURE: u8 = 5;
pub const SSH_AGENT_SUCCESS: u8 = 6;
pub const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
pub const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
pub const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
pub const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
pub const SSH_AGENTC_EXTENSION: u8 = 27;

/// Sign flags: RSA keys sign with SHA-256 or SHA-512 instead of SHA-1.
pub const SSH_AGENT_RSA_SHA2_256: u32 = 2;
pub const SSH_AGENT_RSA_SHA2_512: u32 = 4;

/// The longest message either side accepts (OpenSSH's `AGENT_MAX_LEN`).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// What a client asks the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// List the keys.
    Identities,
    /// Sign `data` with the key whose blob is `key`; `flags` pick the RSA hash.
    Sign {
        key: Vec<u8>,
        data: Vec<u8>,
        flags: u32,
    },
    /// `session-bind@openssh.com`: the connection is for the SSH session `session_id`
    /// with the server whose host key is `host_key`, which signed the session ID
    /// (`signature`); `forwarding` when the agent is being forwarded over it.
    SessionBind {
        host_key: Vec<u8>,
        session_id: Vec<u8>,
        signature: Vec<u8>,
        forwarding: bool,
    },
    /// Another extension, by name.
    Extension { name: String },
    /// Any other message (adding, removing or locking keys, smartcards, ...), by type.
    Other { kind: u8 },
}

impl Request {
    /// Decode one message body (without its length).
    pub fn decode(message: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(message);
        let kind = r.byte()?;
        let request = match kind {
            SSH_AGENTC_REQUEST_IDENTITIES => Request::Identities,
            SSH_AGENTC_SIGN_REQUEST => {
                let key = r.string()?.to_vec();
                let data = r.string()?.to_vec();
                let flags = r.u32()?;
                Request::Sign { key, data, flags }
            }
            SSH_AGENTC_EXTENSION => {
                let name = r.utf8()?.to_owned();
                if name == "session-bind@openssh.com" {
                    let host_key = r.string()?.to_vec();
                    let session_id = r.string()?.to_vec();
                    let signature = r.string()?.to_vec();
                    let forwarding = r.boolean()?;
                    Request::SessionBind {
                        host_key,
                        session_id,
                        signature,
                        forwarding,
                    }
                } else {
                    // An extension's contents are its own; only the name matters here.
                    return Ok(Request::Extension { name });
                }
            }
            kind => return Ok(Request::Other { kind }),
        };
        r.finish()?;
        Ok(request)
    }

    /// The message body for this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Request::Identities => {
                w.byte(SSH_AGENTC_REQUEST_IDENTITIES);
            }
            Request::Sign { key, data, flags } => {
                w.byte(SSH_AGENTC_SIGN_REQUEST)
                    .string(key)
                    .string(data)
                    .u32(*flags);
            }
            Request::SessionBind {
                host_key,
                session_id,
                signature,
                forwarding,
            } => {
                w.byte(SSH_AGENTC_EXTENSION)
                    .string("session-bind@openssh.com")
                    .string(host_key)
                    .string(session_id)
                    .string(signature)
                    .boolean(*forwarding);
            }
            Request::Extension { name } => {
                w.byte(SSH_AGENTC_EXTENSION).string(name);
            }
            Request::Other { kind } => {
                w.byte(*kind);
            }
        }
        w.into_bytes()
    }
}

/// One key an agent lists: its blob and its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key: Vec<u8>,
    pub comment: String,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Failure,
    Success,
    Identities(Vec<Identity>),
    /// A signature blob (algorithm name and bytes).
    Signature(Vec<u8>),
}

impl Response {
    pub fn decode(message: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(message);
        let response = match r.byte()? {
            SSH_AGENT_FAILURE => Response::Failure,
            SSH_AGENT_SUCCESS => Response::Success,
            SSH_AGENT_IDENTITIES_ANSWER => {
                let count = r.u32()? as usize;
                let mut keys = Vec::new();
                for _ in 0..count {
                    let key = r.string()?.to_vec();
                    // Comments are free text; a non-UTF-8 one is shown lossily.
                    let comment = String::from_utf8_lossy(r.string()?).into_owned();
                    keys.push(Identity { key, comment });
                }
                Response::Identities(keys)
            }
            SSH_AGENT_SIGN_RESPONSE => Response::Signature(r.string()?.to_vec()),
            _ => return Err(WireError("an answer of an unknown type")),
        };
        r.finish()?;
        Ok(response)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Response::Failure => {
                w.byte(SSH_AGENT_FAILURE);
            }
            Response::Success => {
                w.byte(SSH_AGENT_SUCCESS);
            }
            Response::Identities(keys) => {
                w.byte(SSH_AGENT_IDENTITIES_ANSWER)
                    .u32(u32::try_from(keys.len()).expect("few keys"));
                for identity in keys {
                    w.string(&identity.key).string(&identity.comment);
                }
            }
            Response::Signature(sig) => {
                w.byte(SSH_AGENT_SIGN_RESPONSE).string(sig);
            }
        }
        w.into_bytes()
    }
}

/// A message with its length in front, as it goes on the socket.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(message);
    w.into_bytes()
}

/// The name of a request type, for the trace.
pub fn request_name(kind: u8) -> String {
    match kind {
        17 => "add identity".into(),
        18 => "remove identity".into(),
        19 => "remove all identities".into(),
        20 => "add smartcard key".into(),
        21 => "remove smartcard key".into(),
        22 => "lock".into(),
        23 => "unlock".into(),
        25 => "add constrained identity".into(),
        26 => "add constrained smartcard key".into(),
        other => format!("request type {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Identities,
            Request::Sign {
                key: b"k".to_vec(),
                data: b"d".to_vec(),
                flags: SSH_AGENT_RSA_SHA2_512,
            },
            Request::SessionBind {
                host_key: b"h".to_vec(),
                session_id: b"s".to_vec(),
                signature: b"g".to_vec(),
                forwarding: true,
            },
            Request::Extension {
                name: "query".into(),
            },
            Request::Other { kind: 17 },
        ] {
            assert_eq!(Request::decode(&request.encode()).unwrap(), request);
        }
    }

    #[test]
    fn responses_round_trip() {
        for response in [
            Response::Failure,
            Response::Success,
            Response::Identities(vec![Identity {
                key: b"k".to_vec(),
                comment: "me@host".into(),
            }]),
            Response::Signature(b"sig".to_vec()),
        ] {
            assert_eq!(Response::decode(&response.encode()).unwrap(), response);
        }
    }

    #[test]
    fn the_sign_flags_survive_decoding() {
        let request = Request::Sign {
            key: vec![1],
            data: vec![2],
            flags: SSH_AGENT_RSA_SHA2_256,
        };
        let Request::Sign { flags, .. } = Request::decode(&request.encode()).unwrap() else {
            panic!()
        };
        assert_eq!(flags, SSH_AGENT_RSA_SHA2_256);
    }

    #[test]
    fn truncated_or_padded_messages_are_errors() {
        let mut sign = Request::Sign {
            key: vec![1],
            data: vec![2],
            flags: 0,
        }
        .encode();
        assert!(Request::decode(&sign[..sign.len() - 1]).is_err());
        sign.push(0);
        assert!(Request::decode(&sign).is_err());
        assert!(Request::decode(&[]).is_err());
        assert!(Response::decode(&[99]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_messages_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(request) = Request::decode(&bytes) {
                // Whatever decodes as a request it knows re-encodes to the same bytes.
                if !matches!(request, Request::Extension { .. } | Request::Other { .. }) {
                    prop_assert_eq!(request.encode(), bytes.clone());
                }
            }
            let _ = Response::decode(&bytes);
        }
    }
}
