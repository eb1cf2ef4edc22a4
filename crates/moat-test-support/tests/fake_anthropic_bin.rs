//! The `fake-anthropic` binary: prints `PORT CA_FILE`, serves, and on SIGTERM (or, with
//! `--until-stdin-eof`, when its stdin closes) stops, writes `--dump` and removes its CA.

#![allow(clippy::disallowed_methods)] // test code may read the environment it was given

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn spawn(args: &[&str]) -> (Child, u16, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-anthropic"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (port, ca) = line.trim_end().split_once(' ').expect("PORT CA_FILE");
    (child, port.parse().unwrap(), PathBuf::from(ca))
}

#[test]
fn it_serves_until_sigterm_then_dumps_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("requests.jsonl");
    let (mut child, port, ca) = spawn(&[
        "--reply",
        "from the binary",
        "--dump",
        dump.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // A raw TCP connection is enough to know it listens; the HTTP side is tested elsewhere.
    TcpStream::connect(("127.0.0.1", port)).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!ca.exists(), "its CA file is removed");
    assert!(dump.exists(), "the dump is written, even when empty");
}

#[test]
fn with_until_stdin_eof_it_stops_when_stdin_closes() {
    let (mut child, _, ca) = spawn(&["--until-stdin-eof"]);
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!ca.exists());
}
