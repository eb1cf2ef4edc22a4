//! Benchmark: what the audit log costs a run. Appends entries as the supervisor does
//! (lock, read the head back, one line) and prints entries per second; then writes 10,000
//! network-trace lines alone and again with an audit entry each (the worst case: every
//! request carrying a credential), and prints the ratio; and times a checkpoint over
//! them (cover + sign).

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // a program run by hand: its output is the point

use std::io::Write;
use std::time::Instant;

use moat_audit::{AuditKey, AuditLog};
use serde_json::json;

const N: u64 = 10_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::ephemeral();
    let log = AuditLog::new(dir.path().join("audit.jsonl"), "run_bench0000000");
    let started = Instant::now();
    for i in 0..N {
        log.append("credential_injected", json!({"grant": "github", "host": "api.github.com", "headers": ["authorization"], "n": i}))
            .unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "appends: {N} entries in {:.3}s = {:.0} entries/s",
        seconds,
        N as f64 / seconds
    );

    let line = br#"{"ts":"2026-12-01T00:00:00Z","method":"GET","url":"https://api.github.com/user","status":200,"duration_ms":3,"request_bytes":0,"response_bytes":17,"grant":"github","blocked":false,"request_headers":{"authorization":"[REDACTED]"},"response_headers":{}}"#;
    let trace_only = {
        let path = dir.path().join("network-a.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        let started = Instant::now();
        for _ in 0..N {
            file.write_all(line).unwrap();
            file.write_all(b"\n").unwrap();
        }
        started.elapsed().as_secs_f64()
    };
    let (with_audit, network, audited) = {
        let path = dir.path().join("network-b.jsonl");
        let audit = AuditLog::new(dir.path().join("audit-b.jsonl"), "run_bench0000001");
        let mut file = std::fs::File::create(&path).unwrap();
        let started = Instant::now();
        for _ in 0..N {
            file.write_all(line).unwrap();
            file.write_all(b"\n").unwrap();
            audit
                .append("credential_injected", json!({"grant": "github", "host": "api.github.com", "headers": ["authorization"]}))
                .unwrap();
        }
        (started.elapsed().as_secs_f64(), path, audit)
    };
    println!(
        "{N} trace lines: {:.3}s alone, {:.3}s with an audit entry each ({:.1}x; {:.1} µs per audited request)",
        trace_only,
        with_audit,
        with_audit / trace_only,
        (with_audit - trace_only) / N as f64 * 1e6
    );
    let started = Instant::now();
    audited.cover("network.jsonl", &network).unwrap();
    audited.checkpoint(&key, true).unwrap();
    println!(
        "checkpoint over {N} entries and a {:.1} MB trace: {:.1} ms",
        std::fs::metadata(&network).unwrap().len() as f64 / 1e6,
        started.elapsed().as_secs_f64() * 1e3
    );
}
