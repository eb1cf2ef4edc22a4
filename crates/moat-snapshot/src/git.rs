//! Running git against a snapshot store: its own object store (`GIT_DIR`), the workspace as
//! the work tree, and an index of the store's own (the stat cache that makes an unchanged
//! tree cost one directory walk).
//!
//! git never reads the user's or the workspace's configuration here: no system or global
//! config, and the workspace's `.git` is not the git directory, so a `core.fsmonitor` or a
//! hook planted in the workspace runs nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::SnapshotError;

/// git, pointed at one store, work tree and index.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    pub git_dir: PathBuf,
    pub work_tree: PathBuf,
    pub index: PathBuf,
}

impl Git {
    /// A `git` command with the store's environment and moat's fixed settings.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("GIT_DIR", &self.git_dir)
            .env("GIT_WORK_TREE", &self.work_tree)
            .env("GIT_INDEX_FILE", &self.index)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "moat")
            .env("GIT_AUTHOR_EMAIL", "moat@localhost")
            .env("GIT_COMMITTER_NAME", "moat")
            .env("GIT_COMMITTER_EMAIL", "moat@localhost")
            .env("LC_ALL", "C")
            .args([
                "-c",
                "core.excludesFile=/dev/null",
                "-c",
                "core.autocrlf=false",
                "-c",
                "core.symlinks=true",
                "-c",
                "core.fileMode=true",
                "-c",
                "core.quotePath=false",
                "-c",
                "core.fsmonitor=false",
                "-c",
                "core.untrackedCache=false",
                "-c",
                "gc.auto=0",
                "-c",
                "advice.addEmbeddedRepo=false",
            ])
            .current_dir(&self.work_tree)
            .stdin(Stdio::null());
        cmd
    }

    /// Run git with `args`; its stdout, or an error with what it said.
    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>, SnapshotError> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(SnapshotError::git_missing)?;
        if !out.status.success() {
            return Err(SnapshotError::Git {
                command: args.first().copied().unwrap_or("git").to_owned(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out.stdout)
    }

    /// [`Git::run`] with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Result<Vec<u8>, SnapshotError> {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(SnapshotError::git_missing)?;
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output()?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(SnapshotError::Git {
                command: args.first().copied().unwrap_or("git").to_owned(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out.stdout)
    }

    /// One `git cat-file --batch` for many blobs: no process per file.
    pub fn blobs(&self) -> Result<BlobReader, SnapshotError> {
        let mut child = self
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(SnapshotError::git_missing)?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(BlobReader {
            child,
            stdin,
            stdout,
        })
    }
}

/// Streams blobs out of the store.
pub(crate) struct BlobReader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl BlobReader {
    /// Copy blob `sha` into `out`, never holding it whole in memory.
    pub fn copy_to(&mut self, sha: &str, out: &mut dyn Write) -> Result<u64, SnapshotError> {
        writeln!(self.stdin, "{sha}")?;
        self.stdin.flush()?;
        let mut header = String::new();
        self.stdout.read_line(&mut header)?;
        let mut parts = header.split_whitespace();
        let (_, kind, size) = (parts.next(), parts.next(), parts.next());
        let size: u64 = match (kind, size.and_then(|s| s.parse().ok())) {
            (Some("blob"), Some(size)) => size,
            _ => {
                return Err(SnapshotError::Damaged(format!(
                    "the store has no blob {sha} ({})",
                    header.trim()
                )));
            }
        };
        let copied = std::io::copy(&mut (&mut self.stdout).take(size), out)?;
        let mut newline = [0u8; 1];
        self.stdout.read_exact(&mut newline)?;
        Ok(copied)
    }

    /// Blob `sha` as bytes (symlink targets: small).
    pub fn read(&mut self, sha: &str) -> Result<Vec<u8>, SnapshotError> {
        let mut bytes = Vec::new();
        self.copy_to(sha, &mut bytes)?;
        Ok(bytes)
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One entry of `git diff-tree -r -z --raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChange {
    pub old_mode: String,
    pub new_mode: String,
    pub new_sha: String,
    /// `A`, `D`, `M`, `T`.
    pub status: char,
    pub path: String,
}

/// Parse `git diff-tree -r -z --no-renames` (raw) output.
pub(crate) fn parse_raw(bytes: &[u8]) -> Vec<RawChange> {
    let mut out = Vec::new();
    let mut fields = bytes.split(|&b| b == 0).filter(|f| !f.is_empty());
    while let Some(meta) = fields.next() {
        let Some(path) = fields.next() else { break };
        let meta = String::from_utf8_lossy(meta);
        let mut parts = meta.trim_start_matches(':').split(' ');
        let (Some(old_mode), Some(new_mode), Some(_old), Some(new_sha), Some(status)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            continue;
        };
        out.push(RawChange {
            old_mode: old_mode.to_owned(),
            new_mode: new_mode.to_owned(),
            new_sha: new_sha.to_owned(),
            status: status.chars().next().unwrap_or('M'),
            path: String::from_utf8_lossy(path).into_owned(),
        });
    }
    out
}

/// Whether `path` exists as anything, links not followed.
pub(crate) fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
