//! Host paths no run may mount, whatever its configuration says, and mounts that are
//! allowed but give the container power over the host (said out loud). The checks are
//! made once, where a [`crate::Workspace`] or [`CheckedMounts`] is made; the types carry
//! the proof to `prepare_run`.
//!
//! `MOAT_HOME` holds the credential key, the proxy CA's key and every run's record; a
//! workspace or mount that is it, holds it or lies in it would hand them to the agent. `/`
//! holds everything. These are refused even for trusted configuration: no file can
//! override them.

use std::path::{Path, PathBuf};

use moat_container::BindMount;
use moat_home::MoatHome;

use crate::RunError;

/// Container runtimes' API sockets: whoever can talk to one can start a privileged
/// container, i.e. is root on the host.
const RUNTIME_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
];

/// A run's extra mounts, checked against the host paths no run may mount. Only
/// [`check_mounts`] makes one, so a [`crate::RunRequest`] cannot hold unchecked mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedMounts {
    mounts: Vec<BindMount>,
}

impl CheckedMounts {
    pub fn as_slice(&self) -> &[BindMount] {
        &self.mounts
    }
}

/// Check `mounts` (sources absolute) against `moat_home`. Returns them with warnings for
/// sources that hand the container a container runtime's API; `docker_socket` is the
/// socket this moat talks to, if it is a local one.
pub fn check_mounts(
    moat_home: &MoatHome,
    mounts: Vec<BindMount>,
    docker_socket: Option<&Path>,
) -> Result<(CheckedMounts, Vec<String>), RunError> {
    let mut warnings = Vec::new();
    let mut mounts = mounts;
    for mount in &mut mounts {
        let source = resolved(Path::new(&mount.source));
        refuse_protected(moat_home, &source, "mount")?;
        // What was checked is what the container gets (a `$HOME` reached through a link
        // is mounted as where it leads), and `still_as_checked` compares against it.
        mount.source = source.display().to_string();
        if gives_runtime_api(&source, docker_socket) {
            warnings.push(format!(
                "the mount `{}` gives the container a container runtime's API socket: \
                 anything in the run can start a privileged container and so become root \
                 on this host",
                source.display()
            ));
        }
    }
    Ok((CheckedMounts { mounts }, warnings))
}

/// Refuse a checked mount whose source no longer resolves to itself: the sources were
/// resolved when the settings were read, so a difference now means a link was put on the
/// way since (by another run's agent, while the image was built), and Docker would follow
/// it.
pub(crate) fn still_as_checked(mounts: &CheckedMounts) -> Result<(), RunError> {
    for mount in &mounts.mounts {
        let source = Path::new(&mount.source);
        let now = resolved(source);
        if now != source {
            return Err(RunError::ForbiddenMount {
                path: source.to_owned(),
                reason: format!(
                    "it leads to `{}` now, through a symbolic link made after it was checked",
                    now.display()
                ),
            });
        }
    }
    Ok(())
}

/// Refuse `source` (resolved) as a workspace or mount if it is `/`, MOAT_HOME, holds it
/// or lies inside it.
pub(crate) fn refuse_protected(
    moat_home: &MoatHome,
    source: &Path,
    what: &str,
) -> Result<(), RunError> {
    let home = resolved(moat_home.root());
    let refuse = |reason: String| {
        Err(RunError::ForbiddenMount {
            path: source.to_owned(),
            reason,
        })
    };
    if source == Path::new("/") {
        return refuse(format!("the {what} would be the host's whole file system"));
    }
    if source == home {
        return refuse(format!("the {what} would be MOAT_HOME itself"));
    }
    if home.starts_with(source) {
        return refuse(format!(
            "the {what} would contain MOAT_HOME (`{}`)",
            home.display()
        ));
    }
    if source.starts_with(&home) {
        return refuse(format!(
            "the {what} would be inside MOAT_HOME (`{}`)",
            home.display()
        ));
    }
    Ok(())
}

/// `path` with symlinks resolved as far as it exists.
///
/// The longest part of `path` that exists is resolved by the file system (symlinks
/// followed); the rest, which does not exist and so holds no link, is added part by part,
/// `..` taking one off. A source made just before the run (an agent's directory) is
/// judged by where it will really be, never by how its name is spelled.
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let parts: Vec<Component<'_>> = path.components().collect();
    for split in (0..=parts.len()).rev() {
        let head: PathBuf = parts[..split].iter().collect();
        let Ok(mut out) = fs_err::canonicalize(if head.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &head
        }) else {
            continue;
        };
        for part in &parts[split..] {
            match part {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                other => out.push(other),
            }
        }
        return out;
    }
    path.to_owned()
}

