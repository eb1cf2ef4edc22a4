//! The store: one AES-256-GCM file per credential, `<dir>/<provider>.enc`.
//!
//! File layout: `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`, the plaintext being the
//! credential's JSON, the associated data being the provider name, so a file renamed to
//! another provider does not decrypt. Files are written atomically with mode 0600 in a
//! 0700 directory: a crash leaves the old credential or the new one, never half of one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use moat_home::MoatHome;
use zeroize::Zeroizing;

use crate::{
    Credential, CredentialError, CredentialSummary, DecryptFailure, EncryptionKey, KeySource,
    ProviderName,
};

/// The directory under `$MOAT_HOME` that holds the credential files.
pub const CREDENTIALS_DIR_NAME: &str = "credentials";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const EXTENSION: &str = "enc";

/// Temp files of a crashed write older than this are removed by the next `save` of the
/// same provider; younger ones may belong to a write still in progress.
const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// The encrypted credentials in one directory, with the key that opens them.
#[derive(Debug)]
pub struct CredentialStore {
    dir: PathBuf,
    key: EncryptionKey,
}

/// One line of a listing: a credential, or a file that could not be read and why.
#[derive(Debug)]
pub enum ListedCredential {
    Readable(CredentialSummary),
    Unreadable {
        path: PathBuf,
        error: CredentialError,
    },
}

impl CredentialStore {
    pub fn new(dir: PathBuf, key: EncryptionKey) -> Self {
        CredentialStore { dir, key }
    }

    /// `$MOAT_HOME/credentials` with `key`.
    pub fn in_home(home: &MoatHome, key: EncryptionKey) -> Self {
        Self::new(home.credentials_dir(), key)
    }

    /// `$MOAT_HOME/credentials` with the key from `keys` (created on first use).
    pub fn open(home: &MoatHome, keys: &dyn KeySource) -> Result<Self, CredentialError> {
        Ok(Self::in_home(home, keys.get_or_create()?))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the credential of `provider` is (or would be) stored.
    pub fn path_of(&self, provider: &ProviderName) -> PathBuf {
        self.dir.join(format!("{provider}.{EXTENSION}"))
    }

    /// Encrypt and write `credential`, replacing any earlier one of its provider.
    /// Returns the file's path, for "credential saved to …".
    pub fn save(&self, credential: &Credential) -> Result<PathBuf, CredentialError> {
        self.ensure_private_dir()?;
        let provider = credential.provider();
        let path = self.path_of(provider);
        let sealed = seal(&self.key, provider, &credential.to_plaintext())?;
        moat_home::write_private_atomic(&path, &sealed)
            .map_err(|e| CredentialError::file(&path, e))?;
        self.remove_stale_temp_files(provider);
        Ok(path)
    }

    /// The credential of `provider`, `None` if none is granted.
    pub fn load(&self, provider: &ProviderName) -> Result<Option<Credential>, CredentialError> {
        let path = self.path_of(provider);
        // Bounded like every file someone may point moat at: a FIFO or a huge file put
        // here must not hang moat or fill its memory.
        let bytes = match moat_home::read_bounded(&path, moat_home::FileKind::CREDENTIAL) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(source) => {
                return Err(CredentialError::Unusable {
                    provider: provider.clone(),
                    source,
                });
            }
        };
        let undecryptable = |reason| CredentialError::Undecryptable {
            path: path.clone(),
            provider: provider.clone(),
            reason,
        };
        let plaintext = open(&self.key, provider, &bytes).map_err(undecryptable)?;
        Credential::from_plaintext(&plaintext, provider)
            .map(Some)
            .map_err(|why| undecryptable(DecryptFailure::BadContent(why)))
    }

    /// Like `load`, but a missing credential is `NotFound` (hint: `moat grant <provider>`).
    pub fn require(&self, provider: &ProviderName) -> Result<Credential, CredentialError> {
        self.load(provider)?
            .ok_or_else(|| CredentialError::NotFound {
                provider: provider.clone(),
            })
    }

