//! `moat logs [RUN] [-n N] [-f] [-t] [--raw]`: a run's output from `logs.jsonl`, stdout
//! lines to stdout and stderr lines to stderr, optionally following it live; an
//! interactive run's replayed on a virtual terminal and shown as text ([`screen`]).
//!
//! It streams: records are printed as they are read (a long line's pieces one after the
//! other), `-n` starts where the last N lines begin (found from the end), and `-f` waits
//! for the file to change (inotify) rather than polling it. A run whose supervisor died
//! is copied from Docker by this command meanwhile, so its output still arrives.

mod screen;
mod watch;

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::FutureExt as _;
use moat_container::Docker;
use moat_run::{CopyEnd, CopyLock, Follow, LogReader, LogRecord, RunRecord, Stream};

use crate::cli::LogsArgs;
use crate::settings::Context;

/// How often `-f` looks at the record when the log is quiet: a supervisor dying leaves
/// nothing on disk to wake up for.
const RECHECK: Duration = Duration::from_secs(1);

pub async fn logs(ctx: &Context, args: LogsArgs) -> Result<i32> {
    match show(ctx, args).await {
        // `moat logs | head`: the reader has all it wanted.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(0)
        }
        other => other,
    }
}

async fn show(ctx: &Context, args: LogsArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let mut record = moat_run::resolve_run(&runs, args.run.as_deref())?;
    let path = ctx.store.logs_path(&record.id);
    let mut lazy = super::LazyDocker::new(ctx);
    let mut copier = Copier::default();
    if orphaned(&record) {
        // Nobody copies this run's log: bring it up to date (or to its end) first.
        record = super::refresh(ctx, &mut lazy, record).await?;
        if record.state.is_active() {
            let docker = lazy.get().await?.clone();
            if args.follow {
                copier.start(ctx, &docker, &record)?;
            } else {
                copy_now(ctx, &docker, &record).await;
            }
        }
    }
    // Watching starts before the first read, so nothing written in between is missed.
    let mut watch = args
        .follow
        .then(|| watch::Watch::new(&ctx.store.run_dir(&record.id)));
    let rendered = record.interactive && !args.raw;
    let mut reader = match args.lines {
        // A screen's last N lines are known only once it has been replayed.
        Some(n) if !rendered => LogReader::tail(&path, n)?,
        _ => LogReader::new(&path),
    };
    let mut printer = Printer::new(args.timestamps, args.raw);
    if rendered {
        let sizes = moat_run::read_terminal_sizes(&ctx.store.terminal_sizes_path(&record.id))?;
        printer.render(screen::ScreenText::new(sizes), args.lines);
    }
    print_available(&mut reader, &mut printer)?;
    let Some(watch) = watch.as_mut() else {
        printer.finish()?;
        notices(&record, false);
        return Ok(0);
    };

    let mut checked = Instant::now();
    let mut record_changed = false;
    loop {
        print_available(&mut reader, &mut printer)?;
        // The record is looked at when it changed, and at least every RECHECK (for the
        // orphan case, that asks Docker; not once per batch of lines).
        if record_changed || checked.elapsed() >= RECHECK {
            checked = Instant::now();
            let current = super::refresh(ctx, &mut lazy, ctx.store.load(&record.id)?).await?;
            if current.state.is_final() {
                // One last read: the log is complete before the record says the run is over.
                print_available(&mut reader, &mut printer)?;
                printer.finish()?;
                copier.report();
                notices(&current, false);
                return Ok(0);
            }
            if orphaned(&current) && !copier.running() {
                // The supervisor died while we followed: take over its copy.
                let docker = lazy.get().await?.clone();
                copier.report();
                copier.start(ctx, &docker, &current)?;
            }
        }
        record_changed = watch.changed(RECHECK).await;
    }
}

/// An active run whose supervisor is gone: its log is copied by nobody.
fn orphaned(record: &RunRecord) -> bool {
    record.state.is_active() && !moat_run::supervisor_alive(record)
}

