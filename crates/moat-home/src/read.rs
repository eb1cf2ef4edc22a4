//! Reading a file that someone else may have chosen — a workspace's `moat.yaml`, a path in
//! an environment variable or a config file, a file in the user's home — without letting
//! it hang moat or fill its memory.
//!
//! A path can name a FIFO (an open that waits for a writer, a read that never ends), a
//! device (`/dev/zero` never ends), a directory or a file of any size. [`read_bounded`]
//! reads only a regular file, at most its kind's limit, and never waits: the type is
//! checked before the open (so no device is even opened), the open is non-blocking (so
//! a FIFO swapped in between cannot block it), the opened file is checked again with
//! `fstat`, and at most limit + 1 bytes are read (so a file that grows after the check is
//! still caught). Every refusal names the file, says what is wrong and how to fix it.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// One mebibyte, the unit most limits are given in.
pub const MIB: u64 = 1024 * 1024;

/// What a file is to moat: its name in messages, how many bytes of it moat reads, and
/// whether a symbolic link in its place is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// What the file is, for messages: "workspace file", "CA certificate file".
    pub what: &'static str,
    /// The largest file moat reads; a larger one is refused, not cut short.
    pub max_bytes: u64,
    /// A user's own files may be links (into a dotfiles repository, `/etc/ssl/certs/…`);
    /// a workspace file may not, since where a link points can change out of sight of
    /// whoever approved the file.
    pub follow_links: bool,
}

impl FileKind {
    pub const fn new(what: &'static str, max_bytes: u64, follow_links: bool) -> Self {
        FileKind {
            what,
            max_bytes,
            follow_links,
        }
    }

    // Every file moat reads that a workspace or a user can point at, in one list so the
    // limits are seen (and documented, in the README) together. Each is far above what
    // the file holds in real use and far below what would hurt.

    /// `moat.yaml` / `agent.yaml`: a hostile repository's file. Never a link.
    pub const WORKSPACE_FILE: FileKind = FileKind::new("workspace file", MIB, false);
    /// `$MOAT_HOME/config.yaml`.
    pub const GLOBAL_CONFIG: FileKind = FileKind::new("global configuration file", MIB, true);
    /// `$MOAT_HOME/providers/*.yaml`.
    pub const PROVIDER_FILE: FileKind = FileKind::new("provider file", MIB, true);
    /// `MOAT_EXTRA_CA_CERTS` / `extra_ca_certs`: a PEM bundle. A whole system bundle is
    /// about 200 KiB.
    pub const CA_CERTIFICATES: FileKind = FileKind::new("CA certificate file", 4 * MIB, true);
    /// `$MOAT_HOME/encryption.key`: 45 bytes of base64.
    pub const ENCRYPTION_KEY: FileKind = FileKind::new("encryption key file", 4 * 1024, true);
    /// `$MOAT_HOME/credentials/<provider>.enc`: one encrypted token and its metadata.
    pub const CREDENTIAL: FileKind = FileKind::new("credential file", 256 * 1024, true);
    /// `~/.claude.json`: Claude Code's state, which grows with the projects it has seen.
    pub const CLAUDE_JSON: FileKind = FileKind::new("Claude Code state file", 16 * MIB, true);
    /// `~/.claude/settings.json`, `~/.claude/plugins/*.json`, a workspace's
    /// `.claude/settings.json`: Claude Code's settings and plugin records.
    pub const CLAUDE_SETTINGS: FileKind = FileKind::new("Claude Code settings file", 4 * MIB, true);
    /// A workspace's `.claude/settings.json`: the repository's (or the agent's, which can
    /// write the workspace), so a link in its place is not followed out of it.
    pub const WORKSPACE_CLAUDE_SETTINGS: FileKind =
        FileKind::new("workspace Claude Code settings file", 4 * MIB, false);
    /// `~/.claude/.credentials.json`: Claude Code's login.
    pub const CLAUDE_CREDENTIALS: FileKind =
        FileKind::new("Claude Code credentials file", 256 * 1024, true);
    /// `$MOAT_HOME/trust/*.json`: a workspace file's text (at most [`Self::WORKSPACE_FILE`])
    /// as JSON, where escaping can make it up to six times longer.
    pub const TRUST_RECORD: FileKind = FileKind::new("trust record", 8 * MIB, false);
}

/// Why a file was not read. Each variant names the file and what it is to moat.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the {what} `{}` does not exist", path.display())]
    NotFound { path: PathBuf, what: &'static str },

    #[error("the {what} `{}` is {found}, not a regular file", path.display())]
    NotAFile {
        path: PathBuf,
        what: &'static str,
        /// "a directory", "a named pipe (FIFO)", "a character device", ...
        found: &'static str,
    },

    #[error("the {what} `{}` is a symbolic link", path.display())]
    Link { path: PathBuf, what: &'static str },

    #[error(
        "the {what} `{}` is too large: {}, where moat reads at most {}",
        path.display(),
        size_text(*size, *max_bytes),
        human_bytes(*max_bytes)
    )]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        max_bytes: u64,
        /// The size `fstat` reported, when it did (a file that grew while being read has
        /// none).
        size: Option<u64>,
    },

    #[error("cannot read the {what} `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