    /// Every credential file, sorted by provider. A file that cannot be read is listed
    /// with its error rather than failing the listing; only an unreadable directory fails.
    pub fn list(&self) -> Result<Vec<ListedCredential>, CredentialError> {
        let entries = match fs_err::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CredentialError::file(&self.dir, e)),
        };
        let mut listed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| CredentialError::file(&self.dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Temp files of writes in progress start with `.`.
            if name.starts_with('.') {
                continue;
            }
            let Some(stem) = name.strip_suffix(".enc") else {
                continue;
            };
            let item = match ProviderName::parse(stem) {
                Err(error) => ListedCredential::Unreadable { path, error },
                Ok(provider) => match self.load(&provider) {
                    Ok(Some(credential)) => ListedCredential::Readable(credential.summary()),
                    // Removed since the directory was read.
                    Ok(None) => continue,
                    Err(error) => ListedCredential::Unreadable { path, error },
                },
            };
            listed.push((name.to_owned(), item));
        }
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listed.into_iter().map(|(_, item)| item).collect())
    }

    /// Delete the credential of `provider`; `NotFound` if there is none.
    pub fn remove(&self, provider: &ProviderName) -> Result<PathBuf, CredentialError> {
        let path = self.path_of(provider);
        match fs_err::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CredentialError::NotFound {
                provider: provider.clone(),
            }),
            Err(e) => Err(CredentialError::file(path, e)),
        }
    }

    /// Create the directory 0700, and tighten it if it already exists with looser bits.
    fn ensure_private_dir(&self) -> Result<(), CredentialError> {
        MoatHome::create_private_dir(&self.dir).map_err(|e| match e {
            moat_home::HomeError::Create { path, source } => CredentialError::file(path, source),
            other => CredentialError::file(&self.dir, std::io::Error::other(other.to_string())),
        })?;
        let mode = fs_err::metadata(&self.dir)
            .map_err(|e| CredentialError::file(&self.dir, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            fs_err::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| CredentialError::file(&self.dir, e))?;
        }
        Ok(())
    }

    /// Remove temp files an interrupted write of `provider` left (`.<provider>.enc.*.tmp`,
    /// the naming of `moat_home::write_private_atomic`). They hold ciphertext only, so a
    /// failure here is logged, not returned: the credential itself was saved.
    fn remove_stale_temp_files(&self, provider: &ProviderName) {
        let prefix = format!(".{provider}.{EXTENSION}.");
        let Ok(entries) = fs_err::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with(&prefix) && name.ends_with(".tmp")) {
                continue;
            }
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified).unwrap_or_default() > STALE_TEMP_AGE
                });
            if stale && let Err(error) = fs_err::remove_file(entry.path()) {
                tracing::debug!(path = %entry.path().display(), %error, "cannot remove stale temp file");
            }
        }
    }
}

