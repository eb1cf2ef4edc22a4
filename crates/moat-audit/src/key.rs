//! The machine's audit signing key: an Ed25519 key in `$MOAT_HOME/audit.key` (0600,
//! outside every run directory, made on first use), and the fingerprint a verifier pins —
//! `SHA256:` and the unpadded base64 of the OpenSSH public key blob, as `ssh-keygen -l`
//! prints it.

use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// The key a machine signs its runs' checkpoints with.
pub struct AuditKey {
    signing: SigningKey,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.fingerprint())
    }
}

impl AuditKey {
    /// The key in `path`, or a new one written there (0600, atomically) when there is
    /// none. A file that is not a key is an error, never silently replaced: checkpoints
    /// already signed with it must stay verifiable.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match fs_err::read(path) {
            Ok(bytes) => {
                let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
                    .decode(bytes.trim_ascii())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| AuditError::BadKey {
                        path: path.to_owned(),
                    })?;
                Ok(AuditKey {
                    signing: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| AuditError::Io(std::io::Error::other(e)))?;
                let text = base64::engine::general_purpose::STANDARD.encode(seed);
                if let Some(dir) = path.parent() {
                    moat_home::MoatHome::create_private_dir(dir)
                        .map_err(|e| AuditError::Io(std::io::Error::other(e)))?;
                }
                moat_home::write_private_atomic(path, format!("{text}\n").as_bytes())?;
                Ok(AuditKey {
                    signing: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) => Err(AuditError::Io(e)),
        }
    }

    /// A key that lives only in memory (tests).
    pub fn ephemeral() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the OS has randomness");
        AuditKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    pub fn fingerprint(&self) -> String {
        self.public().fingerprint()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.signing.sign(message).to_bytes())
    }
}

/// A public key, as checkpoints carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From the base64 of its 32 bytes (how checkpoints and bundles hold it).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
            .try_into()
            .ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(PublicKey)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }

    /// `SHA256:<base64>` of the OpenSSH wire blob (`string "ssh-ed25519"`, `string key`).
    pub fn fingerprint(&self) -> String {
        let mut blob = Vec::with_capacity(51);
        for part in [b"ssh-ed25519".as_slice(), self.0.as_bytes().as_slice()] {
            blob.extend_from_slice(&u32::try_from(part.len()).expect("short").to_be_bytes());
            blob.extend_from_slice(part);
        }
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))
        )
    }

    /// The key in OpenSSH's `authorized_keys` form, so `ssh-keygen -lf` shows the same
    /// fingerprint.
    pub fn to_openssh(&self) -> String {
        let mut blob = Vec::with_capacity(51);
        for part in [b"ssh-ed25519".as_slice(), self.0.as_bytes().as_slice()] {
            blob.extend_from_slice(&u32::try_from(part.len()).expect("short").to_be_bytes());
            blob.extend_from_slice(part);
        }
        format!(
            "ssh-ed25519 {} moat-audit",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
            return false;
        };
        self.0
            .verify(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_private_and_read_back_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let made = AuditKey::load_or_create(&path).unwrap();
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(made.fingerprint(), again.fingerprint());
        assert!(made.fingerprint().starts_with("SHA256:"));
        assert_eq!(made.fingerprint().len(), "SHA256:".len() + 43);
        fs_err::write(&path, "not a key\n").unwrap();
        assert!(matches!(
            AuditKey::load_or_create(&path),
            Err(AuditError::BadKey { .. })
        ));
    }

    #[test]
    fn signatures_verify_only_with_their_key_and_message() {
        let key = AuditKey::ephemeral();
        let other = AuditKey::ephemeral();
        let signature = key.sign(b"head");
        assert!(key.public().verify(b"head", &signature));
        assert!(!key.public().verify(b"heaD", &signature));
        assert!(!other.public().verify(b"head", &signature));
        let parsed = PublicKey::parse(&key.public().to_base64()).unwrap();
        assert_eq!(parsed, key.public());
    }

    #[test]
    fn the_fingerprint_is_the_one_ssh_keygen_shows() {
        // A fixed key, whose OpenSSH form `ssh-keygen -lf` fingerprints as below.
        let key = AuditKey {
            signing: SigningKey::from_bytes(&[7; 32]),
        };
        assert_eq!(
            key.public().to_openssh(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs moat-audit"
        );
        assert_eq!(
            key.fingerprint(),
            "SHA256:z/fSv0Z0RZS+Lccbc6ZoOWwt/fbj1VFJGSBKQbo4icE"
        );
    }
}
