//! The 32-byte key that encrypts the store, and where it lives: the OS keyring (with a
//! timeout, so a locked keyring cannot hang moat), the file `$MOAT_HOME/encryption.key`,
//! the chain of both that moat uses, or memory (tests).
//!
//! Nothing here reads environment variables: `MOAT_KEYRING=file` is read by the CLI and
//! arrives as [`KeyringMode::File`].
//!
//! The `keyring` 4 crate (`v1` facade) on headless Linux, as measured here (root, no
//! desktop): without a session bus `Entry::new` fails with `NoDefaultStore` in about 1 ms
//! (the cause, "Failed to connect to address `unix:path=/run/user/0/bus`", comes from
//! `Entry::store_status`); under `dbus-run-session` without a Secret Service it fails with
//! `ServiceUnknown` in about 40 ms. Both fall back to the key file at once. The case the
//! timeout exists for, a running but locked gnome-keyring waiting on an unlock prompt that
//! never shows, could not be reproduced here and is covered by a hanging fake backend.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use moat_home::{FileKind, MoatHome};
use zeroize::Zeroizing;

use crate::KeyError;

/// The keyring service and account REF uses, so one key serves both.
pub const KEYRING_SERVICE: &str = "moat";
pub const KEYRING_ACCOUNT: &str = "encryption-key";

/// How long a keyring call may take before moat gives up on it and uses the file.
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

/// File name of the key file under `$MOAT_HOME`.
pub const KEY_FILE_NAME: &str = "encryption.key";

/// An AES-256 key. Wiped on drop; `Debug` prints `[REDACTED]`.
#[derive(Clone)]
pub struct EncryptionKey(Zeroizing<[u8; 32]>);

impl EncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EncryptionKey(Zeroizing::new(bytes))
    }

    /// 32 bytes from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut key[..]).map_err(KeyError::Random)?;
        Ok(EncryptionKey(key))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The stored form, in the keyring and the key file: standard base64, as REF writes it.
    fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(&self.0[..]))
    }

    fn from_base64(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(BASE64.decode(text.trim()).ok()?);
        let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(EncryptionKey::from_bytes(array))
    }

    fn same_as(&self, other: &EncryptionKey) -> bool {
        // Not secret-dependent timing that matters: both values are our own key.
        self.0[..] == other.0[..]
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

/// Somewhere the store's key can be found, or made the first time.
pub trait KeySource: Send + Sync {
    /// The key, creating and storing a new one if there is none yet.
    fn get_or_create(&self) -> Result<EncryptionKey, KeyError>;

    /// Where the key lives, for `moat doctor` ("the OS keyring", "`~/.moat/encryption.key`").
    fn describe(&self) -> String;
}

/// A key held in memory: for tests and nothing else.
#[derive(Debug, Default)]
pub struct MemoryKeySource {
    key: Mutex<Option<EncryptionKey>>,
}

impl MemoryKeySource {
    /// Empty: the first `get_or_create` generates a key, later calls return it.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_key(key: EncryptionKey) -> Self {
        MemoryKeySource {
            key: Mutex::new(Some(key)),
        }
    }
}

