//! The proxy's certificate authority: made once, kept on disk, and used to issue a leaf
//! certificate for every host the proxy intercepts.
//!
//! The CA key is ECDSA P-256 and never leaves the host (`ca.key`, mode 0600). Containers
//! get only `ca.crt`. Leaf certificates live in memory for the life of the process.
// `CaError` names every path it is about (`CaError::Io`), so it wraps plain `std::fs`
// errors; fs-err would say each path twice.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use crate::error::CaError;

/// File name of the CA private key inside the CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the CA certificate inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.crt";

const LOCK_FILE: &str = ".lock";
const CA_VALIDITY_DAYS: i64 = 3650;
const LEAF_VALIDITY_DAYS: i64 = 365;
/// A run talks to tens of hosts; the bound only stops a misbehaving client from growing
/// the cache without limit.
const MAX_CACHED_LEAVES: usize = 4096;

/// What [`CertificateAuthority::inspect`] found: a CA on disk that loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    pub cert_path: PathBuf,
    pub not_after: jiff::Timestamp,
}

/// The CA that signs the proxy's per-host certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    cert_path: Option<PathBuf>,
    provider: Arc<CryptoProvider>,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertificateAuthority {
    /// Load the CA kept in `dir`, or make one there if `dir` holds none yet.
    ///
    /// The directory is created with mode 0700, the key written with 0600 and the
    /// certificate with 0644, each atomically. A lock file serialises concurrent moat
    /// processes so two of them never make two different CAs. If only one of the two
    /// files exists (a crash while making the CA), a new pair is made. This does blocking
    /// file I/O; call it before serving, or from `spawn_blocking`.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CaError::Io { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;

        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let ca = if key_path.exists() && cert_path.exists() {
            Self::load(dir, &key_path, &cert_path)?
        } else {
            let (params, key, cert_pem) = generate()?;
            moat_home::write_private_atomic(&key_path, key.serialize_pem().as_bytes())
                .map_err(io(&key_path))?;
            moat_home::write_atomic(&cert_path, cert_pem.as_bytes()).map_err(io(&cert_path))?;
            Self::from_parts(params, key, cert_pem, Some(cert_path))?
        };
        drop(lock);
        Ok(ca)
    }

    /// Check the CA kept in `dir` without making one (for `moat doctor`): `Ok(None)` when
    /// `dir` holds no complete CA yet (the next run makes it), else where its certificate
    /// is and when it expires. The same checks as loading: a key others can read, a key
    /// that does not belong to the certificate, damaged files.
    pub fn inspect(dir: &Path) -> Result<Option<CaInfo>, CaError> {
        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        if !(key_path.exists() && cert_path.exists()) {
            return Ok(None);
        }
        let ca = Self::load(dir, &key_path, &cert_path)?;
        let damaged = |reason: String| CaError::Damaged {
            dir: dir.to_owned(),
            reason,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der)
            .map_err(|e| damaged(format!("`{CA_CERT_FILE}` cannot be read: {e}")))?;
        let not_after = jiff::Timestamp::from_second(cert.validity().not_after.timestamp())
            .map_err(|e| damaged(format!("`{CA_CERT_FILE}` has an impossible expiry: {e}")))?;
        Ok(Some(CaInfo {
            cert_path,
            not_after,
        }))
    }

    /// A CA that exists only in memory, for tests and benchmarks.
    pub fn ephemeral() -> Result<Self, CaError> {
        let (params, key, cert_pem) = generate()?;
        Self::from_parts(params, key, cert_pem, None)
    }

    fn load(dir: &Path, key_path: &Path, cert_path: &Path) -> Result<Self, CaError> {
        let damaged = |reason: String| CaError::Damaged {
            dir: dir.to_owned(),
            reason,
        };
        let meta = fs::metadata(key_path).map_err(|source| CaError::Io {
            path: key_path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CaError::KeyPermissions {
                path: key_path.to_owned(),
                mode,
            });
        }
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| match source.kind() {
                ErrorKind::InvalidData => damaged(format!("`{}` is not text", path.display())),
                _ => CaError::Io {
                    path: path.to_owned(),
                    source,
                },
            })
        };
        let key_pem = read(key_path)?;
        let cert_pem = read(cert_path)?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| damaged(format!("`{CA_KEY_FILE}` is not a private key: {e}")))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| damaged(format!("`{CA_CERT_FILE}` is not a certificate: {e}")))?;
        let provider = provider();
        // Leaf certificates signed with a key that is not the certificate's would be
        // rejected by every client, far from here; catch it now.
        CertifiedKey::from_der(vec![cert_der.clone()], pkcs8(&key), &provider).map_err(|e| {
            damaged(format!(
                "`{CA_KEY_FILE}` does not belong to `{CA_CERT_FILE}` ({e})"
            ))
        })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| damaged(format!("`{CA_CERT_FILE}` cannot be used as a CA: {e}")))?;
        Ok(CertificateAuthority {
            cert_pem,
            cert_der,
            issuer,
            cert_path: Some(cert_path.to_owned()),
            provider,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    fn from_parts(
        params: CertificateParams,
        key: KeyPair,
        cert_pem: String,
        cert_path: Option<PathBuf>,
    ) -> Result<Self, CaError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| CaError::Generate(e.to_string()))?;
        Ok(CertificateAuthority {
            cert_pem,
            cert_der,
            issuer: Issuer::new(params, key),
            cert_path,
            provider: provider(),
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate in PEM, for the containers' trust stores.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Where `ca.crt` is, for a CA loaded from or made in a directory.
    pub fn cert_path(&self) -> Option<&Path> {
        self.cert_path.as_deref()
    }

    /// The certificate chain `[leaf, ca]` and key to serve for `host` (a DNS name or an
    /// IP address, normalized). Issued on first use and cached.
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = leaves.get(host) {
            return Ok(found.clone());
        }
        // Issued under the lock: concurrent first requests for a host wait for one
        // certificate instead of each making their own (P-256 takes well under 1 ms).
        let issued = Arc::new(self.issue(host)?);
        if leaves.len() >= MAX_CACHED_LEAVES {
            leaves.clear();
        }
        leaves.insert(host.to_owned(), issued.clone());
        Ok(issued)
    }

    fn issue(&self, host: &str) -> Result<CertifiedKey, CaError> {
        let fail = |reason: String| CaError::Leaf {
            host: host.to_owned(),
            reason,
        };
        // An IP string becomes an IP SAN, anything else a DNS SAN.
        let mut params =
            CertificateParams::new(vec![host.to_owned()]).map_err(|e| fail(e.to_string()))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial().map_err(fail)?);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(LEAF_VALIDITY_DAYS);
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| fail(e.to_string()))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| fail(e.to_string()))?;
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(pkcs8(&key))
            .map_err(|e| fail(e.to_string()))?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone(), self.cert_der.clone()],
            signing_key,
        ))
    }
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

