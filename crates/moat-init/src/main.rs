//! `moat-init`: the entrypoint of every image moat builds.
//!
//! It runs as moatuser (never root) under docker-init, prepares the session and then
//! replaces itself with the run's command, so that signals and the exit code are the
//! command's:
//!
//! 1. `/workspace` must be mounted (else exit 125);
//! 2. with `MOAT_PROXY_SOCKET`, the way to the proxy: `127.0.0.1:MOAT_PROXY_PORT` (3128)
//!    is bound and listening before anything else happens, and the listening socket is
//!    handed to the run's proxy itself over `MOAT_PROXY_LISTENER` (a unix socket, the
//!    descriptor sent with `SCM_RIGHTS`), which then accepts the container's connections
//!    directly; where the proxy does not take it, a child process (this program again,
//!    started as `moat-forward` with the listening socket as its stdin) relays each
//!    connection to the run's proxy on its unix socket (`forward.rs`);
//! 3. `MOAT_HOME_INIT`'s files are copied into `$HOME` (copies, so the agent may rewrite
//!    them without touching the host's);
//! 4. `MOAT_PRE_RUN` runs with `sh -c` in the workspace; its failure stops the run with
//!    its exit status;
//! 5. the command (or `/bin/bash`, else `/bin/sh`) is executed.
//!
//! Built twice from this source: by cargo as this crate (clippy, tests), and by
//! moat-image's build script with rustc alone, statically linked, into the file every
//! image's build context carries: it needs nothing from the image (no shell, no socat,
//! no libc of a particular version), so any base image works. Hence std only.
// The entrypoint's inputs are its environment, read once in `Settings::read`, and it has
// no fs-err (no dependencies, see above): its errors name their paths by hand.
#![allow(clippy::disallowed_methods)]

mod forward;
mod sys;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// What the forwarder is called, as `argv[0]`: how this program knows it is one.
const FORWARDER_NAME: &str = "moat-forward";
const WORKSPACE: &str = "/workspace";
const DEFAULT_PORT: u16 = 3128;
/// Where the forwarder's complaints go, not the run's output.
const FORWARDER_LOG: &str = "/tmp/moat-proxy-forwarder.log";
/// moat's own failures, as `docker run` reports its own.
const EXIT_INIT_FAILED: u8 = 125;

/// The environment moat-init acts on.
struct Settings {
    proxy_socket: Option<OsString>,
    proxy_port: Option<OsString>,
    proxy_listener: Option<OsString>,
    home_init: Option<OsString>,
    home: Option<OsString>,
    pre_run: Option<OsString>,
    /// Only to say where a missing command was looked for.
    path: Option<OsString>,
}

impl Settings {
    fn read() -> Self {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Settings {
            proxy_socket: set("MOAT_PROXY_SOCKET"),
            proxy_port: set("MOAT_PROXY_PORT"),
            proxy_listener: set("MOAT_PROXY_LISTENER"),
            home_init: set("MOAT_HOME_INIT"),
            home: set("HOME"),
            pre_run: set("MOAT_PRE_RUN"),
            path: set("PATH"),
        }
    }
}

/// Say what went wrong, as `moat-init: ...` on stderr.
fn complain(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "moat-init: {message}");
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let name = args.next().unwrap_or_default();
    if Path::new(&name).file_name() == Some(OsStr::new(FORWARDER_NAME)) {
        return forwarder(args.next());
    }
    let command: Vec<OsString> = args.collect();
    match init(Settings::read(), command) {
        Ok(never) => match never {},
        Err(code) => ExitCode::from(code),
    }
}

/// The forwarder's process: the listening socket is its stdin, the proxy's socket its
/// one argument.
fn forwarder(socket: Option<OsString>) -> ExitCode {
    let Some(socket) = socket else {
        complain(format_args!(
            "{FORWARDER_NAME} needs the proxy's socket path"
        ));
        return ExitCode::from(EXIT_INIT_FAILED);
    };
    let listener = match std::io::stdin().lock().as_fd_owned() {
        Ok(fd) => std::net::TcpListener::from(fd),
        Err(e) => {
            complain(format_args!("{FORWARDER_NAME}: no listening socket: {e}"));
            return ExitCode::from(EXIT_INIT_FAILED);
        }
    };
    forward::serve(listener, Path::new(&socket))
}

/// `as_fd().try_clone_to_owned()` for stdin, named for what it is here.
trait AsFdOwned {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd>;
}

impl AsFdOwned for std::io::StdinLock<'_> {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}

