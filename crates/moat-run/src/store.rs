//! Run records on disk: `$MOAT_HOME/runs/<id>/` with `metadata.json`, `logs.jsonl` and
//! its position `logs.pos`, the image's `Dockerfile`, a lock file that serialises updates
//! between the CLI and the run's supervisor, and one held by whoever copies the log.

use std::path::{Path, PathBuf};

use moat_home::{MoatHome, RunId};

use crate::{RunError, RunRecord};

const METADATA: &str = "metadata.json";
const LOGS: &str = "logs.jsonl";
const LOGS_POSITION: &str = "logs.pos";
const LOGS_LOCK: &str = ".logs.lock";
const DOCKERFILE: &str = "Dockerfile";
const LOCK: &str = ".lock";
const STOP_REQUESTED: &str = "stop-requested";
const SUPERVISOR_LOG: &str = "supervisor.log";
const AUDIT: &str = "audit.jsonl";
const TERMINAL_SIZES: &str = "terminal.jsonl";

/// Reads and writes run records under one `MOAT_HOME`.
#[derive(Debug, Clone)]
pub struct RunStore {
    home: MoatHome,
}

impl RunStore {
    pub fn new(home: MoatHome) -> Self {
        RunStore { home }
    }

    pub fn home(&self) -> &MoatHome {
        &self.home
    }

    pub fn run_dir(&self, id: &RunId) -> PathBuf {
        self.home.run_dir(id)
    }

    pub fn logs_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(LOGS)
    }

    /// How much of Docker's log `logs.jsonl` holds (see `logs::writer`).
    pub fn logs_position_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(LOGS_POSITION)
    }

    /// Locked by whoever copies the run's log (see `logs::copy`).
    pub fn logs_lock_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(LOGS_LOCK)
    }

    /// The sizes an interactive run's terminal had, and when (see `logs::sizes`).
    pub fn terminal_sizes_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(TERMINAL_SIZES)
    }

    pub fn dockerfile_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(DOCKERFILE)
    }

    /// The run's tamper-evident audit log (`moat-audit`).
    pub fn audit_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(AUDIT)
    }

    pub fn supervisor_log_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(SUPERVISOR_LOG)
    }

    fn metadata_path(&self, id: &RunId) -> PathBuf {
        self.run_dir(id).join(METADATA)
    }

    /// Make the run's directory (0700) and write its first record. Fails if it exists.
    /// All or nothing: a directory that could not be given its record (a full disk) is
    /// removed again, so no half-made run is left for every later command to trip on.
    pub fn create(&self, record: &RunRecord) -> Result<(), RunError> {
        let runs = self.home.runs_dir();
        MoatHome::create_private_dir(&runs).map_err(RunError::Home)?;
        let dir = self.run_dir(&record.id);
        fs_err::create_dir(&dir).map_err(|e| RunError::io(&dir, e))?;
        let filled = (|| {
            set_private(&dir)?;
            // logs.jsonl exists from the start, so followers and audits find it even when
            // the command prints nothing.
            let logs = self.logs_path(&record.id);
            fs_err::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&logs)
                .map_err(RunError::Io)?;
            self.write(record)
        })();
        if filled.is_err() {
            let _ = fs_err::remove_dir_all(&dir);
        }
        filled
    }

    /// Write the Dockerfile the run's image was built from, for the record.
    pub fn save_dockerfile(&self, id: &RunId, dockerfile: &str) -> Result<(), RunError> {
        moat_home::write_atomic(&self.dockerfile_path(id), dockerfile.as_bytes())
            .map_err(|e| RunError::io(&self.dockerfile_path(id), e))
    }

    pub fn load(&self, id: &RunId) -> Result<RunRecord, RunError> {
        let path = self.metadata_path(id);
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RunError::UnknownRun(id.to_string()));
            }
            Err(e) => return Err(RunError::Io(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RunError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Every run with a readable record, newest first. Unreadable directories are skipped
    /// (and reported through `tracing`), so one damaged run does not hide the others.
    pub fn list(&self) -> Result<Vec<RunRecord>, RunError> {
        let runs_dir = self.home.runs_dir();
        let entries = match fs_err::read_dir(&runs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RunError::io(&runs_dir, e)),
        };
        let mut records = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RunError::io(&runs_dir, e))?;
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RunId>().ok())
            else {
                continue;
            };
            match self.load(&id) {
                Ok(record) => records.push(record),
                Err(e) => tracing::debug!(%id, error = %e, "skipping unreadable run"),
            }
        }
        records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(records)
    }

    /// The run directories whose record cannot be read (damaged, or missing after a
    /// crash), so `moat list` can show them and `moat destroy --force` remove them.
    pub fn damaged(&self) -> Result<Vec<Damaged>, RunError> {
        let runs_dir = self.home.runs_dir();
        let entries = match fs_err::read_dir(&runs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RunError::io(&runs_dir, e)),
        };
        let mut damaged = Vec::new();
        for entry in entries.flatten() {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RunId>().ok())
            else {
                continue;
            };
            if let Err(e) = self.load(&id) {
                damaged.push(Damaged {
                    id,
                    reason: e.to_string(),
                });
            }
        }
        damaged.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(damaged)
    }

    /// Read, change and write a record while holding the run's lock, so the CLI and the
    /// supervisor never overwrite each other's changes.
    pub fn update<F>(&self, id: &RunId, change: F) -> Result<RunRecord, RunError>
    where
        F: FnOnce(&mut RunRecord),
    {
        let _lock = self.lock(id)?;
        let mut record = self.load(id)?;
        change(&mut record);
        self.write(&record)?;
        Ok(record)
    }

    fn write(&self, record: &RunRecord) -> Result<(), RunError> {
        let path = self.metadata_path(&record.id);
        let mut bytes = serde_json::to_vec_pretty(record).expect("a run record serialises");
        bytes.push(b'\n');
        moat_home::write_private_atomic(&path, &bytes).map_err(|e| RunError::io(&path, e))
    }

    fn lock(&self, id: &RunId) -> Result<fs_err::File, RunError> {
        let path = self.run_dir(id).join(LOCK);
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RunError::UnknownRun(id.to_string()),
                _ => RunError::io(&path, e),
            })?;
        file.lock().map_err(|e| RunError::io(&path, e))?;
        Ok(file)
    }

    /// Leave a note that the run is being stopped on purpose, so its end is `stopped`.
    pub fn request_stop(&self, id: &RunId) -> Result<(), RunError> {
        let path = self.run_dir(id).join(STOP_REQUESTED);
        moat_home::write_atomic(&path, b"").map_err(|e| RunError::io(&path, e))
    }

    pub fn stop_requested(&self, id: &RunId) -> bool {
        self.run_dir(id).join(STOP_REQUESTED).exists()
    }

    /// Remove the run's directory and everything in it.
    pub fn delete(&self, id: &RunId) -> Result<(), RunError> {
        let dir = self.run_dir(id);
        match fs_err::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RunError::io(&dir, e)),
        }
    }
}

