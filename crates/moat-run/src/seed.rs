//! Host directories a run gets read-only copies of, at [`CONTAINER_SEED_DIR`] (an agent's
//! plugins, as the host installed them). Copies, made in the run's directory when the run
//! is prepared: the container never sees the host's originals, nor anything beside what
//! is named, and cannot change the copies (the mount is read-only).
//!
//! A tree is copied without `.git` (a clone's remote may carry a token), with its modes
//! (hook scripts stay executable) made readable for the container's user, and symlinks
//! kept as links (they resolve inside the container, where only the container's files
//! are). The copy is bounded: a tree over [`MAX_SEED_BYTES`] is refused.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::{HomeFile, RunError};

/// Where the copies are mounted in the container.
pub const CONTAINER_SEED_DIR: &str = "/run/moat/seed";

/// The most a run's seed may copy.
pub const MAX_SEED_BYTES: u64 = 512 * 1024 * 1024;

/// What a run's seed holds: `files` (written as given) and `trees`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedDir {
    pub files: Vec<HomeFile>,
    pub trees: Vec<SeedTree>,
}

impl SeedDir {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.trees.is_empty()
    }
}

/// A host directory and where its copy goes, relative to the seed's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedTree {
    pub source: PathBuf,
    pub target: String,
}

/// Make the seed's copy under `dir`.
pub(crate) fn write_seed(dir: &Path, seed: &SeedDir) -> Result<(), RunError> {
    fs_err::create_dir_all(dir).map_err(RunError::Io)?;
    let mut budget = MAX_SEED_BYTES;
    for tree in &seed.trees {
        if !crate::launch::plain_relative(&tree.target) {
            return Err(RunError::File {
                path: tree.target.clone().into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a seed's target needs a plain relative path",
                ),
            });
        }
        let to = dir.join(&tree.target);
        copy_tree(&tree.source, &to, &mut budget)?;
    }
    crate::launch::write_home_files(dir, &seed.files)?;
    // Every directory enterable, every file readable, by the container's user.
    make_readable(dir)
}

fn copy_tree(from: &Path, to: &Path, budget: &mut u64) -> Result<(), RunError> {
    let meta = fs_err::symlink_metadata(from).map_err(|e| RunError::io(from, e))?;
    if !meta.is_dir() {
        return Err(RunError::File {
            path: from.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    fs_err::create_dir_all(to).map_err(RunError::Io)?;
    let mut stack = vec![(from.to_owned(), to.to_owned())];
    while let Some((src, dst)) = stack.pop() {
        let entries = fs_err::read_dir(&src).map_err(RunError::Io)?;
        for entry in entries {
            let entry = entry.map_err(RunError::Io)?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let (src, dst) = (entry.path(), dst.join(&name));
            let kind = entry.file_type().map_err(RunError::Io)?;
            if kind.is_dir() {
                fs_err::create_dir(&dst).map_err(RunError::Io)?;
                stack.push((src, dst));
            } else if kind.is_symlink() {
                let target = fs_err::read_link(&src).map_err(RunError::Io)?;
                std::os::unix::fs::symlink(&target, &dst).map_err(|e| RunError::io(&dst, e))?;
            } else if kind.is_file() {
                let size = entry.metadata().map_err(RunError::Io)?.len();
                *budget = budget.checked_sub(size).ok_or_else(|| RunError::File {
                    path: from.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::FileTooLarge,
                        format!(
                            "more than {} MiB to copy into the run",
                            MAX_SEED_BYTES / (1024 * 1024)
                        ),
                    ),
                })?;
                // `copy` keeps the mode: hook scripts stay executable.
                fs_err::copy(&src, &dst).map_err(RunError::Io)?;
            }
            // Sockets, FIFOs and devices are not a plugin's: left out.
        }
    }
    Ok(())
}

fn make_readable(dir: &Path) -> Result<(), RunError> {
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = fs_err::symlink_metadata(&path).map_err(RunError::Io)?;
        if meta.is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        // Directories and executables (for their owner) for everyone; files readable.
        let wanted = if meta.is_dir() || mode & 0o100 != 0 {
            0o755
        } else {
            0o644
        };
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
            .map_err(RunError::Io)?;
        if meta.is_dir() {
            for entry in fs_err::read_dir(&path).map_err(RunError::Io)?.flatten() {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_tree_is_copied_with_its_modes_without_git_and_links_stay_links() {
        let host = tempfile::tempdir().unwrap();
        let plugin = host.path().join("plugin");
        fs_err::create_dir_all(plugin.join("hooks")).unwrap();
        fs_err::create_dir_all(plugin.join(".git")).unwrap();
        fs_err::write(plugin.join(".git/config"), "url = https://token@x").unwrap();
        fs_err::write(plugin.join("hooks/run.sh"), "#!/bin/sh\n").unwrap();
        fs_err::set_permissions(
            plugin.join("hooks/run.sh"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        fs_err::write(plugin.join("README"), "hi").unwrap();
        fs_err::set_permissions(
            plugin.join("README"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", plugin.join("link")).unwrap();

        let run = tempfile::tempdir().unwrap();
        let seed = SeedDir {
            files: vec![HomeFile {
                path: "known_marketplaces.json".into(),
                contents: b"{}".to_vec(),
            }],
            trees: vec![SeedTree {
                source: plugin.clone(),
                target: "cache/m/p/1.0".into(),
            }],
        };
        write_seed(run.path(), &seed).unwrap();
        let copy = run.path().join("cache/m/p/1.0");
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&copy.join("hooks/run.sh")), 0o755);
        assert_eq!(mode(&copy.join("README")), 0o644);
        assert!(!copy.join(".git").exists(), "no clone metadata");
        assert_eq!(
            fs_err::read_link(copy.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            fs_err::read(run.path().join("known_marketplaces.json")).unwrap(),
            b"{}"
        );

        let escape = SeedDir {
            files: vec![],
            trees: vec![SeedTree {
                source: plugin,
                target: "../out".into(),
            }],
        };
        assert!(write_seed(&run.path().join("x"), &escape).is_err());
    }
}
