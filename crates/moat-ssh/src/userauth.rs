//! The data a client asks the agent to sign when it logs in with a key: an
//! `SSH_MSG_USERAUTH_REQUEST` (RFC 4252 §7) preceded by the session ID, or OpenSSH's
//! `publickey-hostbound-v00@openssh.com` variant that also names the server's host key.
//! Anything else — an SSHSIG blob (`ssh-keygen -Y sign`, git commit signing), a
//! challenge for some other protocol — is not a login, and moat does not sign it.

use crate::wire::{Reader, WireError};

const SSH_MSG_USERAUTH_REQUEST: u8 = 50;
/// What every SSHSIG blob starts with (OpenSSH's PROTOCOL.sshsig).
pub const SSHSIG_MAGIC: &[u8] = b"SSHSIG";

/// A parsed user-authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAuth<'a> {
    pub session_id: &'a [u8],
    pub user: &'a str,
    pub service: &'a str,
    /// The key blob the client authenticates with.
    pub key: &'a [u8],
    pub algorithm: &'a str,
    /// The server host key, for the host-bound method.
    pub host_key: Option<&'a [u8]>,
}

/// Why data to sign is not a login this agent signs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotUserAuth {
    #[error("an SSHSIG signature (git commit signing, `ssh-keygen -Y sign`) was asked for")]
    Sshsig,
    #[error("the data is not an SSH login request: {0}")]
    Other(&'static str),
}

impl From<WireError> for NotUserAuth {
    fn from(e: WireError) -> Self {
        NotUserAuth::Other(e.0)
    }
}

/// Read `data` as a user-authentication request.
pub fn parse_userauth(data: &[u8]) -> Result<UserAuth<'_>, NotUserAuth> {
    if data.starts_with(SSHSIG_MAGIC) {
        return Err(NotUserAuth::Sshsig);
    }
    let mut r = Reader::new(data);
    let session_id = r.string()?;
    if session_id.is_empty() {
        return Err(NotUserAuth::Other("the session ID is empty"));
    }
    if r.byte()? != SSH_MSG_USERAUTH_REQUEST {
        return Err(NotUserAuth::Other(
            "it is not a user-authentication request",
        ));
    }
    let user = r.utf8()?;
    let service = r.utf8()?;
    let method = r.utf8()?;
    let host_bound = match method {
        "publickey" => false,
        "publickey-hostbound-v00@openssh.com" => true,
        _ => return Err(NotUserAuth::Other("the method is not publickey")),
    };
    if !r.boolean()? {
        return Err(NotUserAuth::Other("it is a query, not a signed request"));
    }
    let algorithm = r.utf8()?;
    let key = r.string()?;
    let host_key = if host_bound { Some(r.string()?) } else { None };
    r.finish()?;
    Ok(UserAuth {
        session_id,
        user,
        service,
        key,
        algorithm,
        host_key,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Writer;
    use proptest::prelude::*;

    /// The data OpenSSH signs to log in as `user` with `key` in session `session_id`.
    pub(crate) fn userauth(session_id: &[u8], key: &[u8], host_key: Option<&[u8]>) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(session_id)
            .byte(SSH_MSG_USERAUTH_REQUEST)
            .string("git")
            .string("ssh-connection")
            .string(if host_key.is_some() {
                "publickey-hostbound-v00@openssh.com"
            } else {
                "publickey"
            })
            .boolean(true)
            .string("ssh-ed25519")
            .string(key);
        if let Some(h) = host_key {
            w.string(h);
        }
        w.into_bytes()
    }

    #[test]
    fn both_methods_parse() {
        let plain = userauth(b"sid", b"key", None);
        let parsed = parse_userauth(&plain).unwrap();
        assert_eq!(parsed.session_id, b"sid");
        assert_eq!(parsed.user, "git");
        assert_eq!(parsed.service, "ssh-connection");
        assert_eq!(parsed.key, b"key");
        assert_eq!(parsed.host_key, None);
        let bound = userauth(b"sid", b"key", Some(b"host"));
        assert_eq!(parse_userauth(&bound).unwrap().host_key, Some(&b"host"[..]));
    }

    #[test]
    fn other_data_is_refused() {
        assert_eq!(
            parse_userauth(b"SSHSIG\0\0\0\x03git..."),
            Err(NotUserAuth::Sshsig)
        );
        let mut trailing = userauth(b"sid", b"key", None);
        trailing.push(0);
        assert!(parse_userauth(&trailing).is_err());
        let mut w = Writer::new();
        w.string("sid")
            .byte(50)
            .string("git")
            .string("ssh-connection")
            .string("password")
            .boolean(false)
            .string("hunter2");
        assert!(parse_userauth(&w.into_bytes()).is_err());
        assert!(parse_userauth(&userauth(b"", b"key", None)).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_data_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_userauth(&bytes);
        }

        #[test]
        fn real_requests_keep_their_fields(sid in proptest::collection::vec(any::<u8>(), 1..64),
                                           key in proptest::collection::vec(any::<u8>(), 0..64)) {
            let data = userauth(&sid, &key, None);
            let parsed = parse_userauth(&data).unwrap();
            prop_assert_eq!(parsed.session_id, sid.as_slice());
            prop_assert_eq!(parsed.key, key.as_slice());
        }
    }
}