/// A run directory without a readable record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damaged {
    pub id: RunId,
    pub reason: String,
}

/// An exclusive lock on a file under MOAT_HOME, shared by every moat process on the
/// machine; released when dropped (or when its process dies: the kernel drops `flock`s).
#[derive(Debug)]
pub struct FileLock {
    _file: fs_err::File,
}

impl RunStore {
    /// Hold the lock of run name `name` (checked first: it becomes a file name) while a
    /// run of that name is prepared, so two `moat run --name NAME` at once cannot both
    /// start one: the second waits, then finds the name taken.
    pub async fn lock_name(&self, name: &str) -> Result<FileLock, RunError> {
        crate::names::validate_name(name).map_err(RunError::InvalidName)?;
        let path = self.home.locks_dir().join(format!("name-{name}.lock"));
        lock_file(path, || {}).await
    }

    /// Hold the build lock of image `tag`, so concurrent runs that need the same image
    /// build it once: the others wait (after `on_wait`), then find it cached.
    pub async fn lock_build(
        &self,
        tag: &str,
        on_wait: impl FnOnce(),
    ) -> Result<FileLock, RunError> {
        let name: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = self.home.locks_dir().join(format!("build-{name}.lock"));
        lock_file(path, on_wait).await
    }
}

/// Take an exclusive `flock` on `path` (made if missing), waiting for another holder off
/// the async threads.
async fn lock_file(path: PathBuf, on_wait: impl FnOnce()) -> Result<FileLock, RunError> {
    let dir = path.parent().expect("a lock file has a directory");
    MoatHome::create_private_dir(dir).map_err(RunError::Home)?;
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RunError::io(&path, e))?;
    match file.file().try_lock() {
        Ok(()) => return Ok(FileLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => on_wait(),
        Err(std::fs::TryLockError::Error(e)) => return Err(RunError::io(&path, e)),
    }
    let file = tokio::task::spawn_blocking(move || file.file().lock().map(|()| file))
        .await
        .map_err(|e| RunError::Io(std::io::Error::other(e)))?
        .map_err(|e| RunError::io(&path, e))?;
    Ok(FileLock { _file: file })
}

fn set_private(dir: &Path) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| RunError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunState;
    use crate::test_support::record;

    #[test]
    fn create_update_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(MoatHome::at(dir.path().to_owned()));
        let a = record("run_aaaaaaaaaaaa", "a", 100);
        let b = record("run_bbbbbbbbbbbb", "b", 200);
        store.create(&a).unwrap();
        store.create(&b).unwrap();
        assert!(store.create(&a).is_err(), "a run directory is never reused");
        let updated = store
            .update(&a.id, |r| {
                r.state = RunState::Exited;
                r.exit_code = Some(3);
            })
            .unwrap();
        assert_eq!(updated.state_label(), "exited (3)");
        let names: Vec<_> = store.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(store.logs_path(&a.id).exists());
        store.delete(&a.id).unwrap();
        assert!(matches!(store.load(&a.id), Err(RunError::UnknownRun(_))));
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_record_does_not_hide_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(MoatHome::at(dir.path().to_owned()));
        let a = record("run_aaaaaaaaaaaa", "a", 100);
        let b = record("run_bbbbbbbbbbbb", "b", 200);
        store.create(&a).unwrap();
        store.create(&b).unwrap();
        fs_err::write(store.metadata_path(&a.id), b"{ not json").unwrap();
        let names: Vec<_> = store.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["b"]);
        assert!(matches!(store.load(&a.id), Err(RunError::Corrupt { .. })));
    }
}
