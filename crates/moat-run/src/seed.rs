//! Host directories a run gets read-only copies of, at [`CONTAINER_SEED_DIR`] (an agent's
//! plugins, as the host installed them). Copies, made in the run's directory when the run
//! is prepared: the container never sees the host's originals, nor anything beside what
//! is named, and cannot change the copies (the mount is read-only).
//!
//! A tree is copied without `.git` (a clone's remote may carry a token), with its modes
//! (hook scripts stay executable) made readable for the container's user, and symlinks
//! kept as links (they resolve inside the container, where only the container's files
//! are). The copy is bounded: a tree over [`MAX_SEED_BYTES`] is refused.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;

use fs_err::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag};

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
    let (mut budget, mut entries) = (MAX_SEED_BYTES, 0);
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
        copy_tree(&tree.source, &to, &mut budget, &mut entries)?;
    }
    crate::launch::write_home_files(dir, &seed.files)?;
    // Every directory enterable, every file readable, by the container's user.
    make_readable(dir)
}

/// Copy the directory `from` to `to` without ever following a link on the host: every
/// component of `from` (an absolute path, resolved when it was checked) and every entry
/// below is opened relative to its parent's descriptor with `O_NOFOLLOW`. A tree a run
/// can write to (a workspace's own marketplace) may change while it is copied; a
/// directory swapped for a link to `/root` then fails to open, rather than being read,
/// and a link is copied as a link.
fn copy_tree(
    from: &Path,
    to: &Path,
    budget: &mut u64,
    entries: &mut usize,
) -> Result<(), RunError> {
    use std::rc::Rc;

    let root = open_no_links(from).map_err(|e| RunError::io(from, e))?;
    fs_err::create_dir_all(to).map_err(RunError::Io)?;
    // Directories still to copy, each with its parent's descriptor and its name there:
    // opened when taken, so no more are open at once than the tree is deep.
    struct Pending {
        parent: Rc<OwnedFd>,
        name: Option<OsString>,
        src: PathBuf,
        dst: PathBuf,
        depth: usize,
    }
    let mut stack = vec![Pending {
        parent: Rc::new(root),
        name: None,
        src: from.to_owned(),
        dst: to.to_owned(),
        depth: 0,
    }];
    while let Some(Pending {
        parent,
        name,
        src,
        dst,
        depth,
    }) = stack.pop()
    {
        if depth > MAX_SEED_DEPTH {
            return Err(too_much(
                &src,
                format!("more than {MAX_SEED_DEPTH} directories deep"),
            ));
        }
        let dir = match name {
            None => parent,
            Some(name) => Rc::new(
                openat(
                    &*parent,
                    name.as_os_str(),
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| RunError::io(&src, e.into()))?,
            ),
        };
        let listing = nix::dir::Dir::openat(
            &*dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RunError::io(&src, e.into()))?;
        for entry in listing {
            let entry = entry.map_err(|e| RunError::io(&src, e.into()))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." || name == b".git" {
                continue;
            }
            *entries += 1;
            if *entries > MAX_SEED_ENTRIES {
                return Err(too_much(
                    from,
                    format!("more than {MAX_SEED_ENTRIES} files"),
                ));
            }
            let name = std::ffi::OsStr::from_bytes(name).to_owned();
            let (path, target) = (src.join(&name), dst.join(&name));
            let stat =
                nix::sys::stat::fstatat(&*dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| RunError::io(&path, e.into()))?;
            match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
                SFlag::S_IFDIR => {
                    fs_err::create_dir(&target).map_err(RunError::Io)?;
                    stack.push(Pending {
                        parent: dir.clone(),
                        name: Some(name),
                        src: path,
                        dst: target,
                        depth: depth + 1,
                    });
                }
                SFlag::S_IFLNK => {
                    let link = nix::fcntl::readlinkat(&*dir, name.as_os_str())
                        .map_err(|e| RunError::io(&path, e.into()))?;
                    charge(budget, link.len() as u64, from)?;
                    std::os::unix::fs::symlink(&link, &target)
                        .map_err(|e| RunError::io(&target, e))?;
                }
                SFlag::S_IFREG => copy_file(&dir, &name, &path, &target, budget, from)?,
                // Sockets, FIFOs and devices are not a plugin's: left out.
                _ => {}
            }
        }
    }
    Ok(())
}