/// Everything before the command, then the command. Returns only on failure, with the
/// exit code to leave with.
fn init(settings: Settings, mut command: Vec<OsString>) -> Result<std::convert::Infallible, u8> {
    if command.is_empty() {
        let bash = Path::new("/bin/bash");
        let shell = if is_executable(bash) {
            bash
        } else {
            Path::new("/bin/sh")
        };
        command.push(shell.into());
    }

    // The workspace is the working directory; a missing one means a broken mount.
    if !Path::new(WORKSPACE).is_dir() {
        complain(format_args!("{WORKSPACE} is not mounted"));
        return Err(EXIT_INIT_FAILED);
    }

    // Egress: the container has no network of its own. The run's proxy is a unix socket
    // mounted from the host; the forwarder makes it reachable as a TCP proxy on loopback,
    // which is what HTTP(S)_PROXY clients speak. The socket listens before the command
    // starts, so its first request finds it, with no waiting.
    if let Some(socket) = &settings.proxy_socket {
        let port = match &settings.proxy_port {
            None => DEFAULT_PORT,
            Some(port) => match port.to_str().and_then(|p| p.parse::<u16>().ok()) {
                Some(port) => port,
                None => {
                    complain(format_args!("MOAT_PROXY_PORT is not a port: {port:?}"));
                    return Err(EXIT_INIT_FAILED);
                }
            },
        };
        if let Err(e) = start_forwarder(port, socket, settings.proxy_listener.as_deref()) {
            complain(format_args!("the proxy forwarder did not start: {e}"));
            return Err(EXIT_INIT_FAILED);
        }
    }

    // Files the run puts in the home directory (an agent's settings): copied, not
    // mounted, so the agent can rewrite them (atomic renames) without touching the host's.
    if let (Some(from), Some(home)) = (&settings.home_init, &settings.home)
        && Path::new(from).is_dir()
        && let Err(e) = copy_tree(Path::new(from), Path::new(home))
    {
        complain(format_args!("copying the home files: {e}"));
        return Err(1);
    }

    // The pre_run hook: a command for `sh -c`, run in the workspace before every run's
    // command. Its failure stops the run with its exit status.
    if let Some(hook) = &settings.pre_run {
        let status = Command::new("sh")
            .arg("-c")
            .arg(hook)
            .current_dir(WORKSPACE)
            .status();
        let code = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(
                status
                    .code()
                    .or(status.signal().map(|s| 128 + s))
                    .unwrap_or(1),
            ),
            Err(e) => {
                complain(format_args!("cannot run the pre_run hook with sh: {e}"));
                Some(127)
            }
        };
        if let Some(code) = code {
            complain(format_args!(
                "the pre_run hook failed with exit status {code}"
            ));
            return Err(u8::try_from(code).unwrap_or(1));
        }
    }

    // The command replaces this process.
    let e = Command::new(&command[0]).args(&command[1..]).exec();
    let name = command[0].to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        // In moat's words, with what to do; 127 as shells exit.
        let path = settings.path.unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "error: `{name}` is not a command in the container (not found on PATH: {})\n\
             hint: check the spelling, or add what provides it to `dependencies:` in \
             moat.yaml (`moat deps list` shows them)",
            path.to_string_lossy()
        );
        return Err(127);
    }
    complain(format_args!("cannot run `{name}`: {e}"));
    Err(126)
}

/// Bind the proxy's port here, then hand the listening socket to the proxy (at
/// `listener_socket`), or else to a child process that relays it for the rest of the run.
fn start_forwarder(
    port: u16,
    socket: &OsStr,
    listener_socket: Option<&OsStr>,
) -> std::io::Result<()> {
    let listener = forward::bind(port)?;
    // The proxy accepting the container's connections itself is one hop less per byte
    // (no relay thread to wake, no second socket to copy through). Its copy of the socket
    // outlives this process's, which the command does not inherit (close-on-exec).
    if let Some(path) = listener_socket {
        match forward::hand_over(&listener, Path::new(path)) {
            Ok(()) => return Ok(()),
            Err(e) => complain(format_args!(
                "the proxy did not take the listening socket ({e}); relaying instead"
            )),
        }
    }
    let exe = std::env::current_exe()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(FORWARDER_LOG)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    Command::new(exe)
        .arg0(FORWARDER_NAME)
        .arg(socket)
        .stdin(OwnedFd::from(listener))
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C at the run's terminal is the command's, not
        // the forwarder's.
        .process_group(0)
        .spawn()?;
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `cp -R from/. to/`: directories, files (with their modes) and symbolic links.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let named = |path: &Path, e: std::io::Error| format!("`{}`: {e}", path.display());
    let mut pending: Vec<(PathBuf, PathBuf)> = vec![(from.to_owned(), to.to_owned())];
    while let Some((source, target)) = pending.pop() {
        let entries = std::fs::read_dir(&source).map_err(|e| named(&source, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| named(&source, e))?;
            let (path, dest) = (entry.path(), target.join(entry.file_name()));
            let kind = entry.file_type().map_err(|e| named(&path, e))?;
            if kind.is_dir() {
                match std::fs::create_dir(&dest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dest.is_dir() => {}
                    Err(e) => return Err(named(&dest, e)),
                }
                pending.push((path, dest));
            } else if kind.is_symlink() {
                let link = std::fs::read_link(&path).map_err(|e| named(&path, e))?;
                let _ = std::fs::remove_file(&dest);
                std::os::unix::fs::symlink(&link, &dest).map_err(|e| named(&dest, e))?;
            } else {
                std::fs::copy(&path, &dest).map_err(|e| named(&dest, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tree_copies_files_directories_and_links_over_what_is_there() {
        let root = std::env::temp_dir().join(format!("moat-init-copy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (from, to) = (root.join("from"), root.join("to"));
        std::fs::create_dir_all(from.join(".claude/sub")).unwrap();
        std::fs::create_dir_all(to.join(".claude")).unwrap();
        std::fs::write(from.join(".claude.json"), "{}").unwrap();
        std::fs::write(from.join(".claude/sub/x"), "x").unwrap();
        std::fs::set_permissions(
            from.join(".claude/sub/x"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/x", from.join(".claude/link")).unwrap();
        std::fs::write(to.join(".claude.json"), "old").unwrap();

        copy_tree(&from, &to).unwrap();

        assert_eq!(
            std::fs::read_to_string(to.join(".claude.json")).unwrap(),
            "{}"
        );
        assert_eq!(
            std::fs::read_to_string(to.join(".claude/sub/x")).unwrap(),
            "x"
        );
        let mode = std::fs::metadata(to.join(".claude/sub/x"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_link(to.join(".claude/link")).unwrap(),
            Path::new("sub/x")
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
