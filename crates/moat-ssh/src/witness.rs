//! What the run's proxy saw of each SSH connection it tunnelled: the host the tunnel was
//! opened for, and the host key and key-exchange signature the server sent in the clear
//! before encryption started.
//!
//! OpenSSH's `session-bind@openssh.com` gives the agent that same host key and signature
//! (`kex->initial_sig`). The host key proves which key signed the session, but one key can
//! serve many names (a hosting provider's shared key, or a test server behind two names);
//! matching the signature to a tunnel tells the agent which *name* the connection went
//! to. A session no tunnel carried (one nested in another SSH connection, or made up)
//! has no witness and gets no signature.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::key::PublicKey;
use crate::wire::Reader;

/// How many tunnels are remembered: far more than a run opens at once; the oldest go.
const REMEMBERED: usize = 1024;
/// How much of a server's output is examined before giving up on finding its key
/// exchange (a banner, KEXINIT and the reply fit in a few KiB; RSA 16384 keys and
/// post-quantum key shares in well under this).
const WATCH_LIMIT: usize = 256 * 1024;
const MAX_PACKET: usize = 128 * 1024;

const SSH_MSG_NEWKEYS: u8 = 21;
/// KEXDH_REPLY / KEX_ECDH_REPLY (and the hybrid post-quantum methods), or, in the group
/// exchange, KEX_DH_GEX_GROUP.
const SSH_MSG_KEX_REPLY: u8 = 31;
const SSH_MSG_KEX_DH_GEX_REPLY: u8 = 33;

/// The destination of one tunnel and what its server signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The host the tunnel was opened for (as the client named it, before any
    /// `connect_to` rewrite), normalized to lowercase.
    pub host: String,
    pub port: u16,
    pub host_key: Vec<u8>,
    /// The server's signature over the exchange hash, as it was sent.
    pub signature: Vec<u8>,
}

/// Where a signature was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Once(Sighting),
    /// The same signature came through tunnels to different destinations: a replay, and
    /// no name can be believed.
    Conflicting,
    Never,
}

/// The sightings of one run, shared by its proxy (which records) and its agent (which
/// looks up).
#[derive(Debug, Clone, Default)]
pub struct Witness {
    seen: Arc<Mutex<VecDeque<Sighting>>>,
}

impl Witness {
    pub fn new() -> Self {
        Witness::default()
    }

    /// A watcher for the server's side of a new tunnel to `host:port`.
    pub fn watch(&self, host: &str, port: u16) -> KexWatcher {
        KexWatcher {
            witness: self.clone(),
            host: host.to_ascii_lowercase(),
            port,
            buffer: Vec::new(),
            banner_done: false,
            examined: 0,
            done: false,
        }
    }

    pub fn record(&self, sighting: Sighting) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= REMEMBERED {
            seen.pop_front();
        }
        seen.push_back(sighting);
    }

    /// Where the server signature `signature` was seen, with `host_key`.
    pub fn lookup(&self, host_key: &[u8], signature: &[u8]) -> Seen {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut found: Option<&Sighting> = None;
        for s in seen.iter().filter(|s| s.signature == signature) {
            match found {
                Some(f) if f.host != s.host || f.port != s.port || f.host_key != s.host_key => {
                    return Seen::Conflicting;
                }
                _ => found = Some(s),
            }
        }
        match found {
            Some(s) if s.host_key == host_key => Seen::Once(s.clone()),
            Some(_) => Seen::Conflicting,
            None => Seen::Never,
        }
    }
}

/// Reads the start of what an SSH server sends until its key-exchange reply, then records
/// it and stops looking. Fed every chunk before the client gets it, so the sighting is
/// always recorded before the client can bind.
#[derive(Debug)]
pub struct KexWatcher {
    witness: Witness,
    host: String,
    port: u16,
    buffer: Vec<u8>,
    banner_done: bool,
    examined: usize,
    done: bool,
}

impl KexWatcher {
    /// Look at the next bytes from the server. Returns `false` once nothing more is
    /// wanted (the reply was found, or this is not SSH, or too much went by).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.done {
            return false;
        }
        self.examined += bytes.len();
        if self.examined > WATCH_LIMIT {
            self.done = true;
            return false;
        }
        self.buffer.extend_from_slice(bytes);
        if !self.banner_done {
            // RFC 4253 §4.2: lines before the version line are allowed; the version line
            // starts with `SSH-`.
            loop {
                let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
                    if self.buffer.len() > 8192 {
                        self.done = true;
                        return false;
                    }
                    return true;
                };
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.starts_with(b"SSH-") {
                    self.banner_done = true;
                    break;
                }
            }
        }
        loop {
            if self.buffer.len() < 5 {
                return true;
            }
            let len = u32::from_be_bytes([
                self.buffer[0],
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
            ]) as usize;
            if !(5..=MAX_PACKET).contains(&len) {
                self.done = true;
                return false;
            }
            if self.buffer.len() < 4 + len {
                return true;
            }
            let packet: Vec<u8> = self.buffer.drain(..4 + len).collect();
            let padding = packet[4] as usize;
            if padding + 1 >= len {
                self.done = true;
                return false;
            }
            let payload = &packet[5..4 + len - padding];
            match payload.first() {
                Some(&SSH_MSG_KEX_REPLY | &SSH_MSG_KEX_DH_GEX_REPLY) => {
                    if let Some((host_key, signature)) = kex_reply(&payload[1..]) {
                        self.witness.record(Sighting {
                            host: self.host.clone(),
                            port: self.port,
                            host_key,
                            signature,
                        });
                        self.done = true;
                        return false;
                    }
                }
                Some(&SSH_MSG_NEWKEYS) | None => {
                    self.done = true;
                    return false;
                }
                _ => {}
            }
        }
    }
}