fn print_available(reader: &mut LogReader, printer: &mut Printer) -> std::io::Result<usize> {
    let n = reader.read(|record| printer.print(&record))?;
    printer.flush()?;
    Ok(n)
}

/// Copy what Docker has of an orphaned run's log now, unless someone else is at it.
async fn copy_now(ctx: &Context, docker: &Docker, record: &RunRecord) {
    let Some(container) = &record.container_id else {
        return;
    };
    match CopyLock::try_take(&ctx.store, &record.id) {
        Ok(Some(lock)) => {
            let copied =
                moat_run::copy_logs(docker, &ctx.store, &record.id, container, Follow::No, &lock)
                    .await;
            if let Err(e) = copied {
                crate::ui::errln!(
                    "moat: copying run {}'s log from Docker failed: {e}",
                    record.id
                );
            }
        }
        Ok(None) => {}
        Err(e) => crate::ui::errln!("moat: {e}"),
    }
}

/// The copy `-f` makes of a run whose supervisor died, beside the printing.
#[derive(Default)]
struct Copier {
    task: Option<tokio::task::JoinHandle<Result<CopyEnd, moat_run::RunError>>>,
}

impl Copier {
    fn start(&mut self, ctx: &Context, docker: &Docker, record: &RunRecord) -> Result<()> {
        let Some(container) = record.container_id.clone() else {
            return Ok(());
        };
        let Some(lock) = CopyLock::try_take(&ctx.store, &record.id)? else {
            // Another command copies it; its lines arrive in the file all the same.
            return Ok(());
        };
        crate::ui::errln!(
            "moat: run {} has no supervisor any more; this command copies its output from Docker while it follows",
            record.id
        );
        let (docker, store, id) = (docker.clone(), ctx.store.clone(), record.id.clone());
        self.task = Some(tokio::spawn(async move {
            moat_run::copy_logs(
                &docker,
                &store,
                &id,
                &container,
                Follow::UntilStopped,
                &lock,
            )
            .await
        }));
        Ok(())
    }

    fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Say once how a finished copy went, if it failed.
    fn report(&mut self) {
        if self.task.as_ref().is_some_and(|t| t.is_finished()) {
            let task = self.task.take().expect("checked");
            if let Some(Ok(Err(e))) = task.now_or_never() {
                crate::ui::errln!("moat: copying the log from Docker failed: {e}");
            }
        }
    }
}

/// What to say after the output, on stderr.
fn notices(record: &RunRecord, copying: bool) {
    if record.logs_incomplete() {
        crate::ui::errln!(
            "moat: the log of run {} is incomplete: {}",
            record.id,
            record
                .logs_error
                .as_deref()
                .unwrap_or("the copy did not reach its end")
        );
    }
    if orphaned(record) && !copying {
        crate::ui::errln!(
            "moat: run {} has no supervisor any more; its output so far was copied from Docker. `moat logs -f {0}` follows it, `moat stop {0}` ends it and keeps the rest.",
            record.id
        );
    }
    if let Some(notice) = crate::ui::held_back_notice(record) {
        crate::ui::errln!("{notice}");
    }
}

/// `-n N` of a rendered screen: N, and the last N lines it gave out so far.
type LastLines = (usize, VecDeque<screen::ScreenLine>);

/// Writes records to stdout and stderr through buffers, joining a line's pieces; or,
/// rendering, the text lines of the screen they were drawn on.
struct Printer {
    timestamps: bool,
    /// `--raw`: what the run wrote, as written.
    raw: bool,
    /// With `--raw` to a terminal: what would act beyond its screen is left out, as in an
    /// attached session (`term::ScreenFilter`); one filter for both streams, since the
    /// terminal reads them as one.
    beyond_screen: Option<crate::term::ScreenFilter>,
    /// An interactive run's screen, and with `-n N` the last N lines it gave out so far.
    screen: Option<(screen::ScreenText, Option<LastLines>)>,
    out: std::io::BufWriter<std::io::Stdout>,
    err: std::io::BufWriter<std::io::Stderr>,
    /// Per stream, whether the next record starts a line (and gets the time prefix).
    at_line_start: [bool; 2],
    /// The stream written last: before the other is written, this one is flushed, so a
    /// terminal showing both sees them in their order.
    last: Option<Stream>,
}