impl KeySource for MemoryKeySource {
    fn get_or_create(&self) -> Result<EncryptionKey, KeyError> {
        let mut slot = self
            .key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(key) = &*slot {
            return Ok(key.clone());
        }
        let key = EncryptionKey::generate()?;
        *slot = Some(key.clone());
        Ok(key)
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// The key in a file (base64, mode 0600), created atomically under a lock so that two
/// processes creating it at once end up with the same key.
#[derive(Debug, Clone)]
pub struct FileKeySource {
    path: PathBuf,
}

impl FileKeySource {
    pub fn new(path: PathBuf) -> Self {
        FileKeySource { path }
    }

    /// `$MOAT_HOME/encryption.key`.
    pub fn in_home(home: &MoatHome) -> Self {
        Self::new(home.key_file())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside the key (`encryption.key.lock`). It stays after use: removing
    /// it would let a third process lock a fresh file while the second still holds the old.
    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".lock");
        self.path.with_file_name(name)
    }

    /// The key if the file exists. A file others can read is refused, not used: the key
    /// may have leaked, and the user should know. The file is read as every file someone
    /// may point moat at is (`moat_home::read_bounded`): a regular file of a few KiB, so a
    /// wrong path can neither fill memory nor hang moat.
    pub fn read(&self) -> Result<Option<EncryptionKey>, KeyError> {
        let file = match moat_home::BoundedFile::open(&self.path, FileKind::ENCRYPTION_KEY) {
            Ok(file) => file,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(KeyError::Unreadable(e)),
        };
        let mode = file.metadata().permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::KeyFilePermissions {
                path: self.path.clone(),
                mode,
            });
        }
        let bytes = Zeroizing::new(file.read().map_err(KeyError::Unreadable)?);
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(EncryptionKey::from_base64)
            .map(Some)
            .ok_or_else(|| KeyError::KeyFileInvalid {
                path: self.path.clone(),
            })
    }

    /// Hold the creation lock until the returned guard is dropped.
    fn lock(&self) -> Result<KeyLock, KeyError> {
        if let Some(dir) = self.path.parent() {
            MoatHome::create_private_dir(dir).map_err(|e| match e {
                moat_home::HomeError::Create { path, source } => KeyError::file(path, source),
                other => KeyError::file(dir, std::io::Error::other(other.to_string())),
            })?;
        }
        let lock_path = self.lock_path();
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| KeyError::file(&lock_path, e))?;
        file.lock().map_err(|e| KeyError::file(&lock_path, e))?;
        Ok(KeyLock { _file: file })
    }

    /// Write `key` as the key file; the caller holds the lock and has seen no file.
    fn write(&self, key: &EncryptionKey) -> Result<(), KeyError> {
        let mut text = key.to_base64();
        text.push('\n');
        moat_home::write_private_atomic(&self.path, text.as_bytes())
            .map_err(|e| KeyError::file(&self.path, e))
    }
}

impl KeySource for FileKeySource {
    fn get_or_create(&self) -> Result<EncryptionKey, KeyError> {
        if let Some(key) = self.read()? {
            return Ok(key);
        }
        let _lock = self.lock()?;
        // Someone may have created it while we waited for the lock: theirs wins.
        if let Some(key) = self.read()? {
            return Ok(key);
        }
        let key = EncryptionKey::generate()?;
        self.write(&key)?;
        Ok(key)
    }

    fn describe(&self) -> String {
        format!("`{}`", self.path.display())
    }
}

/// The exclusive `flock` on the lock file; released when the file closes.
struct KeyLock {
    _file: fs_err::File,
}

/// One entry in an OS keyring, reduced to what moat needs, so the chain and the timeout
/// can be tested with a fake instead of the real keyring.
pub trait KeyringBackend: Send + Sync + 'static {
    /// The stored text, `None` when there is no entry. Errors are texts without secrets.
    fn get(&self) -> Result<Option<Zeroizing<String>>, String>;
    fn set(&self, value: &str) -> Result<(), String>;
    /// Names the entry in messages, e.g. "`moat`/`encryption-key`".
    fn entry_name(&self) -> String;
}

/// The platform keyring through the `keyring` crate: Keychain on macOS, Credential Manager
/// on Windows, Secret Service over D-Bus on Linux.
///
/// On headless Linux without a session bus it fails in about a millisecond
/// ("No default store has been set"), and with a bus but no Secret Service in tens of
/// milliseconds; a locked gnome-keyring may block on an unlock prompt, which is what the
/// timeout in [`KeyringKeySource`] is for.
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
    account: String,
}

impl OsKeyring {
    pub fn new(service: impl Into<String>, account: impl Into<String>) -> Self {
        OsKeyring {
            service: service.into(),
            account: account.into(),
        }
    }

    fn entry(&self) -> Result<keyring::Entry, String> {
        keyring::Entry::new(&self.service, &self.account).map_err(|e| keyring_error_text(&e))
    }
}

impl Default for OsKeyring {
    fn default() -> Self {
        OsKeyring::new(KEYRING_SERVICE, KEYRING_ACCOUNT)
    }
}

