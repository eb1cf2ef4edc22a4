//! Public keys as SSH writes them (the wire blob, and the `TYPE BASE64 [COMMENT]` text of
//! `.pub` files and `known_hosts`), their SHA-256 fingerprints, and the verification of a
//! signature a host key made: Ed25519, ECDSA on P-256 and P-384, and RSA with SHA-256 or
//! SHA-512. RSA with SHA-1 (`ssh-rsa` signatures) is refused: OpenSSH stopped accepting
//! it in 8.8, and nothing moat trusts needs it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

use crate::wire::{Reader, WireError};

/// The smallest RSA modulus accepted, as OpenSSH's `SSH_RSA_MINIMUM_MODULUS_SIZE`.
const RSA_MIN_BITS: usize = 1024;
/// The largest RSA modulus accepted (OpenSSH's limit).
const RSA_MAX_BITS: usize = 16384;

/// A public key: its wire blob and the algorithm named in it. The blob is what SSH
/// compares, fingerprints and signs over, so it is kept as received.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    blob: Vec<u8>,
    algorithm: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm, self.fingerprint())
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature does not decode: {0}")]
    Malformed(&'static str),
    #[error("a `{signature}` signature cannot come from a `{key}` key")]
    Mismatch { key: String, signature: String },
    #[error("`{0}` keys or signatures are not supported")]
    Unsupported(String),
    #[error("the signature is not valid")]
    Invalid,
}

impl From<WireError> for VerifyError {
    fn from(e: WireError) -> Self {
        VerifyError::Malformed(e.0)
    }
}

impl PublicKey {
    /// A key from its wire blob. Only the algorithm name is required to decode: an agent
    /// may hold keys of types moat cannot verify (security keys, certificates), and they
    /// can still be listed and fingerprinted.
    pub fn from_blob(blob: &[u8]) -> Result<Self, WireError> {
        let algorithm = Reader::new(blob).utf8()?.to_owned();
        if algorithm.is_empty() {
            return Err(WireError("a key has no algorithm name"));
        }
        Ok(PublicKey {
            blob: blob.to_vec(),
            algorithm,
        })
    }

