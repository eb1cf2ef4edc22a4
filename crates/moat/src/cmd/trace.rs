//! `moat trace --network [RUN] [--json]`: every request a run made through its proxy, from
//! `network.jsonl`: `[10:23:44.512] GET https://api.github.com/user 200 (89ms)`; and
//! `moat trace --ssh`: every signature its SSH agent made or refused, from `ssh.jsonl`
//! (shown after the requests when neither flag is given).

use anyhow::Result;
use moat_proxy::NetworkEvent;

use crate::cli::TraceArgs;
use crate::settings::Context;
use crate::ui::outln;
use moat_text::escaped;

pub fn trace(ctx: &Context, args: TraceArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = moat_run::resolve_run(&runs, args.run.as_deref())?;
    let ssh_events = moat_run::read_ssh_log(&ctx.store.ssh_log_path(&record.id))?;
    if args.ssh {
        if args.json {
            outln!("{}", crate::ui::json(&ssh_events)?)?;
            return Ok(0);
        }
        if ssh_events.is_empty() {
            crate::ui::errln!("Run {} asked its SSH agent for no signature.", record.id);
        }
        for event in &ssh_events {
            outln!("{}", escaped(&ssh_line(event)))?;
        }
        if !args.network {
            return Ok(0);
        }
    }
    let events = moat_run::read_network_log(&ctx.store.network_log_path(&record.id))?;
    if args.json {
        outln!("{}", crate::ui::json(&events)?)?;
        return Ok(0);
    }
    if events.is_empty() {
        crate::ui::errln!("Run {} made no requests through its proxy.", record.id);
    }
    // Requests to the run's remote MCP servers are labelled with the server's name.
    let mcp = ctx
        .store
        .load_egress(&record.id)
        .map(|(settings, _)| settings.mcp)
        .unwrap_or_default();
    // What a line shows comes from the run: the URLs and headers its agent sent, what
    // the upstreams answered. Each line is shown escaped, so none of it acts on the
    // terminal.
    for event in &events {
        let mut text = line(event);
        if let Some(server) = mcp.iter().find(|s| s.matches_url(&event.url)) {
            text.push_str(&format!(" [mcp: {}]", server.name));
        }
        outln!("{}", escaped(&text))?;
        if args.details {
            for (name, value) in &event.request_headers {
                outln!("    > {}", escaped(&format!("{name}: {value}")))?;
            }
            for (name, value) in &event.response_headers {
                outln!("    < {}", escaped(&format!("{name}: {value}")))?;
            }
            if let Some(body) = &event.response_body {
                let more = if body.truncated {
                    " …(truncated)"
                } else {
                    ""
                };
                let sample: String = body.text.chars().take(500).collect();
                outln!("    < body: {}{more}", escaped(&sample))?;
            }
        }
    }
    if !args.ssh && !args.network {
        for event in &ssh_events {
            outln!("{}", escaped(&ssh_line(event)))?;
        }
    }
    Ok(0)
}

/// One SSH agent event as a line: time, what happened, where, with which key, and why.
fn ssh_line(event: &moat_ssh::SshEvent) -> String {
    let time = event
        .ts
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S%.3f");
    let action = match event.action {
        moat_ssh::SshAction::Signed => "signed",
        moat_ssh::SshAction::Refused => "REFUSED",
        moat_ssh::SshAction::Failed => "FAILED",
    };
    let mut line = format!("[{time}] SSH {action}");
    if let Some(host) = &event.host {
        match event.port {
            Some(22) | None => line.push_str(&format!(" {host}")),
            Some(port) => line.push_str(&format!(" {host}:{port}")),
        }
    }
    if let Some(user) = &event.user {
        line.push_str(&format!(" as {user}"));
    }
    if let Some(key) = &event.key {
        line.push_str(&format!(" key {key}"));
    }
    if let Some(reason) = &event.reason {
        line.push_str(&format!(": {reason}"));
    }
    line
}

/// `word` (a URL or a method, which hold no space) with any space in it written as an
/// escape: a URL the agent chose can hold Unicode spaces, and with them text that would
/// read as the line's status or grant (`/x\u{a0}200\u{a0}(3ms)\u{a0}[grant: github]`).
fn no_spaces(word: &str) -> std::borrow::Cow<'_, str> {
    if !word.chars().any(char::is_whitespace) {
        return std::borrow::Cow::Borrowed(word);
    }
    std::borrow::Cow::Owned(
        word.chars()
            .map(|c| {
                if c.is_whitespace() {
                    format!("\\u{{{:x}}}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
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
        no_spaces(&event.method),
        no_spaces(&event.url),
        event.duration_ms
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

    /// A URL with Unicode spaces cannot pass for the line's status and grant.
    #[test]
    fn spaces_in_a_url_are_escaped() {
        let mut forged = event(false, None);
        forged.url = "https://x.test/a\u{a0}200\u{a0}(3ms)\u{2009}[grant:\u{a0}github]".into();
        let shown = line(&forged);
        assert!(
            shown.contains("/a\\u{a0}200\\u{a0}(3ms)\\u{2009}[grant:\\u{a0}github] 403 (1ms)"),
            "{shown}"
        );
        assert_eq!(no_spaces("GET"), "GET");
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

    #[test]
    fn ssh_lines_say_what_where_and_why() {
        let mut event: moat_ssh::SshEvent = serde_json::from_str(
            r#"{"ts":"2026-01-01T00:00:00Z","action":"refused","host":"gitlab.com","port":22,"key":"SHA256:k","reason":"SSH to `gitlab.com` is not granted to this run"}"#,
        )
        .unwrap();
        assert!(
            ssh_line(&event).ends_with(
                "SSH REFUSED gitlab.com key SHA256:k: SSH to `gitlab.com` is not granted to this run"
            ),
            "{}",
            ssh_line(&event)
        );
        event.action = moat_ssh::SshAction::Signed;
        event.reason = None;
        event.port = Some(2222);
        event.user = Some("git".into());
        assert!(ssh_line(&event).ends_with("SSH signed gitlab.com:2222 as git key SHA256:k"));
    }
}