fn generate() -> Result<(CertificateParams, KeyPair, String), CaError> {
    let fail = |e: rcgen::Error| CaError::Generate(e.to_string());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Moat CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Moat");
    // Path length 0: this CA signs leaves only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial().map_err(CaError::Generate)?);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok((params, key, cert.pem()))
}

fn random_serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    // Serial numbers are positive integers: keep the top bit clear.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// The one crypto provider this crate uses, passed explicitly to every rustls config so
/// nothing depends on a process-wide default.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    fn verify(ca: &CertificateAuthority, host: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        let leaf = ca.leaf(host).unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &leaf.cert[1..],
                &ServerName::try_from(host.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_the_ca_once_with_private_key_permissions_and_reloads_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let first = CertificateAuthority::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(CA_CERT_FILE)), 0o644);
        assert_eq!(mode(&dir), 0o700);
        assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(first.cert_path(), Some(dir.join(CA_CERT_FILE).as_path()));

        let second = CertificateAuthority::load_or_create(&dir).unwrap();
        assert_eq!(first.cert_pem(), second.cert_pem());
        // The reloaded CA signs leaves that chain to the original certificate.
        verify(&second, "api.github.com").unwrap();
    }

    #[test]
    fn leaves_chain_to_the_ca_for_names_and_ip_addresses() {
        let ca = CertificateAuthority::ephemeral().unwrap();
        verify(&ca, "api.github.com").unwrap();
        verify(&ca, "127.0.0.1").unwrap();
        verify(&ca, "::1").unwrap();
        let leaf = ca.leaf("api.github.com").unwrap();
        assert_eq!(leaf.cert.len(), 2, "served chain is [leaf, ca]");
        assert_eq!(&leaf.cert[1], ca.cert_der());
        assert!(leaf.keys_match().is_ok());
    }

    #[test]
    fn leaf_for_one_host_is_not_valid_for_another() {
        let ca = CertificateAuthority::ephemeral().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        let leaf = ca.leaf("a.example.com").unwrap();
        let err = verifier
            .verify_server_cert(
                &leaf.cert[0],
                &leaf.cert[1..],
                &ServerName::try_from("b.example.com").unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("not valid for name"), "{err}");
    }

    #[test]
    fn leaves_are_cached_per_host() {
        let ca = CertificateAuthority::ephemeral().unwrap();
        let a = ca.leaf("a.test").unwrap();
        assert!(Arc::ptr_eq(&a, &ca.leaf("a.test").unwrap()));
        assert!(!Arc::ptr_eq(&a, &ca.leaf("b.test").unwrap()));
    }

    #[test]
    fn inspect_creates_nothing_and_reports_the_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        assert_eq!(CertificateAuthority::inspect(&dir).unwrap(), None);
        assert!(!dir.exists());
        CertificateAuthority::load_or_create(&dir).unwrap();
        let info = CertificateAuthority::inspect(&dir).unwrap().unwrap();
        assert_eq!(info.cert_path, dir.join(CA_CERT_FILE));
        let years = info
            .not_after
            .duration_since(jiff::Timestamp::now())
            .as_secs()
            / 86_400
            / 365;
        assert!((9..=10).contains(&years), "{info:?}");
        fs::set_permissions(dir.join(CA_KEY_FILE), fs::Permissions::from_mode(0o640)).unwrap();
        let err = CertificateAuthority::inspect(&dir).unwrap_err();
        assert!(
            matches!(err, CaError::KeyPermissions { mode: 0o640, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_readable_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(tmp.path()).unwrap();
        let key = tmp.path().join(CA_KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = CertificateAuthority::load_or_create(tmp.path()).unwrap_err();
        assert!(
            matches!(err, CaError::KeyPermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("chmod 600"));
    }

    #[test]
    fn a_key_of_another_ca_is_reported_as_damage() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(a.path()).unwrap();
        CertificateAuthority::load_or_create(b.path()).unwrap();
        fs::copy(b.path().join(CA_KEY_FILE), a.path().join(CA_KEY_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(a.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`ca.key` does not belong to `ca.crt`"),
            "{err}"
        );
        assert!(err.hint().unwrap().starts_with("remove `"));
    }

    #[test]
    fn garbage_files_are_reported_as_damage() {
        let tmp = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(tmp.path()).unwrap();
        fs::write(tmp.path().join(CA_CERT_FILE), "not a certificate").unwrap();
        let err = CertificateAuthority::load_or_create(tmp.path()).unwrap_err();
        assert!(
            err.to_string().contains("`ca.crt` is not a certificate"),
            "{err}"
        );
    }

    #[test]
    fn a_half_made_ca_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let first = CertificateAuthority::load_or_create(tmp.path()).unwrap();
        fs::remove_file(tmp.path().join(CA_CERT_FILE)).unwrap();
        let second = CertificateAuthority::load_or_create(tmp.path()).unwrap();
        assert_ne!(first.cert_pem(), second.cert_pem());
        verify(
            &CertificateAuthority::load_or_create(tmp.path()).unwrap(),
            "x.test",
        )
        .unwrap();
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ca = CertificateAuthority::ephemeral().unwrap();
        let text = format!("{ca:?}");
        assert!(!text.contains("BEGIN"), "{text}");
    }
}