impl ReadError {
    /// The file is simply not there (callers often treat that as "use the defaults").
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound { .. })
    }

    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path, .. }
            | ReadError::NotAFile { path, .. }
            | ReadError::Link { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::Io { path, .. } => path,
        }
    }

    /// What is wrong, without the path: for errors that name the file themselves
    /// (`moat.yaml: the file is a named pipe (FIFO), not a regular file`).
    pub fn problem(&self) -> String {
        match self {
            ReadError::NotFound { .. } => "the file does not exist".into(),
            ReadError::NotAFile { found, .. } => {
                format!("the file is {found}, not a regular file")
            }
            ReadError::Link { .. } => "the file is a symbolic link".into(),
            ReadError::TooLarge {
                max_bytes, size, ..
            } => format!(
                "the file is too large: {}, where moat reads at most {}",
                size_text(*size, *max_bytes),
                human_bytes(*max_bytes)
            ),
            ReadError::Io { source, .. } => format!("cannot read the file: {source}"),
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReadError::NotFound { path, .. } => Some(format!(
                "check the path `{}`, or create the file",
                path.display()
            )),
            ReadError::NotAFile {
                found: "a directory",
                what,
                ..
            } => Some(format!("give the path of the {what}, not of a directory")),
            ReadError::NotAFile { what, .. } => Some(format!(
                "moat reads a {what} only from a regular file, since a pipe or a device may \
                 never end or never answer: put a regular file with the content there"
            )),
            ReadError::Link { path, .. } => Some(format!(
                "moat reads only a regular file here: replace the link `{}` with a copy of \
                 the file it points to",
                path.display()
            )),
            ReadError::TooLarge {
                path,
                what,
                max_bytes,
                ..
            } => Some(format!(
                "a {what} is at most {}: check that `{}` is the file you meant",
                human_bytes(*max_bytes),
                path.display()
            )),
            ReadError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Some("check the file's permissions: moat's user must be able to read it".into())
            }
            ReadError::Io { .. } => None,
        }
    }
}

/// `1.5 MiB` for a size `fstat` gave, `more than 1 MiB` for a file that grew.
fn size_text(size: Option<u64>, max_bytes: u64) -> String {
    match size {
        Some(size) => human_bytes(size),
        None => format!("more than {}", human_bytes(max_bytes)),
    }
}

/// Bytes the way people read them: `512 bytes`, `4 KiB`, `1.5 MiB`, `7.7 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What a non-regular file is, in words.
fn kind_of(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("a directory")
    } else if file_type.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_symlink() {
        Some("a symbolic link")
    } else {
        Some("not a file")
    }
}

/// A regular file, opened and checked, not read yet: so a caller can look at its
/// metadata (the key file's mode) before taking its bytes.
#[derive(Debug)]
pub struct BoundedFile {
    file: std::fs::File,
    metadata: std::fs::Metadata,
    path: PathBuf,
    kind: FileKind,
}

impl BoundedFile {
    /// Open `path` as a `kind` file: it must be a regular file no larger than the kind's
    /// limit (and not a symbolic link, unless the kind follows links).
    // std rather than fs-err: every error here names the path itself, once.
    #[allow(clippy::disallowed_methods)]
    pub fn open(path: &Path, kind: FileKind) -> Result<Self, ReadError> {
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound {
                path: path.to_owned(),
                what: kind.what,
            },
            _ => ReadError::Io {
                path: path.to_owned(),
                what: kind.what,
                source,
            },
        };
        let not_a_file = |found| ReadError::NotAFile {
            path: path.to_owned(),
            what: kind.what,
            found,
        };
        // Looked at before the open, so a device or FIFO is never opened at all.
        let before = if kind.follow_links {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }
        .map_err(io)?;
        if !kind.follow_links && before.file_type().is_symlink() {
            return Err(ReadError::Link {
                path: path.to_owned(),
                what: kind.what,
            });
        }
        if let Some(found) = kind_of(before.file_type()) {
            return Err(not_a_file(found));
        }
        // Non-blocking, so a FIFO put in its place since cannot make the open wait for a
        // writer; no controlling terminal from a tty put there either; and no link
        // followed where the kind says so.
        let mut flags = OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        if !kind.follow_links {
            flags |= OFlag::O_NOFOLLOW;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(path)
            .map_err(|e| {
                // O_NOFOLLOW on a link that appeared since the check.
                if e.raw_os_error() == Some(nix::libc::ELOOP) && !kind.follow_links {
                    ReadError::Link {
                        path: path.to_owned(),
                        what: kind.what,
                    }
                } else {
                    io(e)
                }
            })?;
        // What was opened is what counts: the path may have changed since.
        let metadata = file.metadata().map_err(io)?;
        if let Some(found) = kind_of(metadata.file_type()) {
            return Err(not_a_file(found));
        }
        if metadata.len() > kind.max_bytes {
            return Err(ReadError::TooLarge {
                path: path.to_owned(),
                what: kind.what,
                max_bytes: kind.max_bytes,
                size: Some(metadata.len()),
            });
        }
        Ok(BoundedFile {
            file,
            metadata,
            path: path.to_owned(),
            kind,
        })
    }

