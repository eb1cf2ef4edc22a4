//! Running the host's `claude setup-token` in a pseudo-terminal of its own: the user's
//! keys go to it, its screen comes back with every `sk-ant-…` token hidden, and the
//! OAuth token it prints is taken from the stream.
//!
//! The terminal is very wide so the token is never wrapped across lines (Claude Code's
//! UI breaks long lines at the terminal width).

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use moat_credentials::Secret;
use nix::pty::{Winsize, openpty};
use zeroize::Zeroizing;

use crate::ui::UserError;

/// How long the user has to sign in.
const TIMEOUT: Duration = Duration::from_secs(5 * 60);
const COLUMNS: u16 = 10_000;
const TOKEN_PREFIX: &[u8] = b"sk-ant-";
const OAUTH_PREFIX: &str = "sk-ant-oat";
/// Real setup tokens are over 100 characters; anything much shorter is not one.
const MIN_TOKEN_LEN: usize = 40;
/// What the user sees where a token was printed.
const HIDDEN: &[u8] = b"sk-ant-[hidden by moat]";

/// Run `claude setup-token` and return the OAuth token it printed.
pub(super) fn run() -> Result<Secret> {
    let rows = crossterm::terminal::size()
        .map(|(_, rows)| rows)
        .unwrap_or(24);
    let winsize = Winsize {
        ws_row: rows,
        ws_col: COLUMNS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&winsize), None).context("opening a pseudo-terminal")?;
    let mut command = Command::new("claude");
    command
        .arg("setup-token")
        .env("NO_COLOR", "1")
        .env("COLUMNS", COLUMNS.to_string())
        .stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave));
    let mut child =
        match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(UserError::new("`claude` is not installed (it is not on PATH)")
                .hint(
                    "install Claude Code (`npm install -g @anthropic-ai/claude-code`) and run \
                     `moat grant anthropic` again, or choose option 2 to use an API key",
                )
                .into());
            }
            Err(e) => return Err(anyhow::Error::new(e).context("starting `claude setup-token`")),
        };
    // The command holds the last copies of the terminal's child side: once it is gone and
    // the child exits, reading the parent side ends.
    drop(command);

    let master = File::from(pty.master);
    let mut to_child = master.try_clone().context("opening the pseudo-terminal")?;
    let mut from_child = master;

    let _raw = if crate::ui::prompt::stdin_is_terminal() {
        // A SIGTERM or SIGHUP while it runs must not leave the terminal raw.
        crate::term::exit_on_signals("`claude setup-token` interrupted; nothing was saved");
        Some(crate::term::RawMode::enable().context("switching the terminal to raw mode")?)
    } else {
        None
    };
    // The user's keys, to the command. This thread may stay blocked in a read after the
    // command ends; the process exits without waiting for it.
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_child.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    // The command's screen, to the user, tokens hidden.
    let (done, tokens) = mpsc::channel();
    std::thread::spawn(move || {
        let mut redactor = Redactor::default();
        let mut buf = [0u8; 4096];
        loop {
            match from_child.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => show(&redactor.push(&buf[..n])),
            }
        }
        show(&redactor.finish());
        let _ = done.send(redactor.tokens);
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .context("waiting for `claude setup-token`")?
        {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(UserError::new(format!(
                "`claude setup-token` did not finish within {} minutes; nothing was saved",
                TIMEOUT.as_secs() / 60
            ))
            .hint("run `moat grant anthropic` again and complete the sign-in in the browser")
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // A process the command left behind (a browser opener) may keep the terminal open:
    // wait for the rest of the output only briefly.
    let tokens = tokens
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    drop(_raw);
    if !status.success() {
        return Err(
            UserError::new(format!("`claude setup-token` failed ({status})"))
                .hint(
                    "run `claude setup-token` on its own to see what is wrong, or choose option 2 \
                 to use an API key",
                )
                .into(),
        );
    }
    pick_token(tokens).ok_or_else(|| {
        UserError::new("`claude setup-token` finished without printing a token; nothing was saved")
            .hint(
                "run `moat grant anthropic` again; if `claude setup-token` prints the token \
                 but moat misses it, set ANTHROPIC_API_KEY to that token and run `moat grant \
                 anthropic`",
            )
            .into()
    })
}

fn show(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// The last OAuth token seen (a redrawn screen may print it more than once).
fn pick_token(tokens: Vec<Secret>) -> Option<Secret> {
    tokens
        .into_iter()
        .rev()
        .find(|t| t.expose().starts_with(OAUTH_PREFIX) && t.len() >= MIN_TOKEN_LEN)
}

fn is_token_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'
}

/// Hides `sk-ant-…` tokens in a byte stream that arrives in pieces, keeping what it
/// hid. A piece ending in what may be the start or middle of a token is held back until
/// the token ends.
#[derive(Default)]
struct Redactor {
    pending: Zeroizing<Vec<u8>>,
    tokens: Vec<Secret>,
}

impl Redactor {
    /// Add `chunk`; returns what can be shown now.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        self.drain(false)
    }

    /// The end of the stream: everything left, tokens hidden.
    fn finish(&mut self) -> Vec<u8> {
        self.drain(true)
    }

    fn drain(&mut self, at_end: bool) -> Vec<u8> {
        let mut shown = Vec::new();
        let mut i = 0;
        let pending = &self.pending;
        while i < pending.len() {
            let rest = &pending[i..];
            if rest.starts_with(TOKEN_PREFIX) {
                let len = TOKEN_PREFIX.len()
                    + rest[TOKEN_PREFIX.len()..]
                        .iter()
                        .take_while(|b| is_token_byte(b))
                        .count();
                if i + len == pending.len() && !at_end {
                    break; // the token may go on in the next piece
                }
                self.tokens.push(Secret::new(
                    String::from_utf8_lossy(&rest[..len]).into_owned(),
                ));
                shown.extend_from_slice(HIDDEN);
                i += len;
                continue;
            }
            if !at_end && rest.len() < TOKEN_PREFIX.len() && TOKEN_PREFIX.starts_with(rest) {
                break; // the start of a token, maybe
            }
            shown.push(pending[i]);
            i += 1;
        }
        self.pending.drain(..i);
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str =
        "sk-ant-oat01-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz-AA";

    fn feed(pieces: &[&[u8]]) -> (String, Vec<Secret>) {
        let mut redactor = Redactor::default();
        let mut shown = Vec::new();
        for piece in pieces {
            shown.extend(redactor.push(piece));
        }
        shown.extend(redactor.finish());
        (String::from_utf8(shown).unwrap(), redactor.tokens)
    }

    #[test]
    fn hides_a_token_split_across_pieces_and_keeps_it() {
        let text = format!("Your token:\r\n\x1b[1m{TOKEN}\x1b[0m\r\nStore it safely.\r\n");
        let bytes = text.as_bytes();
        for split in [1, 5, 20, 21, 25, 40, 60, bytes.len() - 3] {
            let (shown, tokens) = feed(&[&bytes[..split], &bytes[split..]]);
            assert_eq!(
                shown,
                "Your token:\r\n\x1b[1msk-ant-[hidden by moat]\x1b[0m\r\nStore it safely.\r\n",
                "split at {split}"
            );
            assert_eq!(tokens.len(), 1);
            assert_eq!(tokens[0].expose(), TOKEN);
        }
    }

    #[test]
    fn byte_by_byte_and_at_the_very_end() {
        let text = format!("token: {TOKEN}");
        let pieces: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        let (shown, tokens) = feed(&pieces);
        assert_eq!(shown, "token: sk-ant-[hidden by moat]");
        assert_eq!(pick_token(tokens).unwrap().expose(), TOKEN);
    }

    #[test]
    fn text_that_only_looks_like_a_prefix_is_shown() {
        let (shown, tokens) = feed(&[b"ask-", b"an", b"d sk-an", b"t"]);
        assert_eq!(shown, "ask-and sk-ant");
        assert!(tokens.is_empty());
    }

    #[test]
    fn short_or_non_oauth_tokens_are_not_picked() {
        let (_, tokens) = feed(&[b"sk-ant-oat01-short sk-ant-api03-", &TOKEN.as_bytes()[13..]]);
        assert_eq!(tokens.len(), 2);
        assert!(pick_token(tokens).is_none());
    }
}