impl Printer {
    fn new(timestamps: bool, raw: bool) -> Self {
        Printer {
            timestamps,
            raw,
            beyond_screen: {
                use std::io::IsTerminal as _;
                let terminal = std::io::stdout().is_terminal() || std::io::stderr().is_terminal();
                (raw && terminal).then(crate::term::ScreenFilter::default)
            },
            screen: None,
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            err: std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()),
            at_line_start: [true, true],
            last: None,
        }
    }

    /// From now on, records are replayed on `screen`, and only its last `lines` lines
    /// are printed (at [`Printer::finish`]) if given.
    fn render(&mut self, screen: screen::ScreenText, lines: Option<usize>) {
        self.screen = Some((
            screen,
            lines.map(|n| (n, VecDeque::with_capacity(n.min(4096)))),
        ));
    }

    /// The end of the output: a rendered screen's last rows (or last N lines).
    fn finish(&mut self) -> std::io::Result<()> {
        if let Some((screen, tail)) = self.screen.take() {
            let rest = screen.finish();
            match tail {
                Some((n, mut kept)) => {
                    keep_last(&mut kept, n, rest);
                    for line in &kept {
                        self.print_screen_line(line)?;
                    }
                }
                None => {
                    for line in &rest {
                        self.print_screen_line(line)?;
                    }
                }
            }
        }
        self.flush()
    }

    fn print_screen_line(&mut self, line: &screen::ScreenLine) -> std::io::Result<()> {
        if self.timestamps {
            write_time(&mut self.out, line.ts)?;
        }
        self.out.write_all(line.text.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn print(&mut self, record: &LogRecord<'_>) -> std::io::Result<()> {
        if let Some((screen, tail)) = &mut self.screen {
            let lines = screen.feed(record.timestamp(), &record.text, !record.cont);
            match tail {
                Some((n, kept)) => keep_last(kept, *n, lines),
                None => {
                    for line in &lines {
                        self.print_screen_line(line)?;
                    }
                }
            }
            return Ok(());
        }
        let s = match record.stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        if self.last.is_some_and(|l| l != record.stream) {
            match record.stream {
                Stream::Stdout => self.err.flush()?,
                Stream::Stderr => self.out.flush()?,
            }
        }
        self.last = Some(record.stream);
        let sink: &mut dyn Write = match record.stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        if self.timestamps && self.at_line_start[s] {
            write_time(sink, record.timestamp())?;
        }
        // What a run printed is shown as text: an escape sequence in it (a clipboard write,
        // a cursor move over what was shown before) does not act on the reader's terminal.
        // `--raw` gives the bytes as written.
        let text = if self.raw {
            std::borrow::Cow::Borrowed(&*record.text)
        } else {
            moat_text::plain(&record.text)
        };
        match &mut self.beyond_screen {
            Some(filter) => sink.write_all(&filter.filter(text.as_bytes()))?,
            None => sink.write_all(text.as_bytes())?,
        }
        if !record.cont {
            sink.write_all(b"\n")?;
        }
        self.at_line_start[s] = !record.cont;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

/// `-t`'s prefix: the local time, to the millisecond.
fn write_time(sink: &mut dyn Write, ts: Option<jiff::Timestamp>) -> std::io::Result<()> {
    match ts {
        Some(ts) => {
            let local = ts.to_zoned(jiff::tz::TimeZone::system());
            write!(sink, "[{}] ", local.strftime("%H:%M:%S%.3f"))
        }
        None => write!(sink, "[?] "),
    }
}

/// Add `lines` to the last `n` lines kept.
fn keep_last(kept: &mut VecDeque<screen::ScreenLine>, n: usize, lines: Vec<screen::ScreenLine>) {
    for line in lines {
        if n == 0 {
            return;
        }
        if kept.len() == n {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}
