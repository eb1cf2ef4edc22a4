//! Host paths no run may mount, whatever its configuration says, and mounts that are
//! allowed but give the container power over the host (said out loud).
//!
//! `MOAT_HOME` holds the credential key, the proxy CA's key and every run's record; a
//! workspace or mount that is it, holds it or lies in it would hand them to the agent. `/`
//! holds everything. These are refused even for trusted configuration: no file can
//! override them.

use std::path::{Path, PathBuf};

use crate::RunError;

/// Container runtimes' API sockets: whoever can talk to one can start a privileged
/// container, i.e. is root on the host.
const RUNTIME_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
];

/// Check a run's workspace and extra mount sources (absolute, resolved) against
/// `moat_home`. Returns warnings for sources that hand the container a container
/// runtime's API; `docker_socket` is the socket this moat talks to, if it is one.
pub fn check_sources(
    moat_home: &Path,
    workspace: &Path,
    mount_sources: &[PathBuf],
    docker_socket: Option<&Path>,
) -> Result<Vec<String>, RunError> {
    let home = resolved(moat_home);
    let mut warnings = Vec::new();
    for (what, source) in std::iter::once(("workspace", workspace))
        .chain(mount_sources.iter().map(|s| ("mount", s.as_path())))
    {
        let source = resolved(source);
        let refuse = |reason: String| {
            Err(RunError::ForbiddenMount {
                path: source.clone(),
                reason,
            })
        };
        if source == Path::new("/") {
            return refuse(format!("the {what} would be the host's whole file system"));
        }
        if source == home {
            return refuse(format!("the {what} would be MOAT_HOME itself"));
        }
        if home.starts_with(&source) {
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
        if what == "mount" && gives_runtime_api(&source, docker_socket) {
            warnings.push(format!(
                "the mount `{}` gives the container a container runtime's API socket: \
                 anything in the run can start a privileged container and so become root \
                 on this host",
                source.display()
            ));
        }
    }
    Ok(warnings)
}

/// `path` with symlinks resolved as far as it exists.
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn gives_runtime_api(source: &Path, docker_socket: Option<&Path>) -> bool {
    let sockets = RUNTIME_SOCKETS
        .iter()
        .map(|s| resolved(Path::new(s)))
        .chain(docker_socket.map(resolved));
    let mut sockets = sockets;
    sockets.any(|socket| socket.starts_with(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moat_home_and_the_root_are_refused_in_every_relation() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home/.moat");
        std::fs::create_dir_all(home.join("runs")).unwrap();
        std::fs::create_dir_all(root.join("project")).unwrap();
        let ok = root.join("project");
        assert!(check_sources(&home, &ok, &[], None).unwrap().is_empty());
        for (workspace, mounts) in [
            (root.join("home"), vec![]),
            (home.clone(), vec![]),
            (home.join("runs"), vec![]),
            (ok.clone(), vec![PathBuf::from("/")]),
            (ok.clone(), vec![root.clone()]),
        ] {
            let e = check_sources(&home, &workspace, &mounts, None).unwrap_err();
            assert!(matches!(e, RunError::ForbiddenMount { .. }), "{e}");
            assert!(e.hint().unwrap().contains("MOAT_HOME"));
        }
        // Through a symbolic link too.
        std::os::unix::fs::symlink(&home, root.join("link")).unwrap();
        assert!(check_sources(&home, &ok, &[root.join("link")], None).is_err());
    }

    #[test]
    fn a_runtime_socket_is_allowed_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join(".moat");
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let socket = dir.path().join("run/docker.sock");
        std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
        std::fs::write(&socket, b"").unwrap();
        let warnings = check_sources(&home, &ws, &[dir.path().join("run")], Some(&socket)).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("root on this host"));
        assert!(
            check_sources(&home, &ws, std::slice::from_ref(&ws), Some(&socket))
                .unwrap()
                .is_empty()
        );
    }
}
