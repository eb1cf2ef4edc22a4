//! `moat trace --network [RUN] [--json]`: every request a run made through its proxy, from
//! `network.jsonl`: `[10:23:44.512] GET https://api.github.com/user 200 (89ms)`.

use anyhow::Result;
use moat_proxy::NetworkEvent;

use crate::cli::TraceArgs;
use crate::settings::Context;
use crate::ui::outln;

pub fn trace(ctx: &Context, args: TraceArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = moat_run::resolve_run(&runs, args.run.as_deref())?;
    // `--network` is the only trace there is; it is implied.
    let _ = args.network;
    let events = moat_run::read_network_log(&ctx.store.network_log_path(&record.id))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&events)?)?;
        return Ok(0);
    }
    if events.is_empty() {
        crate::ui::errln!("Run {} made no requests through its proxy.", record.id);
        return Ok(0);
    }
    for event in &events {
        outln!("{}", line(event))?;
        if args.details {
            for (name, value) in &event.request_headers {
                outln!("    > {name}: {value}")?;
            }
            for (name, value) in &event.response_headers {
                outln!("    < {name}: {value}")?;
            }
            if let Some(body) = &event.response_body {
                let more = if body.truncated {
                    " …(truncated)"
                } else {
                    ""
                };
                outln!(
                    "    < body: {}{more}",
                    body.text.chars().take(500).collect::<String>()
                )?;
            }
        }
    }
    Ok(0)
}

/// One event as a line: time, method, URL, status (or `ERR`), duration, and what moat did.
fn line(event: &NetworkEvent) -> String {
    let time = event
        .ts
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S%.3f");
    let status = if event.error.is_some() && event.status == 0 {
        "ERR".to_owned()
    } else {
        event.status.to_string()
    };
    let mut line = format!(
        "[{time}] {} {} {status} ({}ms)",
        event.method, event.url, event.duration_ms
    );
    // A block by the policy has no error; a refused destination (the host's own
    // address, a private one) says which and why.
    match (&event.error, event.blocked) {
        (None, true) => line.push_str(" BLOCKED by network policy"),
        (Some(error), true) => line.push_str(&format!(" BLOCKED: {error}")),
        (_, false) => {}
    }
    if let Some(grant) = &event.grant {
        line.push_str(&format!(" [grant: {grant}]"));
    }
    if let Some(error) = &event.error
        && !event.blocked
    {
        line.push_str(&format!(" — {error}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(blocked: bool, error: Option<&str>) -> NetworkEvent {
        NetworkEvent {
            ts: jiff::Timestamp::UNIX_EPOCH,
            method: "GET".into(),
            url: "http://10.1.2.3:8000/f".into(),
            status: 403,
            duration_ms: 1,
            request_bytes: 0,
            response_bytes: 0,
            grant: None,
            injected_headers: Vec::new(),
            blocked,
            error: error.map(str::to_owned),
            request_headers: Default::default(),
            response_headers: Default::default(),
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn a_block_says_whether_the_policy_or_the_destination_refused() {
        assert!(line(&event(true, None)).ends_with(" 403 (1ms) BLOCKED by network policy"));
        let private = "`10.1.2.3` is a private address (RFC 1918); moat does not connect to private networks unless allowed";
        assert!(
            line(&event(true, Some(private))).ends_with(&format!(" 403 (1ms) BLOCKED: {private}"))
        );
        assert!(line(&event(false, Some("timed out"))).ends_with(" — timed out"));
    }
}