    /// `ssh-ed25519 AAAA... [comment]`, as in `.pub` files; the comment is returned apart.
    pub fn from_openssh(text: &str) -> Result<(Self, String), WireError> {
        let mut fields = text.split_whitespace();
        let algorithm = fields.next().ok_or(WireError("the key line is empty"))?;
        let data = fields.next().ok_or(WireError("the key line has no key"))?;
        let comment = fields.collect::<Vec<_>>().join(" ");
        let blob = STANDARD
            .decode(data)
            .map_err(|_| WireError("the key is not base64"))?;
        let key = PublicKey::from_blob(&blob)?;
        if key.algorithm != algorithm {
            return Err(WireError("the key's type does not match its data"));
        }
        Ok((key, comment))
    }

    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.blob)
    }

    /// `TYPE BASE64`, as `known_hosts` and `.pub` files hold it.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.algorithm, STANDARD.encode(&self.blob))
    }

    /// Check that `signature` (a wire signature: algorithm name and bytes) is this key's
    /// over `data`.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let mut sig = Reader::new(signature);
        let sig_alg = sig.utf8()?;
        let sig_bytes = sig.string()?;
        sig.finish()?;
        let mismatch = || VerifyError::Mismatch {
            key: self.algorithm.clone(),
            signature: sig_alg.to_owned(),
        };
        let mut key = Reader::new(&self.blob);
        key.utf8()?;
        match self.algorithm.as_str() {
            "ssh-ed25519" => {
                if sig_alg != "ssh-ed25519" {
                    return Err(mismatch());
                }
                let point: [u8; 32] = key
                    .string()?
                    .try_into()
                    .map_err(|_| VerifyError::Malformed("an Ed25519 key is not 32 bytes"))?;
                key.finish()?;
                let verifying = ed25519_dalek::VerifyingKey::from_bytes(&point)
                    .map_err(|_| VerifyError::Malformed("not an Ed25519 point"))?;
                let bytes: [u8; 64] = sig_bytes
                    .try_into()
                    .map_err(|_| VerifyError::Malformed("an Ed25519 signature is not 64 bytes"))?;
                verifying
                    .verify_strict(data, &ed25519_dalek::Signature::from_bytes(&bytes))
                    .map_err(|_| VerifyError::Invalid)
            }
            "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" => {
                if sig_alg != self.algorithm {
                    return Err(mismatch());
                }
                let curve = key.utf8()?;
                let point = key.string()?;
                key.finish()?;
                let mut rs = Reader::new(sig_bytes);
                let r = rs.positive_mpint()?;
                let s = rs.positive_mpint()?;
                rs.finish()?;
                if self.algorithm == "ecdsa-sha2-nistp256" {
                    if curve != "nistp256" {
                        return Err(VerifyError::Malformed(
                            "the curve does not match the key type",
                        ));
                    }
                    use p256::ecdsa::signature::Verifier as _;
                    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| VerifyError::Malformed("not a P-256 point"))?;
                    let signature = p256::ecdsa::Signature::from_scalars(
                        p256::FieldBytes::from(fixed::<32>(r)?),
                        p256::FieldBytes::from(fixed::<32>(s)?),
                    )
                    .map_err(|_| VerifyError::Malformed("not a P-256 signature"))?;
                    verifying
                        .verify(data, &signature)
                        .map_err(|_| VerifyError::Invalid)
                } else {
                    if curve != "nistp384" {
                        return Err(VerifyError::Malformed(
                            "the curve does not match the key type",
                        ));
                    }
                    use p384::ecdsa::signature::Verifier as _;
                    let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| VerifyError::Malformed("not a P-384 point"))?;
                    let signature = p384::ecdsa::Signature::from_scalars(
                        p384::FieldBytes::from(fixed::<48>(r)?),
                        p384::FieldBytes::from(fixed::<48>(s)?),
                    )
                    .map_err(|_| VerifyError::Malformed("not a P-384 signature"))?;
                    verifying
                        .verify(data, &signature)
                        .map_err(|_| VerifyError::Invalid)
                }
            }
            "ssh-rsa" => {
                let e = key.positive_mpint()?;
                let n = key.positive_mpint()?;
                key.finish()?;
                let public = rsa::RsaPublicKey::new_with_max_size(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                    RSA_MAX_BITS,
                )
                .map_err(|_| VerifyError::Malformed("not an RSA key"))?;
                if n.len() * 8 < RSA_MIN_BITS {
                    return Err(VerifyError::Unsupported("RSA keys below 1024 bits".into()));
                }
                let scheme = match sig_alg {
                    "rsa-sha2-256" => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    "rsa-sha2-512" => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    "ssh-rsa" => {
                        return Err(VerifyError::Unsupported(
                            "ssh-rsa (SHA-1) signatures".into(),
                        ));
                    }
                    _ => return Err(mismatch()),
                };
                let digest = if sig_alg == "rsa-sha2-256" {
                    sha2::Sha256::digest(data).to_vec()
                } else {
                    sha2::Sha512::digest(data).to_vec()
                };
                use rsa::traits::SignatureScheme as _;
                scheme
                    .verify(&public, &digest, sig_bytes)
                    .map_err(|_| VerifyError::Invalid)
            }
            other => Err(VerifyError::Unsupported(other.to_owned())),
        }
    }
}

/// An unsigned magnitude left-padded to `N` bytes (ECDSA scalars).
fn fixed<const N: usize>(magnitude: &[u8]) -> Result<[u8; N], VerifyError> {
    if magnitude.len() > N {
        return Err(VerifyError::Malformed("an ECDSA scalar is too large"));
    }
    let mut out = [0u8; N];
    out[N - magnitude.len()..].copy_from_slice(magnitude);
    Ok(out)
}