/// keyring's `Display` is fine except where an error carries the stored bytes: those
/// get a fixed text.
fn keyring_error_text(error: &keyring::Error) -> String {
    match error {
        keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => {
            "the stored value is not valid text".into()
        }
        keyring::Error::NoDefaultStore => match keyring::Entry::store_status() {
            Err(cause) if !matches!(cause, keyring::Error::NoDefaultStore) => {
                format!("no keyring is available: {}", keyring_error_text(cause))
            }
            _ => "no keyring is available".into(),
        },
        other => other.to_string(),
    }
}

impl KeyringBackend for OsKeyring {
    fn get(&self) -> Result<Option<Zeroizing<String>>, String> {
        match self.entry()?.get_password() {
            Ok(value) => Ok(Some(Zeroizing::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error_text(&e)),
        }
    }

    fn set(&self, value: &str) -> Result<(), String> {
        self.entry()?
            .set_password(value)
            .map_err(|e| keyring_error_text(&e))
    }

    fn entry_name(&self) -> String {
        format!("`{}`/`{}`", self.service, self.account)
    }
}

/// The key in a keyring entry, every call bounded by a timeout.
///
/// A call that times out keeps running on its thread (a blocked D-Bus call cannot be
/// cancelled); its result is dropped, and moat goes on without it.
#[derive(Clone)]
pub struct KeyringKeySource {
    backend: Arc<dyn KeyringBackend>,
    timeout: Duration,
}

impl fmt::Debug for KeyringKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringKeySource")
            .field("entry", &self.backend.entry_name())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl KeyringKeySource {
    pub fn new(backend: Arc<dyn KeyringBackend>, timeout: Duration) -> Self {
        KeyringKeySource { backend, timeout }
    }

    /// The OS keyring entry `moat`/`encryption-key` with the 3 s timeout.
    pub fn os() -> Self {
        Self::new(Arc::new(OsKeyring::default()), KEYRING_TIMEOUT)
    }

    pub fn read(&self) -> Result<Option<EncryptionKey>, KeyError> {
        let backend = Arc::clone(&self.backend);
        let value = self.bounded(move || backend.get())?;
        match value {
            None => Ok(None),
            Some(text) => EncryptionKey::from_base64(&text).map(Some).ok_or_else(|| {
                KeyError::KeyringEntryInvalid {
                    entry: self.backend.entry_name(),
                }
            }),
        }
    }

    /// Store `key`, then read it back: some keyrings accept a write they do not keep.
    pub fn store(&self, key: &EncryptionKey) -> Result<(), KeyError> {
        let backend = Arc::clone(&self.backend);
        let text = key.to_base64();
        self.bounded(move || backend.set(&text))?;
        match self.read()? {
            Some(stored) if stored.same_as(key) => Ok(()),
            _ => Err(KeyError::Keyring {
                reason: "the key just stored could not be read back".into(),
            }),
        }
    }

    /// Run `call` on its own thread and wait at most `self.timeout` for it.
    fn bounded<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, KeyError> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("moat-keyring".into())
            .spawn(move || {
                // The receiver is gone after a timeout; the value is then just dropped.
                let _ = tx.send(call());
            })
            .map_err(|e| KeyError::Keyring {
                reason: format!("cannot start a thread for the keyring call: {e}"),
            })?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result.map_err(|reason| KeyError::Keyring { reason }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(KeyError::KeyringTimeout {
                timeout: self.timeout,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(KeyError::Keyring {
                reason: "the keyring call panicked".into(),
            }),
        }
    }
}

impl KeySource for KeyringKeySource {
    /// Without the chain's lock, two processes creating the key at the same moment can
    /// race; moat itself uses [`ChainKeySource`].
    fn get_or_create(&self) -> Result<EncryptionKey, KeyError> {
        if let Some(key) = self.read()? {
            return Ok(key);
        }
        let key = EncryptionKey::generate()?;
        self.store(&key)?;
        Ok(key)
    }

    fn describe(&self) -> String {
        format!("the OS keyring ({})", self.backend.entry_name())
    }
}

pub use moat_home::KeyringMode;

/// Where [`ChainKeySource::obtain`] found or put the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Keyring,
    File,
    /// The keyring could not be used (reason given), so the key is in the file.
    FileBecauseKeyringUnavailable {
        reason: String,
    },
}

/// moat's key source: the keyring, else `$MOAT_HOME/encryption.key`.
///
/// The order of lookups keeps the key stable across keyring hiccups:
/// 1. An existing key file wins. It exists only because the keyring could not be used
///    when the key was made, and it stays the key even if the keyring works later.
/// 2. Else the keyring. If it holds the key, done.
/// 3. If the keyring cannot be reached (no D-Bus, locked, timed out): when a marker says
///    the key was made in the keyring, that is an error (a new key would make every
///    credential unreadable); without the marker, a key file is created.
/// 4. If the keyring has no entry: under the key file's lock, a new key goes into the
///    keyring (read back) and the marker is written; if the keyring refuses, into the file.
///
/// A new key is made only for an empty store: when the store's directory (see
/// [`with_store`](Self::with_store); [`for_home`](Self::for_home) sets it) holds
/// credentials and no key is found, that is [`KeyError::KeyMissing`]. A new key would
/// make every stored credential read as "modified", with no word of what happened.
#[derive(Debug, Clone)]
pub struct ChainKeySource {
    keyring: Option<KeyringKeySource>,
    file: FileKeySource,
    /// The credential directory whose files this key opens.
    store: Option<PathBuf>,
}

/// What a lookup that creates nothing found.
enum Lookup {
    Found(EncryptionKey, KeyOrigin),
    /// No key; `Some` says why the keyring could not be asked.
    Missing(Option<String>),
}

impl ChainKeySource {
    /// `keyring: None` means file only.
    pub fn new(keyring: Option<KeyringKeySource>, file: FileKeySource) -> Self {
        ChainKeySource {
            keyring,
            file,
            store: None,
        }
    }