/// `string K_S, string (f | Q_S), string signature`: the host key and signature of a key
/// exchange reply. A group-exchange GROUP message (two mpints) does not fit and is
/// skipped.
fn kex_reply(body: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut r = Reader::new(body);
    let host_key = r.string().ok()?;
    r.string().ok()?;
    let signature = r.string().ok()?;
    r.finish().ok()?;
    PublicKey::from_blob(host_key).ok()?;
    let mut sig = Reader::new(signature);
    sig.utf8().ok()?;
    sig.string().ok()?;
    sig.finish().ok()?;
    Some((host_key.to_vec(), signature.to_vec()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Writer;
    use proptest::prelude::*;

    /// An SSH binary packet with `payload` (no MAC, as before NEWKEYS).
    pub(crate) fn packet(payload: &[u8]) -> Vec<u8> {
        let padding = 8 - (payload.len() + 5) % 8 + 4;
        let mut w = Writer::new();
        w.u32(u32::try_from(payload.len() + padding + 1).unwrap())
            .byte(u8::try_from(padding).unwrap())
            .raw(payload)
            .raw(&vec![0; padding]);
        w.into_bytes()
    }

    /// What a server sends up to its ECDH reply.
    pub(crate) fn server_start(host_key: &[u8], signature: &[u8]) -> Vec<u8> {
        let mut out = b"a greeting line\r\nSSH-2.0-OpenSSH_9.2\r\n".to_vec();
        out.extend(packet(&[20, 1, 2, 3]));
        let mut reply = Writer::new();
        reply
            .byte(SSH_MSG_KEX_REPLY)
            .string(host_key)
            .string([9u8; 32])
            .string(signature);
        out.extend(packet(&reply.into_bytes()));
        out.extend(packet(&[SSH_MSG_NEWKEYS]));
        out
    }

    fn sig(bytes: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.string("ssh-ed25519").string(bytes);
        w.into_bytes()
    }

    fn key() -> Vec<u8> {
        let mut w = Writer::new();
        w.string("ssh-ed25519").string([1u8; 32]);
        w.into_bytes()
    }

    #[test]
    fn the_reply_is_found_whole_or_in_pieces() {
        let stream = server_start(&key(), &sig(b"s1"));
        for chunk in [1, 3, 7, stream.len()] {
            let witness = Witness::new();
            let mut watcher = witness.watch("GitHub.com", 22);
            let mut wanted = true;
            for piece in stream.chunks(chunk) {
                if wanted {
                    wanted = watcher.feed(piece);
                }
            }
            assert!(!wanted);
            let Seen::Once(s) = witness.lookup(&key(), &sig(b"s1")) else {
                panic!("not seen with chunks of {chunk}")
            };
            assert_eq!((s.host.as_str(), s.port), ("github.com", 22));
        }
    }

    #[test]
    fn other_keys_signatures_and_replays_are_told_apart() {
        let witness = Witness::new();
        witness
            .watch("github.com", 22)
            .feed(&server_start(&key(), &sig(b"s1")));
        assert_eq!(witness.lookup(&key(), &sig(b"s2")), Seen::Never);
        let mut other_key = key();
        *other_key.last_mut().unwrap() = 2;
        assert_eq!(witness.lookup(&other_key, &sig(b"s1")), Seen::Conflicting);
        // The same signature replayed by a server behind another name.
        witness
            .watch("gitlab.com", 22)
            .feed(&server_start(&key(), &sig(b"s1")));
        assert_eq!(witness.lookup(&key(), &sig(b"s1")), Seen::Conflicting);
    }

    #[test]
    fn what_is_not_ssh_is_given_up_on() {
        let witness = Witness::new();
        let mut watcher = witness.watch("h", 22);
        assert!(!watcher.feed(&vec![b'x'; 9000]));
        let mut watcher = witness.watch("h", 22);
        assert!(!watcher.feed(b"SSH-2.0-x\r\n\xff\xff\xff\xff\x04"));
    }

    #[test]
    fn the_oldest_sightings_are_forgotten() {
        let witness = Witness::new();
        for i in 0..(REMEMBERED + 1) {
            witness.record(Sighting {
                host: "h".into(),
                port: 22,
                host_key: key(),
                signature: sig(&i.to_be_bytes()),
            });
        }
        assert_eq!(
            witness.lookup(&key(), &sig(&0usize.to_be_bytes())),
            Seen::Never
        );
        assert!(matches!(
            witness.lookup(&key(), &sig(&REMEMBERED.to_be_bytes())),
            Seen::Once(_)
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_server_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let witness = Witness::new();
            let mut watcher = witness.watch("h", 22);
            let mut first = b"SSH-2.0-x\r\n".to_vec();
            first.extend(chunks.concat());
            watcher.feed(&first);
            let mut other = witness.watch("h", 22);
            for c in &chunks { other.feed(c); }
        }
    }
}