/// The SHA-256 fingerprint of a key blob.
pub fn fingerprint_of(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Writer;

    /// An Ed25519 signing key from a seed, for tests.
    pub(crate) fn ed25519(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    pub(crate) fn ed25519_public(key: &ed25519_dalek::SigningKey) -> PublicKey {
        let mut w = Writer::new();
        w.string("ssh-ed25519")
            .string(key.verifying_key().as_bytes());
        PublicKey::from_blob(&w.into_bytes()).unwrap()
    }

    pub(crate) fn ed25519_sign(key: &ed25519_dalek::SigningKey, data: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        let mut w = Writer::new();
        w.string("ssh-ed25519").string(key.sign(data).to_bytes());
        w.into_bytes()
    }

    #[test]
    fn ed25519_signatures_verify_and_forgeries_do_not() {
        let key = ed25519(1);
        let public = ed25519_public(&key);
        let sig = ed25519_sign(&key, b"session id");
        public.verify(b"session id", &sig).unwrap();
        assert_eq!(public.verify(b"other id", &sig), Err(VerifyError::Invalid));
        let other = ed25519_public(&ed25519(2));
        assert_eq!(other.verify(b"session id", &sig), Err(VerifyError::Invalid));
        let mut bad = sig.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(public.verify(b"session id", &bad).is_err());
    }

    #[test]
    fn p256_and_p384_signatures_verify() {
        use p256::ecdsa::signature::Signer as _;
        let secret = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let point = secret.verifying_key().to_encoded_point(false);
        let mut w = Writer::new();
        w.string("ecdsa-sha2-nistp256")
            .string("nistp256")
            .string(point.as_bytes());
        let public = PublicKey::from_blob(&w.into_bytes()).unwrap();
        let sig: p256::ecdsa::Signature = secret.sign(b"data");
        let (r, s) = sig.split_bytes();
        let mut inner = Writer::new();
        inner.positive_mpint(&r).positive_mpint(&s);
        let mut w = Writer::new();
        w.string("ecdsa-sha2-nistp256").string(inner.into_bytes());
        let blob = w.into_bytes();
        public.verify(b"data", &blob).unwrap();
        assert_eq!(public.verify(b"datb", &blob), Err(VerifyError::Invalid));

        let secret = p384::ecdsa::SigningKey::from_slice(&[5; 48]).unwrap();
        let point = secret.verifying_key().to_encoded_point(false);
        let mut w = Writer::new();
        w.string("ecdsa-sha2-nistp384")
            .string("nistp384")
            .string(point.as_bytes());
        let public = PublicKey::from_blob(&w.into_bytes()).unwrap();
        let sig: p384::ecdsa::Signature = secret.sign(b"data");
        let (r, s) = sig.split_bytes();
        let mut inner = Writer::new();
        inner.positive_mpint(&r).positive_mpint(&s);
        let mut w = Writer::new();
        w.string("ecdsa-sha2-nistp384").string(inner.into_bytes());
        public.verify(b"data", &w.into_bytes()).unwrap();
    }

    #[test]
    fn a_signature_of_another_algorithm_is_a_mismatch() {
        let public = ed25519_public(&ed25519(1));
        let mut w = Writer::new();
        w.string("rsa-sha2-256").string([0u8; 256]);
        assert!(matches!(
            public.verify(b"x", &w.into_bytes()),
            Err(VerifyError::Mismatch { .. })
        ));
    }

    #[test]
    fn openssh_text_round_trips_and_fingerprints_match_ssh_keygen() {
        // GitHub's published Ed25519 host key and the fingerprint GitHub publishes for it.
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl some comment";
        let (key, comment) = PublicKey::from_openssh(line).unwrap();
        assert_eq!(comment, "some comment");
        assert_eq!(
            key.fingerprint(),
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
        );
        assert_eq!(
            key.to_openssh(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        );
        assert!(
            PublicKey::from_openssh(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
            )
            .is_err()
        );
        assert!(PublicKey::from_openssh("ssh-ed25519 !!!").is_err());
    }
    /// A 2048-bit RSA key and raw PKCS#1 v1.5 signatures of `moat rsa test data` over
    /// SHA-512 and SHA-256, made with `openssl dgst -sign` (the key converted with
    /// `ssh-keygen -i -m PKCS8`).
    const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCdw9Ian6hEVk3jTOM+Zb90HIDGylkMUJMwLVBtjb0IkXXCpXg/EqbqW5wv4FUK7r2DUsjpxNTNl72OQfqwO5n2BBeRTPPP2CnOtH/58vjC5zzOOskv/vlkzqZmxu7fvfzA/ALWw3+k8uz8HNrvSTc8t9ahwRN7GvNzjoQS5ijx8B/uPX4cRWYI+UZ1KB7SVWk+LifHbXXRwv9olsxjOmv9SyeHPayfeH/ZbvA+XezA7+OK+H25v+RiipztmQ5i5QL6qVN21DSHSREIEzXX/ow9SR3kdZWtVkW0r6V2VSiBVacMYbVh3IShBnO4M4m3umTeokY4fmp8MWiWG8ULfuvP";
    const RSA_SIG_512: &str = "Z8LboFk5hC2PddFpdpMF5MOxW7f9+0Ook6JNzrW3ioD94ht+IUFG3zaBdqd0VK1PWPvN/dmBjqBowLjFbGKQ3FO+sOY879j2o1cKkDfmoRZK6m1YM+lNvrbpXZZ/MbBrEK8vEdpJxoQKGX1nG+GfrXjyRKIQ9gU3E3rW910PmnpUn7ABeMpopery3Gg9VXFlGOliP4iqNG4d1fuwpGr36POBjSUJ+QOZy165fY3VdSRK6te1U//eOZdpYt4zO7O1K9Q4HxA7GA89xW/Ze7M6hnalAIgwpvys6eMO52n2sgo//p3C8o8eTS71w8S699mOGNd2NB9jnF7QTqXo2tyXIg==";
    const RSA_SIG_256: &str = "HE7fwgELF0+j5W1f4pV0KoMGTvW8zddvBJie9zcHdCWj4YtB41enGCdKfgRIkz91Tzk/X1+78wrAP9QH4gJYu2e9R54zffYkTmwFrWFCtA1W/QAG3NCU/eq7FOc+Kl56XCwG20xQXROFUXXs2k+FW5CxfmkTIoG2vWtah67+iRA/NevjGwQaOzy1SIx/BTguesvAZytzR0JLV10RP9J5B1UrjUe7mVjQpArYMxhel4YHVwJPzdMHtUX/fut7yrYxrmAPr0/QcLnCkfkfUjt/XLFZyoiqdRJDYLSi9wzR1MNxDfsdjI2C7c0ZDRlgQBnaRYYS8bx7YpCOovag5IUmfQ==";

    #[test]
    fn rsa_sha2_signatures_verify_and_sha1_is_refused() {
        let (public, _) = PublicKey::from_openssh(RSA_KEY).unwrap();
        let wrap = |alg: &str, b64: &str| {
            let mut w = Writer::new();
            w.string(alg).string(STANDARD.decode(b64).unwrap());
            w.into_bytes()
        };
        let data = b"moat rsa test data";
        public
            .verify(data, &wrap("rsa-sha2-512", RSA_SIG_512))
            .unwrap();
        public
            .verify(data, &wrap("rsa-sha2-256", RSA_SIG_256))
            .unwrap();
        assert_eq!(
            public.verify(data, &wrap("rsa-sha2-256", RSA_SIG_512)),
            Err(VerifyError::Invalid)
        );
        assert_eq!(
            public.verify(b"other", &wrap("rsa-sha2-512", RSA_SIG_512)),
            Err(VerifyError::Invalid)
        );
        assert!(matches!(
            public.verify(data, &wrap("ssh-rsa", RSA_SIG_256)),
            Err(VerifyError::Unsupported(_))
        ));
    }
}