    /// The metadata of the opened file.
    pub fn metadata(&self) -> &std::fs::Metadata {
        &self.metadata
    }

    /// The whole file, at most the kind's limit.
    pub fn read(self) -> Result<Vec<u8>, ReadError> {
        let BoundedFile {
            file,
            metadata,
            path,
            kind,
        } = self;
        // Sized for what fstat said, so a secret read here is not copied around by the
        // vector growing (only a file that grew since would make it grow).
        let expected = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
        let mut bytes = Vec::with_capacity(expected.saturating_add(1));
        file.take(kind.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| ReadError::Io {
                path: path.clone(),
                what: kind.what,
                source,
            })?;
        if bytes.len() as u64 > kind.max_bytes {
            return Err(ReadError::TooLarge {
                path,
                what: kind.what,
                max_bytes: kind.max_bytes,
                size: None,
            });
        }
        Ok(bytes)
    }
}

/// Read all of `path` as a `kind` file: a regular file of at most the kind's limit, read
/// without ever waiting on a pipe or a device.
pub fn read_bounded(path: &Path, kind: FileKind) -> Result<Vec<u8>, ReadError> {
    BoundedFile::open(path, kind)?.read()
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at most {})", self.what, human_bytes(self.max_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::time::{Duration, Instant};

    const SMALL: FileKind = FileKind::new("test file", 16, true);
    const NO_LINKS: FileKind = FileKind::new("workspace file", 16, false);

    #[test]
    fn a_regular_file_within_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs_err::write(&path, b"exactly 16 bytes").unwrap();
        assert_eq!(read_bounded(&path, SMALL).unwrap(), b"exactly 16 bytes");
        fs_err::write(&path, b"").unwrap();
        assert_eq!(read_bounded(&path, SMALL).unwrap(), b"");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        fs_err::write(&path, vec![b'a'; 3 * 1024]).unwrap();
        let err = read_bounded(&path, SMALL).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::TooLarge {
                    size: Some(3072),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "the test file `{}` is too large: 3 KiB, where moat reads at most 16 bytes",
                path.display()
            )
        );
        assert_eq!(
            err.hint().unwrap(),
            format!(
                "a test file is at most 16 bytes: check that `{}` is the file you meant",
                path.display()
            )
        );
    }

    #[test]
    fn a_fifo_is_refused_at_once_even_with_no_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.yaml");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        let err = read_bounded(&path, SMALL).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(
                err,
                ReadError::NotAFile {
                    found: "a named pipe (FIFO)",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.problem(),
            "the file is a named pipe (FIFO), not a regular file"
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("put a regular file with the content there")
        );
    }

    #[test]
    fn devices_directories_and_sockets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        for (path, found) in [
            (PathBuf::from("/dev/zero"), "a character device"),
            (PathBuf::from("/dev/null"), "a character device"),
            (dir.path().to_owned(), "a directory"),
            (socket, "a socket"),
        ] {
            let err = read_bounded(&path, SMALL).unwrap_err();
            assert!(
                matches!(&err, ReadError::NotAFile { found: f, .. } if *f == found),
                "{}: {err:?}",
                path.display()
            );
        }
    }

    #[test]
    fn a_link_is_followed_or_refused_as_the_kind_says() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs_err::write(&target, b"hello").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_bounded(&link, SMALL).unwrap(), b"hello");
        let err = read_bounded(&link, NO_LINKS).unwrap_err();
        assert!(matches!(err, ReadError::Link { .. }), "{err:?}");
        assert!(err.hint().unwrap().contains("replace the link"));

        // A link to a device is judged by what it points to.
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_bounded(&zero, SMALL).unwrap_err();
        assert!(matches!(err, ReadError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn missing_and_unreadable_files_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(&dir.path().join("nope"), SMALL).unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!(err.path(), dir.path().join("nope"));
        let err = read_bounded(&dir.path().join("nope/deeper"), SMALL).unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    #[test]
    fn metadata_is_the_opened_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        crate::write_private_atomic(&path, b"k").unwrap();
        let file = BoundedFile::open(&path, SMALL).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(file.metadata().permissions().mode() & 0o777, 0o600);
        assert_eq!(file.read().unwrap(), b"k");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(MIB + MIB / 2), "1.5 MiB");
        assert_eq!(human_bytes(50 * MIB), "50 MiB");
        assert_eq!(human_bytes(7_700_000_000), "7.2 GiB");
        assert_eq!(SMALL.to_string(), "test file (at most 16 bytes)");
    }
}