/// The providers with a credential file in `dir` (`github` for `github.enc`), sorted;
/// none when the directory is missing or unreadable. Temp files (`.…`) do not count.
pub fn stored_providers(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            name.strip_suffix(".enc").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// `nonce ‖ AES-256-GCM(plaintext, aad = provider)` with a fresh random nonce.
fn seal(
    key: &EncryptionKey,
    provider: &ProviderName,
    plaintext: &[u8],
) -> Result<Vec<u8>, CredentialError> {
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(CredentialError::Random)?;
    let payload = Payload {
        msg: plaintext,
        aad: provider.as_str().as_bytes(),
    };
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("AES-GCM encrypts any input below its 64 GiB limit");
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// The inverse of `seal`; any tampering, another key or another provider's AAD is
/// `AuthenticationFailed`.
fn open(
    key: &EncryptionKey,
    provider: &ProviderName,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DecryptFailure> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(DecryptFailure::TooShort { len: sealed.len() });
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let payload = Payload {
        msg: ciphertext,
        aad: provider.as_str().as_bytes(),
    };
    cipher
        .decrypt(Nonce::from_slice(nonce), payload)
        .map(Zeroizing::new)
        .map_err(|_| DecryptFailure::AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CredentialKind, CredentialSource, KeyError, Secret};
    use jiff::Timestamp;

    const API_KEY: &str = "sk-ant-api03-TOPSECRET-abcdefghijklmnop";

    fn provider(name: &str) -> ProviderName {
        ProviderName::parse(name).unwrap()
    }

    fn api_key(name: &str, secret: &str) -> Credential {
        Credential::new(
            provider(name),
            CredentialKind::ApiKey,
            Secret::new(secret),
            CredentialSource::Env {
                var: "ANTHROPIC_API_KEY".into(),
            },
            "2026-01-02T03:04:05Z".parse().unwrap(),
        )
        .unwrap()
    }

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey::from_bytes([byte; 32])
    }

    fn store_in(dir: &Path) -> CredentialStore {
        CredentialStore::new(dir.join("credentials"), key(7))
    }

    fn mode(path: &Path) -> u32 {
        fs_err::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn undecryptable_reason(err: CredentialError) -> DecryptFailure {
        match err {
            CredentialError::Undecryptable { reason, .. } => reason,
            other => panic!("expected Undecryptable, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = store.save(&api_key("anthropic", API_KEY)).unwrap();
        assert_eq!(path, dir.path().join("credentials/anthropic.enc"));
        let loaded = store.require(&provider("anthropic")).unwrap();
        assert_eq!(loaded.secret().expose(), API_KEY);
        assert_eq!(loaded.summary(), api_key("anthropic", API_KEY).summary());
        // The file holds no plaintext.
        let bytes = fs_err::read(&path).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"TOPSECRET"));
        assert!(!bytes.windows(9).any(|w| w == b"anthropic"));
    }

    #[test]
    fn debug_of_the_store_and_what_it_returns_hides_key_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.save(&api_key("anthropic", API_KEY)).unwrap();
        let loaded = store.require(&provider("anthropic")).unwrap();
        let text = format!("{store:?} {loaded:?} {:?}", store.list().unwrap());
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert!(!text.contains("7, 7"), "key bytes in {text}");
        assert!(text.contains("[REDACTED]"));
    }

    #[test]
    fn save_replaces_and_nonces_differ() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = store.save(&api_key("anthropic", "sk-ant-old")).unwrap();
        let first = fs_err::read(&path).unwrap();
        store.save(&api_key("anthropic", "sk-ant-old")).unwrap();
        let second = fs_err::read(&path).unwrap();
        assert_ne!(first[..NONCE_LEN], second[..NONCE_LEN]);
        store.save(&api_key("anthropic", "sk-ant-new")).unwrap();
        let loaded = store.require(&provider("anthropic")).unwrap();
        assert_eq!(loaded.secret().expose(), "sk-ant-new");
    }

    #[test]
    fn files_are_private_and_no_temp_files_remain() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        for name in ["anthropic", "github", "anthropic"] {
            store.save(&api_key(name, API_KEY)).unwrap();
        }
        assert_eq!(mode(store.dir()), 0o700);
        let mut names = Vec::new();
        for entry in fs_err::read_dir(store.dir()).unwrap() {
            let entry = entry.unwrap();
            assert_eq!(mode(&entry.path()), 0o600);
            names.push(entry.file_name().into_string().unwrap());
        }
        names.sort();
        assert_eq!(names, ["anthropic.enc", "github.enc"]);
    }

    #[test]
    fn a_loose_directory_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        fs_err::create_dir(store.dir()).unwrap();
        fs_err::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        store.save(&api_key("github", API_KEY)).unwrap();
        assert_eq!(mode(store.dir()), 0o700);
    }

    #[test]
    fn stale_temp_files_of_a_crashed_write_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.save(&api_key("github", API_KEY)).unwrap();
        let stale = store.dir().join(".github.enc.0123456789ab.tmp");
        let fresh = store.dir().join(".github.enc.ba9876543210.tmp");
        let other = store.dir().join(".anthropic.enc.0123456789ab.tmp");
        for path in [&stale, &fresh, &other] {
            fs_err::write(path, b"partial").unwrap();
        }
        let old = SystemTime::now() - Duration::from_secs(3600);
        for path in [&stale, &other] {
            fs_err::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        store.save(&api_key("github", API_KEY)).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists(), "may belong to a write in progress");
        assert!(
            other.exists(),
            "another provider's write is not ours to clean"
        );
        // Listing ignores temp files.
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn a_flipped_byte_anywhere_is_undecryptable() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = store.save(&api_key("anthropic", API_KEY)).unwrap();
        let good = fs_err::read(&path).unwrap();
        for at in [0, NONCE_LEN, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            fs_err::write(&path, &bad).unwrap();
            let err = store.load(&provider("anthropic")).unwrap_err();
            let text = format!("{err} {err:?} {}", err.hint().unwrap());
            assert!(!text.contains("TOPSECRET"));
            assert!(text.contains("run `moat grant anthropic` again"), "{text}");
            assert_eq!(
                undecryptable_reason(err),
                DecryptFailure::AuthenticationFailed
            );
        }
    }

    #[test]
    fn truncated_files_are_undecryptable() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = store.save(&api_key("anthropic", API_KEY)).unwrap();
        let good = fs_err::read(&path).unwrap();
        for len in [0, 5, NONCE_LEN + TAG_LEN - 1] {
            fs_err::write(&path, &good[..len]).unwrap();
            let reason = undecryptable_reason(store.load(&provider("anthropic")).unwrap_err());
            assert_eq!(reason, DecryptFailure::TooShort { len });
        }
        for len in [NONCE_LEN + TAG_LEN, good.len() - 1] {
            fs_err::write(&path, &good[..len]).unwrap();
            let reason = undecryptable_reason(store.load(&provider("anthropic")).unwrap_err());
            assert_eq!(reason, DecryptFailure::AuthenticationFailed);
        }
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        store_in(dir.path())
            .save(&api_key("anthropic", API_KEY))
            .unwrap();
        let other = CredentialStore::new(dir.path().join("credentials"), key(8));
        let err = other.load(&provider("anthropic")).unwrap_err();
        assert!(err.to_string().contains("anthropic.enc"), "{err}");
        assert_eq!(
            undecryptable_reason(err),
            DecryptFailure::AuthenticationFailed
        );
    }

    #[test]
    fn a_file_renamed_to_another_provider_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = store.save(&api_key("github", API_KEY)).unwrap();
        fs_err::rename(&path, store.path_of(&provider("anthropic"))).unwrap();
        let err = store.load(&provider("anthropic")).unwrap_err();
        assert_eq!(
            undecryptable_reason(err),
            DecryptFailure::AuthenticationFailed
        );
    }

    #[test]
    fn content_that_is_not_a_credential_is_undecryptable_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.ensure_private_dir().unwrap();
        let p = provider("github");
        let sealed = seal(&key(7), &p, br#"{"secret": 42, "leak": "ghp_LEAKME"}"#).unwrap();
        fs_err::write(store.path_of(&p), sealed).unwrap();
        let err = store.load(&p).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("LEAKME"));
        assert!(matches!(
            undecryptable_reason(err),
            DecryptFailure::BadContent(_)
        ));
    }

    #[test]
    fn missing_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        assert!(store.load(&provider("github")).unwrap().is_none());
        let err = store.require(&provider("github")).unwrap_err();
        assert_eq!(err.to_string(), "no `github` credential is granted");
        assert_eq!(err.hint().unwrap(), "grant it with `moat grant github`");
        let err = store.remove(&provider("github")).unwrap_err();
        assert!(matches!(err, CredentialError::NotFound { .. }));
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn remove_deletes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = store.save(&api_key("github", API_KEY)).unwrap();
        assert_eq!(store.remove(&provider("github")).unwrap(), path);
        assert!(!path.exists());
        assert!(store.load(&provider("github")).unwrap().is_none());
    }

    #[test]
    fn list_reports_unreadable_files_next_to_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.save(&api_key("github", API_KEY)).unwrap();
        store.save(&api_key("anthropic", API_KEY)).unwrap();
        fs_err::write(store.path_of(&provider("openai")), b"short").unwrap();
        fs_err::write(store.dir().join("Bad Name.enc"), b"whatever").unwrap();
        fs_err::write(store.dir().join("notes.txt"), b"ignored").unwrap();
        let listed = store.list().unwrap();
        let lines: Vec<String> = listed
            .iter()
            .map(|item| match item {
                ListedCredential::Readable(s) => format!("{} {} {}", s.provider, s.kind, s.source),
                ListedCredential::Unreadable { path, error } => format!(
                    "unreadable {} {}",
                    path.file_name().unwrap().to_str().unwrap(),
                    error
                ),
            })
            .collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("unreadable Bad Name.enc invalid provider name"));
        assert_eq!(lines[1], "anthropic API key env:ANTHROPIC_API_KEY");
        assert_eq!(lines[2], "github API key env:ANTHROPIC_API_KEY");
        assert!(lines[3].starts_with("unreadable openai.enc cannot decrypt"));
        assert!(lines[3].contains("truncated"));
        assert!(!format!("{listed:?}").contains("TOPSECRET"));
    }

    #[test]
    fn open_with_a_key_source() {
        let dir = tempfile::tempdir().unwrap();
        let home = MoatHome::at(dir.path().to_owned());
        let keys = crate::MemoryKeySource::new();
        let store = CredentialStore::open(&home, &keys).unwrap();
        store.save(&api_key("github", API_KEY)).unwrap();
        let again = CredentialStore::open(&home, &keys).unwrap();
        assert_eq!(again.dir(), dir.path().join("credentials"));
        assert!(again.load(&provider("github")).unwrap().is_some());
    }

    #[test]
    fn a_missing_key_with_credentials_stored_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let home = MoatHome::at(dir.path().to_owned());
        let keys = crate::ChainKeySource::for_home(&home, crate::KeyringMode::File);
        let store = CredentialStore::open(&home, &keys).unwrap();
        store.save(&api_key("github", API_KEY)).unwrap();
        store.save(&api_key("anthropic", API_KEY)).unwrap();
        fs_err::remove_file(home.key_file()).unwrap();

        let err = CredentialStore::open(&home, &keys).unwrap_err();
        assert!(
            matches!(err, CredentialError::Key(KeyError::KeyMissing(_))),
            "{err:?}"
        );
        assert!(!home.key_file().exists(), "no new key was made");
        assert_eq!(
            err.to_string(),
            format!(
                "the encryption key of the stored credentials is missing (looked in `{}`); 2 \
                 credentials (`anthropic`, `github`) in `{}` cannot be read without it",
                home.key_file().display(),
                home.credentials_dir().display()
            )
        );
        let hint = err.hint().unwrap();
        assert_eq!(
            hint,
            format!(
                "restore the key file `{}` from a backup and retry; or start over: `moat revoke \
                 anthropic`, `moat revoke github`, then grant again with `moat grant <provider>`",
                home.key_file().display()
            )
        );
        // `obtain` (what `moat grant` uses) says the same.
        assert!(matches!(
            keys.obtain().unwrap_err(),
            KeyError::KeyMissing(_)
        ));

        // Once the credentials are revoked the store is empty, and a new key is fine.
        store.remove(&provider("github")).unwrap();
        store.remove(&provider("anthropic")).unwrap();
        CredentialStore::open(&home, &keys).unwrap();
        assert!(home.key_file().exists());
    }

    #[test]
    fn a_credential_file_that_is_a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.save(&api_key("github", API_KEY)).unwrap();
        let path = store.path_of(&provider("github"));
        fs_err::remove_file(&path).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let err = store.load(&provider("github")).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a named pipe (FIFO), not a regular file"),
            "{err}"
        );
        assert!(
            err.hint().unwrap().contains("`moat revoke github`"),
            "{err:?}"
        );
    }

    #[test]
    fn stored_providers_are_the_enc_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(stored_providers(&dir.path().join("missing")).is_empty());
        let store = store_in(dir.path());
        store.save(&api_key("openai", API_KEY)).unwrap();
        store.save(&api_key("github", API_KEY)).unwrap();
        fs_err::write(store.dir().join(".github.enc.x.tmp"), b"").unwrap();
        fs_err::write(store.dir().join("notes.txt"), b"").unwrap();
        assert_eq!(stored_providers(store.dir()), ["github", "openai"]);
    }

    #[test]
    fn a_key_error_surfaces_with_its_hint() {
        struct Broken;
        impl KeySource for Broken {
            fn get_or_create(&self) -> Result<EncryptionKey, KeyError> {
                Err(KeyError::KeyringUnreachable {
                    reason: "locked".into(),
                })
            }
            fn describe(&self) -> String {
                "broken".into()
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let home = MoatHome::at(dir.path().to_owned());
        let err = CredentialStore::open(&home, &Broken).unwrap_err();
        assert!(err.hint().unwrap().contains("unlock the OS keyring"));
    }

    #[test]
    fn a_failed_write_is_an_error_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store.save(&api_key("anthropic", API_KEY)).unwrap();
        // A directory in the credential's place makes the final rename fail after the
        // temp file was written (root ignores permission bits, so those cannot be used).
        let blocker = store.path_of(&provider("github"));
        fs_err::create_dir(&blocker).unwrap();
        fs_err::write(blocker.join("x"), b"").unwrap();
        let err = store.save(&api_key("github", API_KEY)).unwrap_err();
        assert!(matches!(err, CredentialError::File { .. }), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("TOPSECRET"));
        let mut names: Vec<_> = fs_err::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["anthropic.enc", "github.enc"]);
        assert!(store.load(&provider("anthropic")).unwrap().is_some());
    }

    #[test]
    fn summary_has_times_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let expires: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
        let cred = Credential::new(
            provider("anthropic"),
            CredentialKind::OAuthToken {
                expires_at: Some(expires),
                subscription_type: Some("pro".into()),
                scopes: vec![],
                refresh_token: None,
            },
            Secret::new("sk-ant-oat01-TOPSECRET"),
            CredentialSource::Command {
                command: "claude setup-token".into(),
            },
            "2026-01-02T03:04:05Z".parse().unwrap(),
        )
        .unwrap();
        store.save(&cred).unwrap();
        let [ListedCredential::Readable(summary)] = &store.list().unwrap()[..] else {
            panic!("one readable credential expected");
        };
        assert_eq!(summary.expires_at, Some(expires));
        assert_eq!(summary.subscription_type.as_deref(), Some("pro"));
        assert_eq!(summary.source.to_string(), "claude setup-token");
        assert_eq!(
            summary.expiry_status("2026-05-02T00:00:00Z".parse().unwrap()),
            crate::ExpiryStatus::Expired
        );
    }
}