    /// Guard the credentials in `dir`: while it holds any, no new key is made.
    pub fn with_store(mut self, dir: PathBuf) -> Self {
        self.store = Some(dir);
        self
    }

    /// The OS keyring (unless `File`) and `$MOAT_HOME/encryption.key`, guarding
    /// `$MOAT_HOME/credentials`.
    pub fn for_home(home: &MoatHome, mode: KeyringMode) -> Self {
        let keyring = match mode {
            KeyringMode::Auto => Some(KeyringKeySource::os()),
            KeyringMode::File => None,
        };
        Self::new(keyring, FileKeySource::in_home(home)).with_store(home.credentials_dir())
    }

    /// The key, creating nothing: so that credentials already stored are never met with
    /// a new key.
    fn existing_key_for(
        &self,
        dir: &Path,
        stored: Vec<String>,
    ) -> Result<(EncryptionKey, KeyOrigin), KeyError> {
        match self.lookup()? {
            Lookup::Found(key, origin) => Ok((key, origin)),
            Lookup::Missing(keyring_problem) => {
                Err(KeyError::KeyMissing(Box::new(crate::error::MissingKey {
                    looked_in: self.describe(),
                    key_file: self.file.path.clone(),
                    keyring_entry: self.keyring.as_ref().map(|k| k.backend.entry_name()),
                    keyring_problem,
                    store: dir.to_owned(),
                    stored,
                })))
            }
        }
    }

    /// The marker saying the key was created in the keyring (`encryption.key.in-keyring`).
    fn marker_path(&self) -> PathBuf {
        let mut name = self.file.path.file_name().unwrap_or_default().to_owned();
        name.push(".in-keyring");
        self.file.path.with_file_name(name)
    }

    fn write_marker(&self, keyring: &KeyringKeySource) -> Result<(), KeyError> {
        let path = self.marker_path();
        let text = format!(
            "the encryption key of this moat home is in {}\n",
            keyring.describe()
        );
        moat_home::write_private_atomic(&path, text.as_bytes()).map_err(|e| KeyError::file(path, e))
    }

