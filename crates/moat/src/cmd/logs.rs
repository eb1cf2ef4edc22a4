//! `moat logs [RUN] [-n N] [-f] [-t]`: a run's output from `logs.jsonl`, stdout lines to
//! stdout and stderr lines to stderr, optionally following it live.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use moat_run::{LogLine, Stream};

use crate::cli::LogsArgs;
use crate::settings::Context;

pub async fn logs(ctx: &Context, args: LogsArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = moat_run::resolve_run(&runs, args.run.as_deref())?;
    let path = ctx.store.logs_path(&record.id);
    let (mut lines, mut offset) = moat_run::read_from(&path, 0)?;
    if let Some(n) = args.lines {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    print_lines(&lines, args.timestamps)?;
    if !args.follow {
        if let Some(notice) = crate::ui::held_back_notice(&record) {
            crate::ui::errln!("{notice}");
        }
        return Ok(0);
    }
    let mut lazy = super::LazyDocker::new(ctx);
    loop {
        let (lines, next) = moat_run::read_from(&path, offset)?;
        offset = next;
        print_lines(&lines, args.timestamps)?;
        if lines.is_empty() {
            let current = super::refresh(ctx, &mut lazy, ctx.store.load(&record.id)?).await?;
            if current.state.is_final() {
                // One last read: the supervisor writes the final lines before the record.
                let (lines, _) = moat_run::read_from(&path, offset)?;
                print_lines(&lines, args.timestamps)?;
                if let Some(notice) = crate::ui::held_back_notice(&current) {
                    crate::ui::errln!("{notice}");
                }
                return Ok(0);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn print_lines(lines: &[LogLine], timestamps: bool) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    for line in lines {
        let sink: &mut dyn Write = match line.stream {
            Stream::Stdout => &mut out,
            Stream::Stderr => &mut err,
        };
        if timestamps {
            let local = line.ts.to_zoned(jiff::tz::TimeZone::system());
            write!(sink, "[{}] ", local.strftime("%H:%M:%S%.3f"))?;
        }
        writeln!(sink, "{}", line.line)?;
    }
    out.flush()?;
    err.flush()
}
