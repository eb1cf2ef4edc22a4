//! SSH in runs, end to end: a real OpenSSH `sshd` on loopback serving a bare git
//! repository, reached as `github.com:22` (and `gitlab.com:22`) through `MOAT_CONNECT_TO`,
//! and a real `ssh-agent` holding an Ed25519 and an RSA key. A run with `--grant
//! ssh:github.com` clones and pushes over SSH, no private key byte reaches the container,
//! another host behind the same server key gets no signature, a run without the grant
//! has no agent, and a revoked grant stops the run with its hint.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Out, TestEnv};

/// The user sshd lets in: a `git` system user, which `scripts/setup.sh` adds where missing.
const GIT_USER: &str = "git";

/// A private directory the `git` user can traverse (sshd runs its commands as that user).
fn shared_tempdir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sshd -D -e` on a free loopback port with its own host key, letting the `git` user in
/// with the keys in `authorized_keys` and running each command in `srv/`, where the bare
/// repository `org/repo.git` is: `git@HOST:org/repo.git` names it.
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    /// `ssh-ed25519 BASE64` of the server.
    host_key: String,
}

impl Sshd {
    fn start(authorized: &[String]) -> Self {
        let dir = shared_tempdir("moat-it-sshd-");
        let d = dir.path();
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "host"])
                .arg("-f")
                .arg(d.join("host_ed25519")),
        );
        let host_key = std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
        let host_key = host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(d.join("authorized_keys"), authorized.join("\n") + "\n").unwrap();

        // The repository, with one commit, owned by the user sshd runs git as.
        let srv = d.join("srv");
        let work = d.join("work");
        std::fs::create_dir_all(srv.join("org")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let git = |args: &[&str], dir: &Path| {
            run_ok(
                Command::new("git")
                    .args(["-c", "user.name=t", "-c", "user.email=t@example.test"])
                    .args(args)
                    .current_dir(dir),
            )
        };
        git(&["init", "-q", "-b", "main"], &work);
        std::fs::write(work.join("README"), "hello over ssh\n").unwrap();
        git(&["add", "README"], &work);
        git(&["commit", "-q", "-m", "first"], &work);
        git(&["clone", "-q", "--bare", "work", "srv/org/repo.git"], d);
        run_ok(Command::new("chown").args(["-R", GIT_USER]).arg(&srv));

        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             AuthenticationMethods publickey\n\
             PidFile none\n\
             AllowUsers {GIT_USER}\n\
             ForceCommand cd {srv} && eval \"$SSH_ORIGINAL_COMMAND\"\n",
            d = d.display(),
            srv = srv.display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let sshd = Sshd {
            dir,
            child,
            port,
            host_key,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// `MOAT_CONNECT_TO`: github.com and gitlab.com, port 22, both to this server.
    fn connect_to(&self) -> String {
        format!(
            "github.com:22:127.0.0.1:{0},gitlab.com:22:127.0.0.1:{0}",
            self.port
        )
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("srv/org/repo.git")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `ssh-agent` holding an Ed25519 and an RSA key (made here, without passphrase).
struct Agent {
    dir: tempfile::TempDir,
    child: Child,
}

impl Agent {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("moat-it-agent-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for (kind, bits) in [("ed25519", None), ("rsa", Some("3072"))] {
            let comment = format!("moat-it-{kind}");
            let mut keygen = Command::new("ssh-keygen");
            keygen.args(["-q", "-t", kind, "-N", "", "-C", comment.as_str()]);
            if let Some(bits) = bits {
                keygen.args(["-b", bits]);
            }
            run_ok(keygen.arg("-f").arg(d.join(format!("id_{kind}"))));
        }
        let socket = d.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent { dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready once it answers: the socket file appears before the agent listens on it.
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        for kind in ["ed25519", "rsa"] {
            run_ok(
                Command::new("ssh-add")
                    .arg("-q")
                    .arg(agent.key(kind))
                    .env("SSH_AUTH_SOCK", &socket),
            );
        }
        agent
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// The private key file of `kind` (`ed25519` or `rsa`).
    fn key(&self, kind: &str) -> PathBuf {
        self.dir.path().join(format!("id_{kind}"))
    }

    fn public(&self, kind: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("id_{kind}.pub")))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn fingerprint(&self, kind: &str) -> String {
        let out = run_ok(Command::new("ssh-keygen").arg("-lf").arg(self.key(kind)));
        out.split_whitespace().nth(1).unwrap().to_owned()
    }

    /// 32 characters of the private key file's base64 that encode private material only
    /// (the Ed25519 seed, the RSA private exponent), never the public key.
    fn needle(&self, kind: &str) -> String {
        let text = std::fs::read_to_string(self.key(kind)).unwrap();
        let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let start = if kind == "ed25519" { 220 } else { 900 };
        let needle = b64[start..start + 32].to_owned();
        assert!(!self.public(kind).contains(&needle));
        needle
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The servers and agent of one test, and a `moat` command that reaches them.
struct World {
    env: TestEnv,
    sshd: Sshd,
    agent: Agent,
}

impl World {
    fn new() -> Self {
        let agent = Agent::start();
        let sshd = Sshd::start(&[agent.public("ed25519"), agent.public("rsa")]);
        World {
            env: TestEnv::new(),
            sshd,
            agent,
        }
    }

    fn moat(&self, args: &[&str]) -> Out {
        Out::from(
            self.env
                .moat_file_keyring()
                .env("SSH_AUTH_SOCK", self.agent.socket())
                .env("MOAT_CONNECT_TO", self.sshd.connect_to())
                .args(args)
                .output()
                .unwrap(),
        )
    }

    /// `moat grant ssh --host github.com` with the key of `kind`, pinning the server's key.
    fn grant(&self, kind: &str) {
        let key = self.agent.key(kind);
        let out = self.moat(&[
            "grant",
            "ssh",
            "--host",
            "github.com",
            "--key",
            key.to_str().unwrap(),
            "--host-key",
            &self.sshd.host_key,
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            out.stdout.contains(&format!(
                "Using key: moat-it-{kind} ({})",
                self.agent.fingerprint(kind)
            )),
            "{out:?}"
        );
        assert!(
            out.stdout.contains("Granted SSH access to github.com"),
            "{out:?}"
        );
    }
}

/// The script of a granted run: clone, commit, push, then look for the private key.
fn clone_and_push(kind: &str, needle: &str) -> String {
    // The needle is assembled inside the container into a file no search covers, so no
    // command line (not even grep's) ever holds it.
    let (a, b) = needle.split_at(16);
    format!(
        "git clone -q git@github.com:org/repo.git /tmp/clone 2>/tmp/clone.err \
           && echo \"clone: $(cat /tmp/clone/README)\" || cat /tmp/clone.err; \
         cd /tmp/clone && echo {kind} > PUSHED && git add PUSHED \
           && git -c user.name=t -c user.email=t@example.test commit -q -m 'push from {kind}' \
           && git push -q origin HEAD:main 2>/tmp/push.err && echo 'push: ok' || cat /tmp/push.err; \
         cd /; \
         a='{a}'; b='{b}'; printf '%s%s' \"$a\" \"$b\" > /dev/shm/needle; \
         echo \"env: $(env | grep -cF -f /dev/shm/needle)\"; \
         echo \"files: $(grep -rlsF -D skip -f /dev/shm/needle --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / 2>/dev/null | wc -l)\"; \
         echo \"proc: $(grep -lsF -f /dev/shm/needle /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | wc -l)\""
    )
}

fn clone_and_push_works(kind: &str) {
    let world = World::new();
    world.grant(kind);
    let script = clone_and_push(kind, &world.agent.needle(kind));
    let out = world.moat(&[
        "run",
        "--trust",
        "--grant",
        "ssh:github.com",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.code, 0, "{out:?}\nsshd: {}", world.sshd.log());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"clone: hello over ssh"),
        "{out:?}\nsshd: {}",
        world.sshd.log()
    );
    assert_eq!(
        lines.get(1),
        Some(&"push: ok"),
        "{out:?}\nsshd: {}",
        world.sshd.log()
    );
    assert_eq!(lines.get(2), Some(&"env: 0"), "{out:?}");
    assert_eq!(lines.get(3), Some(&"files: 0"), "{out:?}");
    assert_eq!(lines.get(4), Some(&"proc: 0"), "{out:?}");

    // The push reached the server.
    let pushed = run_ok(
        Command::new("git")
            .arg("--git-dir")
            .arg(world.sshd.repo())
            .args(["log", "-1", "--format=%s", "main"]),
    );
    assert_eq!(pushed.trim(), format!("push from {kind}"));

    // Each signature is in the trace, for the granted host and key; each tunnel too.
    let trace = world.moat(&["trace", "--ssh"]);
    let fingerprint = world.agent.fingerprint(kind);
    assert!(
        trace
            .stdout
            .lines()
            .any(|l| l.contains("SSH signed github.com as git") && l.contains(&fingerprint)),
        "{trace:?}"
    );
    assert!(!trace.stdout.contains("REFUSED"), "{trace:?}");
    // And in the run's signed audit log, which still verifies.
    let audited = world.moat(&["audit", "--json", "--type", "ssh_signed"]);
    let audited: serde_json::Value = serde_json::from_str(&audited.stdout).unwrap();
    assert!(
        audited.as_array().unwrap().iter().any(|e| {
            e["data"]["host"] == "github.com" && e["data"]["key"] == fingerprint.as_str()
        }),
        "{audited}"
    );
    assert_eq!(world.moat(&["audit", "verify"]).code, 0);
    let network = world.moat(&["trace", "--network"]);
    assert!(
        network.stdout.contains("github.com:22")
            && network.stdout.contains("[grant: ssh:github.com]"),
        "{network:?}"
    );
}

#[test]
fn git_clone_and_push_over_ssh_with_an_ed25519_key() {
    clone_and_push_works("ed25519");
}

#[test]
fn git_clone_and_push_over_ssh_with_an_rsa_key() {
    clone_and_push_works("rsa");
}

#[test]
fn another_host_gets_no_signature_even_behind_the_same_server() {
    let world = World::new();
    world.grant("ed25519");
    // The proxy refuses port 22 to a host without an `ssh:` grant...
    let out = world.moat(&[
        "run",
        "--trust",
        "--grant",
        "ssh:github.com",
        "--",
        "sh",
        "-c",
        "ssh -o BatchMode=yes git@gitlab.com true 2>&1; echo \"exit: $?\"; \
         ssh-add -L > /tmp/key.pub && echo message > /tmp/message \
           && ssh-keygen -Y sign -f /tmp/key.pub -n file /tmp/message 2>&1; echo \"sign: $?\"",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("exit: 0"), "{out:?}");
    let network = world.moat(&["trace", "--network"]);
    assert!(
        network.stdout.contains("gitlab.com:22")
            && network.stdout.contains("SSH to gitlab.com is not granted"),
        "{network:?}"
    );
    // A signature asked for without any session-bind (here an `ssh-keygen -Y sign` blob)
    // is refused too, and traced.
    assert!(!out.stdout.contains("sign: 0"), "{out:?}");
    let trace = world.moat(&["trace", "--ssh"]);
    assert!(
        trace.stdout.contains("SSH REFUSED")
            && trace.stdout.contains("an SSHSIG signature")
            && !trace.stdout.contains("SSH signed"),
        "{trace:?}"
    );

    // ...and when the user opens the tunnel (`network.allow`) and accepts any host key,
    // the agent still signs only for the granted host: the same server key seen through
    // a tunnel to gitlab.com is no login to github.com.
    std::fs::write(
        world.env.workspace().join("moat.yaml"),
        "network:\n  allow: [\"gitlab.com:22\"]\n",
    )
    .unwrap();
    let out = world.moat(&[
        "run",
        "--trust",
        "--grant",
        "ssh:github.com",
        "--",
        "sh",
        "-c",
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         git@gitlab.com true 2>&1; echo \"exit: $?\"",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Permission denied (publickey)"),
        "{out:?}\nsshd: {}",
        world.sshd.log()
    );
    assert!(!out.stdout.contains("exit: 0"), "{out:?}");
    let trace = world.moat(&["trace", "--ssh"]);
    assert!(
        trace
            .stdout
            .lines()
            .any(|l| l.contains("SSH REFUSED") && l.contains("gitlab.com")),
        "{trace:?}"
    );
    assert!(!trace.stdout.contains("SSH signed"), "{trace:?}");
    let refused = world.moat(&["audit", "--json", "--type", "ssh_refused"]);
    assert!(refused.stdout.contains("gitlab.com"), "{refused:?}");
}

#[test]
fn without_the_grant_a_run_has_no_agent() {
    let world = World::new();
    world.grant("ed25519");
    let out = world.moat(&[
        "run",
        "--trust",
        "--",
        "sh",
        "-c",
        "echo \"sock: ${SSH_AUTH_SOCK:-unset}\"; \
         [ -e /run/moat/ssh ] && echo 'dir: present' || echo 'dir: absent'; \
         [ -e /etc/ssh/ssh_config.d/moat.conf ] && echo 'config: present' || echo 'config: absent'",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["sock: unset", "dir: absent", "config: absent"],
        "{out:?}"
    );
}

#[test]
fn a_revoked_grant_stops_the_run_with_the_grant_hint() {
    let world = World::new();
    world.grant("ed25519");
    let out = world.moat(&["revoke", "ssh:github.com"]);
    assert_eq!(out.code, 0, "{out:?}");
    let runs_before = world.env.run_dirs();
    let out = world.moat(&["run", "--trust", "--grant", "ssh:github.com", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("`ssh:github.com` is not granted"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("hint: ") && out.stderr.contains("moat grant ssh --host github.com"),
        "{out:?}"
    );
    assert_eq!(world.env.run_dirs(), runs_before);
}
