//! Local stand-ins for what image builds fetch from out of reach: a Node.js dist mirror
//! made from the npm registry, the host's extra CA certificates (this network re-signs
//! HTTPS) for builds that use the real registries, and [`Offline`]: a network namespace
//! with nothing but loopback, where this process serves mirrors for builds that must reach
//! nothing else.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::{DOCKER, docker};

/// The host's extra CA certificates (this network re-signs HTTPS), as one PEM.
pub fn host_extra_cas() -> Vec<u8> {
    let mut pem = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/local/share/ca-certificates") {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|e| e == "crt") {
                pem.extend(std::fs::read(&path).unwrap());
                pem.push(b'\n');
            }
        }
    }
    pem
}

/// A Node.js dist mirror of one major version (made once from the npm registry, kept in
/// the target directory), served on loopback by a thread of this test process for as long
/// as it lives. Returns its URL.
pub fn node_mirror(major: &'static str) -> String {
    static URLS: Mutex<BTreeMap<&'static str, String>> = Mutex::new(BTreeMap::new());
    let mut urls = URLS.lock().unwrap();
    urls.entry(major)
        .or_insert_with(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            serve_dir(listener, node_mirror_dir(major))
        })
        .clone()
}

/// The directory of the Node.js dist mirror of `major`, made on first use.
pub fn node_mirror_dir(major: &str) -> PathBuf {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("node-mirror-{major}"));
    if !dir
        .join(format!("latest-v{major}.x/SHASUMS256.txt"))
        .exists()
    {
        let partial = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../moat-image/scripts/node-mirror.sh"
        );
        let made = Command::new("sh")
            .arg(script)
            .arg(&partial)
            .arg(major)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "node-mirror.sh: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&partial, &dir).unwrap();
    }
    dir
}

/// Serve the files under `dir` on `listener` from threads of this process, for as long as
/// it lives. Returns the URL.
pub fn serve_dir(listener: TcpListener, dir: PathBuf) -> String {
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || serve_file(stream, &dir));
        }
    });
    url
}

/// A network namespace with a loopback interface and nothing else (no route, no DNS): the
/// one of a `--network none` container that lives as long as this value. An image build
/// joins it with `MOAT_BUILD_NETWORK=container:NAME` (the classic builder runs each `RUN`
/// step in it), and [`Offline::listen`] binds a port on its loopback for a server of this
/// process, which still reaches the world from the host's namespace. So the build reaches
/// those servers and nothing else, by construction rather than by configuration.
pub struct Offline {
    name: String,
    pid: u32,
}

impl Offline {
    pub fn new() -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "moat-it-offline-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let out = docker(&[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            "debian:bookworm-slim",
            "sleep",
            "3600",
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        // Removed on drop from here on, even if the next step fails.
        let mut offline = Offline { name, pid: 0 };
        offline.pid = docker(&["inspect", "-f", "{{.State.Pid}}", &offline.name])
            .stdout
            .trim()
            .parse()
            .unwrap();
        offline
    }

    /// The value of `MOAT_BUILD_NETWORK` that puts a build's `RUN` steps in here.
    pub fn build_network(&self) -> String {
        format!("container:{}", self.name)
    }

    /// A listener on `127.0.0.1:<free port>` inside the namespace. Only the thread that
    /// binds it enters the namespace (a namespace belongs to a thread); the socket stays
    /// in it, and any thread may accept on it.
    pub fn listen(&self) -> TcpListener {
        let ns = format!("/proc/{}/ns/net", self.pid);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&ns).unwrap();
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("entering {ns}: {e}"));
            TcpListener::bind("127.0.0.1:0").unwrap()
        })
        .join()
        .unwrap()
    }

    /// Run `script` with `sh -c` in a container sharing the namespace: what a build step
    /// there sees.
    pub fn sh(&self, script: &str) -> crate::harness::Out {
        docker(&[
            "run",
            "--rm",
            "--network",
            &self.build_network(),
            "debian:bookworm-slim",
            "sh",
            "-c",
            script,
        ])
    }
}

impl Drop for Offline {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.name]).output();
    }
}

/// Answer one `GET /path` with the file under `root`, or 404.
fn serve_file(mut stream: std::net::TcpStream, root: &Path) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let file = (!path.contains(".."))
        .then(|| std::fs::read(root.join(path.trim_start_matches('/'))).ok())
        .flatten();
    let _ = match file {
        Some(body) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}
