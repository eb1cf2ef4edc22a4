//! Questions at the terminal: a line, yes or no, a numbered choice, and hidden input for
//! secrets. Questions go to stderr, answers come from stdin.
//!
//! Callers check [`stdin_is_terminal`] first: without a terminal moat never waits on a
//! question, it fails with a message that says which variable to set instead.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use anyhow::{Context as _, Result};
use moat_credentials::Secret;
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use zeroize::Zeroizing;

/// Whether a person can answer questions on stdin.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

fn show(prompt: &str) -> Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(prompt.as_bytes())?;
    err.flush()?;
    Ok(())
}

/// Print `prompt` and read one line, without its line ending; `None` at end of input.
pub fn ask_line(prompt: &str) -> Result<Option<String>> {
    show(prompt)?;
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the answer from stdin")?;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Ask a `[Y/n]` (or `[y/N]`) question until the answer is yes, no or empty (the
/// default). End of input is the default.
pub fn confirm(prompt: &str, default: bool) -> Result<bool> {
    loop {
        let Some(answer) = ask_line(prompt)? else {
            return Ok(default);
        };
        match parse_yes_no(&answer, default) {
            Some(yes) => return Ok(yes),
            None => show("Please answer y or n.\n")?,
        }
    }
}

fn parse_yes_no(answer: &str, default: bool) -> Option<bool> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "" => Some(default),
        "y" | "yes" => Some(true),
        "n" | "no" => Some(false),
        _ => None,
    }
}

/// Ask for one of `1..=count` until one is given; `None` at end of input.
pub fn choose(prompt: &str, count: usize, retry: &str) -> Result<Option<usize>> {
    loop {
        let Some(answer) = ask_line(prompt)? else {
            return Ok(None);
        };
        match answer.trim().parse::<usize>() {
            Ok(n) if (1..=count).contains(&n) => return Ok(Some(n)),
            _ => show(retry)?,
        }
    }
}

/// What a hidden prompt ended with.
pub enum SecretAnswer {
    Entered(Secret),
    /// Ctrl-C.
    Cancelled,
    /// Ctrl-D on an empty line, or the end of input.
    Eof,
}

/// Print `prompt` and read a line without echoing it. Keys are read one by one with the
/// terminal's echo and signals off, so Ctrl-C cancels cleanly and the terminal is always
/// restored (a killed process would leave it without echo). Backspace and Ctrl-U edit.
pub fn ask_secret(prompt: &str) -> Result<SecretAnswer> {
    let stdin = std::io::stdin();
    let guard = HiddenInput::enable(&stdin)?;
    show(prompt)?;
    let mut line = Zeroizing::new(Vec::<u8>::new());
    let mut lock = stdin.lock();
    let mut byte = [0u8; 1];
    let answer = loop {
        if lock
            .read(&mut byte)
            .context("reading the answer from stdin")?
            == 0
        {
            break if line.is_empty() {
                SecretAnswer::Eof
            } else {
                SecretAnswer::Entered(secret_from(&line))
            };
        }
        match byte[0] {
            b'\r' | b'\n' => break SecretAnswer::Entered(secret_from(&line)),
            0x03 => break SecretAnswer::Cancelled,
            0x04 if line.is_empty() => break SecretAnswer::Eof,
            0x7f | 0x08 => {
                // One character, which may be several UTF-8 bytes.
                while let Some(b) = line.pop() {
                    if b & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => line.clear(),
            b => line.push(b),
        }
    };
    drop(guard);
    show("\n")?;
    Ok(answer)
}

fn secret_from(bytes: &[u8]) -> Secret {
    Secret::new(String::from_utf8_lossy(bytes).trim().to_owned())
}

/// Terminal settings with echo, canonical mode and signals off, restored on drop.
struct HiddenInput<'a> {
    stdin: &'a std::io::Stdin,
    saved: Termios,
}

impl<'a> HiddenInput<'a> {
    fn enable(stdin: &'a std::io::Stdin) -> Result<Self> {
        let saved = termios::tcgetattr(stdin.as_fd()).context("reading the terminal settings")?;
        let mut hidden = saved.clone();
        hidden
            .local_flags
            .remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG);
        hidden.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        hidden.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        // A SIGTERM or SIGHUP mid-question must not leave the terminal without echo.
        crate::term::remember(saved.clone());
        crate::term::exit_on_signals("stopped at a question; nothing was saved");
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &hidden)
            .context("changing the terminal settings")?;
        Ok(HiddenInput { stdin, saved })
    }
}

impl Drop for HiddenInput<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.stdin.as_fd(), SetArg::TCSANOW, &self.saved);
        crate::term::forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_answers() {
        assert_eq!(parse_yes_no("", true), Some(true));
        assert_eq!(parse_yes_no("", false), Some(false));
        assert_eq!(parse_yes_no(" Y ", false), Some(true));
        assert_eq!(parse_yes_no("no", true), Some(false));
        assert_eq!(parse_yes_no("maybe", true), None);
    }

    #[test]
    fn secrets_are_trimmed() {
        assert_eq!(secret_from(b"  sk-abc \r").expose(), "sk-abc");
    }
}