/// The most entries (files, directories, links) a seed may copy.
const MAX_SEED_ENTRIES: usize = 100_000;

fn too_much(path: &Path, what: String) -> RunError {
    RunError::File {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::FileTooLarge, what),
    }
}

/// Take `bytes` from what the seed may still copy.
fn charge(budget: &mut u64, bytes: u64, tree: &Path) -> Result<(), RunError> {
    *budget = budget.checked_sub(bytes).ok_or_else(|| {
        too_much(
            tree,
            format!(
                "more than {} MiB to copy into the run",
                MAX_SEED_BYTES / (1024 * 1024)
            ),
        )
    })?;
    Ok(())
}

/// The deepest a seed's tree may nest.
const MAX_SEED_DEPTH: usize = 128;

/// Open the directory at the absolute `path` one component at a time, refusing a link in
/// any of them (as `openat2`'s `RESOLVE_NO_SYMLINKS` would, on any kernel).
fn open_no_links(path: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if !path.is_absolute() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an absolute path",
        ));
    }
    let mut fd = nix::fcntl::open("/", flags, Mode::empty())?;
    for component in path.components() {
        match component {
            std::path::Component::RootDir => {}
            std::path::Component::Normal(name) => fd = openat(&fd, name, flags, Mode::empty())?,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a resolved path",
                ));
            }
        }
    }
    Ok(fd)
}

/// Copy the regular file `name` of `dir` (opened without following a link, and checked to
/// be a regular file once open) to `target` with its mode, at most its size at open.
fn copy_file(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
    target: &Path,
    budget: &mut u64,
    tree: &Path,
) -> Result<(), RunError> {
    use std::io::Read as _;

    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RunError::io(path, e.into()))?;
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| RunError::io(path, e))?;
    if !meta.is_file() {
        // Swapped for something else since it was listed: not a plugin's.
        return Ok(());
    }
    charge(budget, meta.len(), tree)?;
    let mut out = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(meta.permissions().mode() & 0o777)
        .open(target)
        .map_err(RunError::Io)?;
    // The mode is kept: hook scripts stay executable.
    std::io::copy(&mut (&mut file).take(meta.len()), &mut out)
        .map_err(|e| RunError::io(target, e))?;
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
    use std::process::Command;

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

    /// What a run could plant in a tree it can write (a workspace's own marketplace): a
    /// link to a directory of the host, a FIFO. Nothing of the host is read.
    #[test]
    fn links_in_a_tree_are_never_followed_on_the_host() {
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("secret");
        fs_err::create_dir_all(&secret).unwrap();
        fs_err::write(secret.join("id_ed25519"), "PRIVATE").unwrap();
        let tree = host.path().join("tree");
        fs_err::create_dir_all(tree.join("plugin")).unwrap();
        fs_err::write(tree.join("plugin/hook.sh"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&secret, tree.join("plugin/keys")).unwrap();
        nix::unistd::mkfifo(&tree.join("plugin/pipe"), Mode::S_IRWXU).unwrap();

        let run = tempfile::tempdir().unwrap();
        let seed = |source: PathBuf| SeedDir {
            files: vec![],
            trees: vec![SeedTree {
                source,
                target: "cache/m/p/1".into(),
            }],
        };
        write_seed(&run.path().join("a"), &seed(tree.clone())).unwrap();
        let copy = run.path().join("a/cache/m/p/1/plugin");
        assert!(copy.join("hook.sh").is_file());
        assert!(
            fs_err::symlink_metadata(copy.join("keys"))
                .unwrap()
                .is_symlink()
        );
        assert!(!copy.join("pipe").exists(), "a FIFO is left out");
        let planted = Command::new("grep")
            .args(["-rl", "PRIVATE"])
            .arg(run.path())
            .output()
            .unwrap();
        assert!(planted.stdout.is_empty(), "{planted:?}");

        // A component of the path opened without following links: the resolved path of a
        // tree whose directory was swapped for a link since fails to open.
        assert!(open_no_links(&tree.join("plugin/keys")).is_err());
        let swapped = write_seed(&run.path().join("b"), &seed(tree.join("plugin/keys")));
        assert!(
            swapped.is_err(),
            "a tree named through a link is not copied"
        );
        assert!(open_no_links(&tree.join("plugin")).is_ok());
    }
}
