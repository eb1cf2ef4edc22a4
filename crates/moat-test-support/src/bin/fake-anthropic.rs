//! `fake-anthropic`: serves the fake Anthropic API (`moat_test_support::FakeAnthropic`)
//! for benchmark scripts. Prints one line, `PORT CA_FILE`, on stdout and serves until
//! SIGTERM or SIGINT (or, with `--until-stdin-eof`, until its stdin closes).
//!
//! ```text
//! fake-anthropic [--reply TEXT] [--port PORT] [--until-stdin-eof] [--log] [--dump FILE]
//! ```
//!
//! `--port` serves on that port of 127.0.0.1 instead of a free one (443: a client reaches
//! it as `https://api.anthropic.com/` with `--add-host api.anthropic.com:127.0.0.1`).
//!
//! `--log` prints `METHOD PATH` of each request on stderr as it arrives; `--dump FILE`
//! writes every request at exit as JSON lines (`method`, `path`, `headers`, `body`: parsed
//! JSON, else text). Stdin EOF is
//! opt-in because a background job of a script (`fake-anthropic &`) reads /dev/null.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a program: its output is the point

use std::io::Write;
use std::time::Duration;

use moat_test_support::FakeAnthropic;

const USAGE: &str =
    "usage: fake-anthropic [--reply TEXT] [--port PORT] [--until-stdin-eof] [--log] [--dump FILE]";
const DEFAULT_REPLY: &str = "Hello from the fake Anthropic API.";

struct Options {
    reply: String,
    port: u16,
    until_stdin_eof: bool,
    log: bool,
    dump: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        reply: DEFAULT_REPLY.to_owned(),
        port: 0,
        until_stdin_eof: false,
        log: false,
        dump: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reply" => options.reply = args.next().ok_or("--reply needs a text")?,
            "--port" => {
                options.port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a port number")?;
            }
            "--until-stdin-eof" => options.until_stdin_eof = true,
            "--log" => options.log = true,
            "--dump" => options.dump = Some(args.next().ok_or("--dump needs a file")?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("error: {problem}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let fake = FakeAnthropic::start_on(options.port, &options.reply);
    let (eof_tx, mut eof_rx) = tokio::sync::oneshot::channel::<()>();
    if options.until_stdin_eof {
        // A plain thread: a blocking read must not keep the runtime from shutting down.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = eof_tx.send(());
        });
    }
    runtime.block_on(async {
        // Handlers first, so that a SIGTERM right after the port line still cleans up.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler");
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .expect("a SIGINT handler");
        {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{} {}", fake.port(), fake.ca_file().display());
            let _ = stdout.flush();
        }
        let mut logged = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = &mut eof_rx, if options.until_stdin_eof => break,
                _ = tick.tick(), if options.log => {
                    let endpoints = fake.endpoints();
                    for endpoint in &endpoints[logged..] {
                        eprintln!("{endpoint}");
                    }
                    logged = endpoints.len();
                }
            }
        }
    });
    runtime.shutdown_background();
    if let Some(file) = &options.dump
        && let Err(e) = dump(&fake, file)
    {
        eprintln!("error: cannot write {}: {e}", file.display());
    }
    // Dropping the fake stops it and removes its CA file.
    drop(fake);
    std::process::ExitCode::SUCCESS
}

/// Every request `fake` saw, as JSON lines, into `file`.
fn dump(fake: &FakeAnthropic, file: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(fs_err::File::create(file)?);
    for request in fake.requests() {
        let body = serde_json::from_slice(&request.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&request.body).into_owned())
        });
        let line = serde_json::json!({
            "method": request.method,
            "path": request.path,
            "headers": request.headers,
            "body": body,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}