    /// The key and where it came from, so the CLI can mention a fallback to the file.
    pub fn obtain(&self) -> Result<(EncryptionKey, KeyOrigin), KeyError> {
        // Credentials stored means a key was made for them: find it or say it is gone.
        // (A process storing the first credential made its key before writing it, so a
        // store seen empty here can only meet that key below, under the lock.)
        if let Some(dir) = &self.store {
            let stored = crate::store::stored_providers(dir);
            if !stored.is_empty() {
                return self.existing_key_for(dir, stored);
            }
        }
        if let Some(key) = self.file.read()? {
            return Ok((key, KeyOrigin::File));
        }
        let Some(keyring) = &self.keyring else {
            return Ok((self.file.get_or_create()?, KeyOrigin::File));
        };
        match keyring.read() {
            Ok(Some(key)) => return Ok((key, KeyOrigin::Keyring)),
            Ok(None) => {}
            Err(e) if e.is_keyring_unavailable() => return self.fall_back_to_file(e),
            Err(e) => return Err(e),
        }

        let _lock = self.file.lock()?;
        // Another process may have made the key while we waited.
        if let Some(key) = self.file.read()? {
            return Ok((key, KeyOrigin::File));
        }
        match keyring.read() {
            Ok(Some(key)) => return Ok((key, KeyOrigin::Keyring)),
            Ok(None) => {}
            Err(e) if e.is_keyring_unavailable() => return self.fall_back_to_file(e),
            Err(e) => return Err(e),
        }
        let key = EncryptionKey::generate()?;
        match keyring.store(&key) {
            Ok(()) => {
                self.write_marker(keyring)?;
                Ok((key, KeyOrigin::Keyring))
            }
            Err(e) => {
                tracing::debug!(error = %e, "keyring refused the new key; using the key file");
                self.file.write(&key)?;
                Ok((
                    key,
                    KeyOrigin::FileBecauseKeyringUnavailable {
                        reason: e.to_string(),
                    },
                ))
            }
        }
    }

    /// The key if one exists, creating nothing (for `moat doctor`, which must not make a
    /// key just to look). `Ok(None)` when neither the file nor the keyring holds one, or
    /// when the keyring cannot be reached and no marker says the key was made there (then
    /// [`obtain`](Self::obtain) would make the key file).
    ///
    /// A guarded store that holds credentials without a key is [`KeyError::KeyMissing`],
    /// as [`obtain`](Self::obtain) would say.
    pub fn find(&self) -> Result<Option<(EncryptionKey, KeyOrigin)>, KeyError> {
        if let Some(dir) = &self.store {
            let stored = crate::store::stored_providers(dir);
            if !stored.is_empty() {
                return self.existing_key_for(dir, stored).map(Some);
            }
        }
        Ok(match self.lookup()? {
            Lookup::Found(key, origin) => Some((key, origin)),
            Lookup::Missing(_) => None,
        })
    }

    fn lookup(&self) -> Result<Lookup, KeyError> {
        if let Some(key) = self.file.read()? {
            return Ok(Lookup::Found(key, KeyOrigin::File));
        }
        let Some(keyring) = &self.keyring else {
            return Ok(Lookup::Missing(None));
        };
        match keyring.read() {
            Ok(Some(key)) => Ok(Lookup::Found(key, KeyOrigin::Keyring)),
            Ok(None) => Ok(Lookup::Missing(None)),
            Err(e) if e.is_keyring_unavailable() => {
                if self.marker_path().exists() {
                    Err(KeyError::KeyringUnreachable {
                        reason: e.to_string(),
                    })
                } else {
                    Ok(Lookup::Missing(Some(e.to_string())))
                }
            }
            Err(e) => Err(e),
        }
    }

    fn fall_back_to_file(&self, error: KeyError) -> Result<(EncryptionKey, KeyOrigin), KeyError> {
        if self.marker_path().exists() {
            return Err(KeyError::KeyringUnreachable {
                reason: error.to_string(),
            });
        }
        tracing::debug!(%error, "keyring unavailable; using the key file");
        let key = self.file.get_or_create()?;
        Ok((
            key,
            KeyOrigin::FileBecauseKeyringUnavailable {
                reason: error.to_string(),
            },
        ))
    }
}

impl KeySource for ChainKeySource {
    fn get_or_create(&self) -> Result<EncryptionKey, KeyError> {
        self.obtain().map(|(key, _)| key)
    }