fn gives_runtime_api(source: &Path, docker_socket: Option<&Path>) -> bool {
    RUNTIME_SOCKETS
        .iter()
        .map(|s| resolved(Path::new(s)))
        .chain(docker_socket.map(resolved))
        .any(|socket| socket.starts_with(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_source_swapped_for_a_link_after_the_check_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs_err::canonicalize(dir.path()).unwrap();
        fs_err::create_dir(root.join("data")).unwrap();
        fs_err::create_dir(root.join("elsewhere")).unwrap();
        let mounts = CheckedMounts {
            mounts: vec![BindMount {
                source: root.join("data").display().to_string(),
                target: "/data".into(),
                read_only: false,
            }],
        };
        still_as_checked(&mounts).unwrap();
        // A source given through a link (a `$HOME` under a linked `/home`) is checked,
        // and kept, as where it leads.
        let home = MoatHome::at(root.join("moat-home"));
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("home-link")).unwrap();
        let (checked, _) = check_mounts(
            &home,
            vec![BindMount {
                source: root.join("home-link").display().to_string(),
                target: "/h".into(),
                read_only: false,
            }],
            None,
        )
        .unwrap();
        assert_eq!(
            checked.as_slice()[0].source,
            root.join("elsewhere").display().to_string()
        );
        still_as_checked(&checked).unwrap();
        fs_err::remove_dir(root.join("data")).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("data")).unwrap();
        let refused = still_as_checked(&mounts).unwrap_err().to_string();
        assert!(refused.contains("through a symbolic link"), "{refused}");
    }
    use crate::Workspace;

    fn mount(source: &Path) -> BindMount {
        BindMount {
            source: source.display().to_string(),
            target: "/m".into(),
            read_only: true,
        }
    }

    #[test]
    fn moat_home_and_the_root_are_refused_in_every_relation() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs_err::canonicalize(dir.path()).unwrap();
        let home = MoatHome::at(root.join("home/.moat"));
        fs_err::create_dir_all(home.runs_dir()).unwrap();
        fs_err::create_dir_all(root.join("project")).unwrap();
        assert!(Workspace::resolve(&root.join("project"), &home).is_ok());
        for workspace in [root.join("home"), home.root().to_owned(), home.runs_dir()] {
            let e = Workspace::resolve(&workspace, &home).unwrap_err();
            assert!(matches!(e, RunError::ForbiddenMount { .. }), "{e}");
            assert!(e.hint().unwrap().contains("MOAT_HOME"));
        }
        for source in [PathBuf::from("/"), root.clone(), home.runs_dir()] {
            let e = check_mounts(&home, vec![mount(&source)], None).unwrap_err();
            assert!(matches!(e, RunError::ForbiddenMount { .. }), "{e}");
        }
        // Through a symbolic link too.
        std::os::unix::fs::symlink(home.root(), root.join("link")).unwrap();
        assert!(check_mounts(&home, vec![mount(&root.join("link"))], None).is_err());
        let (ok, warnings) = check_mounts(&home, vec![mount(&root.join("project"))], None).unwrap();
        assert_eq!(ok.as_slice().len(), 1);
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_source_that_does_not_exist_yet_is_judged_by_where_it_will_be() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs_err::canonicalize(dir.path()).unwrap();
        let home = MoatHome::at(root.join("moat-home"));
        fs_err::create_dir_all(home.root()).unwrap();
        fs_err::create_dir_all(root.join("user")).unwrap();
        // `moat-home/../user/...` is beside MOAT_HOME, not in it.
        let beside = root.join("moat-home/../user/.claude/projects/p");
        assert!(check_mounts(&home, vec![mount(&beside)], None).is_ok());
        assert_eq!(resolved(&beside), root.join("user/.claude/projects/p"));
        // `user/../moat-home/runs` is in it, whatever the spelling.
        let inside = root.join("user/../moat-home/runs/new");
        assert!(check_mounts(&home, vec![mount(&inside)], None).is_err());
        // Through a link to MOAT_HOME, to a directory not made yet.
        std::os::unix::fs::symlink(home.root(), root.join("link")).unwrap();
        assert!(check_mounts(&home, vec![mount(&root.join("link/later"))], None).is_err());
    }

    #[test]
    fn a_runtime_socket_is_allowed_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let home = MoatHome::at(dir.path().join(".moat"));
        let socket = dir.path().join("run/docker.sock");
        fs_err::create_dir_all(socket.parent().unwrap()).unwrap();
        fs_err::write(&socket, b"").unwrap();
        let (_, warnings) =
            check_mounts(&home, vec![mount(&dir.path().join("run"))], Some(&socket)).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("root on this host"));
        let ws = dir.path().join("ws");
        fs_err::create_dir_all(&ws).unwrap();
        let (_, warnings) = check_mounts(&home, vec![mount(&ws)], Some(&socket)).unwrap();
        assert!(warnings.is_empty());
    }
}
