//! Local stand-ins for what image builds fetch from out of reach: a Node.js dist mirror
//! made from the npm registry, and the host's extra CA certificates (this network re-signs
//! HTTPS) for builds that use the real registries.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

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
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let dir = dir.clone();
                    std::thread::spawn(move || serve_file(stream, &dir));
                }
            });
            url
        })
        .clone()
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