    fn describe(&self) -> String {
        match &self.keyring {
            Some(keyring) => format!("{}, else {}", keyring.describe(), self.file.describe()),
            None => self.file.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A keyring entry in memory that can be told to fail, hang or drop writes.
    #[derive(Default)]
    struct FakeKeyring {
        value: Mutex<Option<String>>,
        behaviour: Mutex<Behaviour>,
        calls: AtomicUsize,
    }

    #[derive(Default, Clone, Copy, PartialEq)]
    enum Behaviour {
        #[default]
        Works,
        Unavailable,
        Hangs,
        ForgetsWrites,
    }

    impl FakeKeyring {
        fn with(behaviour: Behaviour) -> Arc<Self> {
            let fake = FakeKeyring::default();
            *fake.behaviour.lock().unwrap() = behaviour;
            Arc::new(fake)
        }

        fn behaviour(&self) -> Behaviour {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let behaviour = *self.behaviour.lock().unwrap();
            if behaviour == Behaviour::Hangs {
                std::thread::sleep(Duration::from_secs(5));
            }
            behaviour
        }
    }

    impl KeyringBackend for FakeKeyring {
        fn get(&self) -> Result<Option<Zeroizing<String>>, String> {
            match self.behaviour() {
                Behaviour::Unavailable => Err("no keyring is available".into()),
                _ => Ok(self.value.lock().unwrap().clone().map(Zeroizing::new)),
            }
        }

        fn set(&self, value: &str) -> Result<(), String> {
            match self.behaviour() {
                Behaviour::Unavailable => Err("no keyring is available".into()),
                Behaviour::ForgetsWrites => Ok(()),
                _ => {
                    *self.value.lock().unwrap() = Some(value.to_owned());
                    Ok(())
                }
            }
        }

        fn entry_name(&self) -> String {
            "`moat`/`encryption-key`".into()
        }
    }

    fn chain(dir: &Path, fake: &Arc<FakeKeyring>) -> ChainKeySource {
        let keyring = KeyringKeySource::new(
            Arc::clone(fake) as Arc<dyn KeyringBackend>,
            Duration::from_millis(200),
        );
        ChainKeySource::new(Some(keyring), FileKeySource::new(dir.join(KEY_FILE_NAME)))
    }

    fn mode(path: &Path) -> u32 {
        fs_err::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn memory_source_keeps_its_key() {
        let source = MemoryKeySource::new();
        let a = source.get_or_create().unwrap();
        let b = source.get_or_create().unwrap();
        assert!(a.same_as(&b));
        assert_eq!(format!("{a:?}"), "EncryptionKey([REDACTED])");
    }

    #[test]
    fn file_source_creates_a_private_key_once() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("moat");
        let source = FileKeySource::new(dir.join(KEY_FILE_NAME));
        let first = source.get_or_create().unwrap();
        let second = FileKeySource::new(dir.join(KEY_FILE_NAME))
            .get_or_create()
            .unwrap();
        assert!(first.same_as(&second));
        assert_eq!(mode(&dir.join(KEY_FILE_NAME)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let text = fs_err::read_to_string(dir.join(KEY_FILE_NAME)).unwrap();
        assert_eq!(text.trim().len(), 44, "base64 of 32 bytes");
        // Only the key and its lock: no temp file left behind.
        let mut names: Vec<_> = fs_err::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["encryption.key", "encryption.key.lock"]);
    }

    #[test]
    fn file_source_refuses_a_key_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let source = FileKeySource::new(path.clone());
        source.get_or_create().unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = source.get_or_create().unwrap_err();
        assert!(
            matches!(err, KeyError::KeyFilePermissions { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.hint().unwrap().contains("chmod 600"));
    }

    #[test]
    fn file_source_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        moat_home::write_private_atomic(&path, b"not a key\n").unwrap();
        let err = FileKeySource::new(path).get_or_create().unwrap_err();
        assert!(matches!(err, KeyError::KeyFileInvalid { .. }), "{err:?}");
    }

    #[test]
    fn concurrent_file_key_creation_agrees_on_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(KEY_FILE_NAME);
            let barrier = Arc::new(Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        // Separate sources, as separate processes would have.
                        let source = FileKeySource::new(path);
                        barrier.wait();
                        source.get_or_create().unwrap()
                    })
                })
                .collect();
            let keys: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(keys.iter().all(|k| k.same_as(&keys[0])));
            let on_disk = FileKeySource::new(path).read().unwrap().unwrap();
            assert!(on_disk.same_as(&keys[0]));
        }
    }

    #[test]
    fn chain_creates_the_key_in_a_working_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Works);
        let (key, origin) = chain(dir.path(), &fake).obtain().unwrap();
        assert_eq!(origin, KeyOrigin::Keyring);
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
        assert!(dir.path().join("encryption.key.in-keyring").exists());
        let (again, origin) = chain(dir.path(), &fake).obtain().unwrap();
        assert_eq!(origin, KeyOrigin::Keyring);
        assert!(again.same_as(&key));
    }

    #[test]
    fn find_creates_nothing_and_sees_what_obtain_made() {
        let dir = tempfile::tempdir().unwrap();
        for behaviour in [Behaviour::Works, Behaviour::Unavailable] {
            let fake = FakeKeyring::with(behaviour);
            assert!(chain(dir.path(), &fake).find().unwrap().is_none());
            assert!(fake.value.lock().unwrap().is_none());
        }
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);

        let fake = FakeKeyring::with(Behaviour::Works);
        let (key, _) = chain(dir.path(), &fake).obtain().unwrap();
        let (found, origin) = chain(dir.path(), &fake).find().unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::Keyring);
        assert!(found.same_as(&key));

        // The marker says the key is in the keyring: an unreachable keyring is an error.
        *fake.behaviour.lock().unwrap() = Behaviour::Unavailable;
        let err = chain(dir.path(), &fake).find().unwrap_err();
        assert!(
            matches!(err, KeyError::KeyringUnreachable { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn find_reads_the_key_file_without_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let file = FileKeySource::new(dir.path().join(KEY_FILE_NAME));
        let only_file = ChainKeySource::new(None, file.clone());
        assert!(only_file.find().unwrap().is_none());
        let key = file.get_or_create().unwrap();
        let (found, origin) = only_file.find().unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::File);
        assert!(found.same_as(&key));
    }

    #[test]
    fn chain_falls_back_to_the_file_without_a_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Unavailable);
        let (key, origin) = chain(dir.path(), &fake).obtain().unwrap();
        assert!(
            matches!(&origin, KeyOrigin::FileBecauseKeyringUnavailable { reason } if reason.contains("no keyring")),
            "{origin:?}"
        );
        // Once the file exists it is the key, even when the keyring starts working.
        *fake.behaviour.lock().unwrap() = Behaviour::Works;
        let (again, origin) = chain(dir.path(), &fake).obtain().unwrap();
        assert_eq!(origin, KeyOrigin::File);
        assert!(again.same_as(&key));
        assert!(fake.value.lock().unwrap().is_none());
    }

    #[test]
    fn chain_gives_up_on_a_hanging_keyring_within_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Hangs);
        let started = std::time::Instant::now();
        let (_, origin) = chain(dir.path(), &fake).obtain().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&origin, KeyOrigin::FileBecauseKeyringUnavailable { reason } if reason.contains("did not answer")),
            "{origin:?}"
        );
        assert!(dir.path().join(KEY_FILE_NAME).exists());
    }

    #[test]
    fn chain_uses_the_file_when_the_keyring_forgets_writes() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::ForgetsWrites);
        let (key, origin) = chain(dir.path(), &fake).obtain().unwrap();
        assert!(matches!(
            origin,
            KeyOrigin::FileBecauseKeyringUnavailable { .. }
        ));
        assert!(!dir.path().join("encryption.key.in-keyring").exists());
        let on_disk = FileKeySource::new(dir.path().join(KEY_FILE_NAME))
            .read()
            .unwrap()
            .unwrap();
        assert!(on_disk.same_as(&key));
    }

    #[test]
    fn chain_refuses_to_replace_a_key_kept_in_an_unreachable_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Works);
        chain(dir.path(), &fake).obtain().unwrap();
        *fake.behaviour.lock().unwrap() = Behaviour::Unavailable;
        let err = chain(dir.path(), &fake).obtain().unwrap_err();
        assert!(
            matches!(err, KeyError::KeyringUnreachable { .. }),
            "{err:?}"
        );
        assert!(err.hint().unwrap().contains("unlock"));
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
    }

    /// A chain guarding `dir/credentials`, which holds a `github` credential file.
    fn guarding_a_stored_credential(dir: &Path, fake: &Arc<FakeKeyring>) -> ChainKeySource {
        let store = dir.join("credentials");
        fs_err::create_dir_all(&store).unwrap();
        fs_err::write(store.join("github.enc"), b"sealed").unwrap();
        chain(dir, fake).with_store(store)
    }

    #[test]
    fn a_keyring_entry_gone_with_credentials_stored_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Works);
        chain(dir.path(), &fake).obtain().unwrap();
        *fake.value.lock().unwrap() = None;
        let err = guarding_a_stored_credential(dir.path(), &fake)
            .obtain()
            .unwrap_err();
        assert!(matches!(err, KeyError::KeyMissing(_)), "{err:?}");
        assert!(matches!(
            guarding_a_stored_credential(dir.path(), &fake).find(),
            Err(KeyError::KeyMissing(_))
        ));
        assert!(fake.value.lock().unwrap().is_none(), "no new key stored");
        assert!(!dir.path().join(KEY_FILE_NAME).exists(), "nor a key file");
        assert!(
            err.to_string().contains("the `github` credential in `"),
            "{err}"
        );
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("or the OS keyring entry `moat`/`encryption-key` from a backup"),
            "{hint}"
        );
        assert!(hint.contains("`moat revoke github`"), "{hint}");
    }

    #[test]
    fn an_unreachable_keyring_with_credentials_stored_is_not_met_with_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Unavailable);
        let err = guarding_a_stored_credential(dir.path(), &fake)
            .obtain()
            .unwrap_err();
        assert!(
            matches!(&err, KeyError::KeyMissing(m) if m.keyring_problem.as_deref().is_some_and(|p| p.contains("no keyring"))),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("the OS keyring could not be asked")
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("make the OS keyring reachable")
        );
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
    }

    #[test]
    fn an_existing_key_opens_a_guarded_store() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Works);
        let (key, _) = chain(dir.path(), &fake).obtain().unwrap();
        let (again, origin) = guarding_a_stored_credential(dir.path(), &fake)
            .obtain()
            .unwrap();
        assert_eq!(origin, KeyOrigin::Keyring);
        assert!(again.same_as(&key));
    }

    #[test]
    fn a_key_file_that_is_a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let err = FileKeySource::new(path).read().unwrap_err();
        assert!(matches!(err, KeyError::Unreadable(_)), "{err:?}");
        assert!(err.hint().is_some());
    }

    #[test]
    fn chain_refuses_a_garbage_keyring_entry() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Works);
        *fake.value.lock().unwrap() = Some("garbage".into());
        let err = chain(dir.path(), &fake).obtain().unwrap_err();
        assert!(
            matches!(err, KeyError::KeyringEntryInvalid { .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("garbage"));
    }

    #[test]
    fn file_only_mode_never_calls_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeKeyring::with(Behaviour::Works);
        let source = ChainKeySource::new(None, FileKeySource::new(dir.path().join(KEY_FILE_NAME)));
        let (_, origin) = source.obtain().unwrap();
        assert_eq!(origin, KeyOrigin::File);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
        let home = MoatHome::at(dir.path().to_owned());
        let described = ChainKeySource::for_home(&home, KeyringMode::File).describe();
        assert!(described.ends_with("encryption.key`"), "{described}");
    }

    #[test]
    fn concurrent_chain_creation_agrees_on_one_key() {
        for behaviour in [Behaviour::Works, Behaviour::Unavailable] {
            let dir = tempfile::tempdir().unwrap();
            let fake = FakeKeyring::with(behaviour);
            let barrier = Arc::new(Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let source = chain(dir.path(), &fake);
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        source.get_or_create().unwrap()
                    })
                })
                .collect();
            let keys: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(keys.iter().all(|k| k.same_as(&keys[0])));
        }
    }
}
