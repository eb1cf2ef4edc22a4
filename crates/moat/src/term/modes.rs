//! What the program on the container's terminal switched on in the user's terminal
//! (alternate screen, hidden cursor, mouse reporting, bracketed paste, focus events, the
//! kitty keyboard protocol), so that leaving the session switches it off again.
//!
//! A detach (`Ctrl-/ d`), a signal or a crash leaves the program running with its modes
//! still set in the terminal the user goes back to: a shell under a hidden cursor, or
//! with every mouse move typed as escape codes. Full-screen programs set these with DEC
//! private modes (`CSI ? N h`, reset with `CSI ? N l`) and the kitty protocol with
//! `CSI > flags u` (pushed) and `CSI < u` (popped). Only those sequences are followed:
//! the output itself passes through untouched.

/// The DEC private modes followed, and the sequence that resets each.
const MODES: &[u16] = &[
    1049, 1047, 47, // alternate screen
    25, // cursor visible (set means shown: its *reset* is the one to undo)
    1000, 1002, 1003, 1005, 1006, 1015, // mouse reporting
    2004, // bracketed paste
    1004, // focus events
];

/// A scanner over the program's output that knows which modes are on.
#[derive(Debug, Default)]
pub struct TerminalModes {
    /// The modes set (`h`) and not reset since; for 25 (cursor), whether it is hidden.
    on: Vec<u16>,
    /// Kitty keyboard levels pushed and not popped.
    kitty: u32,
    /// The part of an escape sequence that a chunk ended in the middle of.
    partial: Vec<u8>,
}

/// The longest control sequence worth keeping across chunks; longer ones are not ours.
const MAX_SEQUENCE: usize = 32;

impl TerminalModes {
    /// Follow one chunk of the program's output.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(bytes);
        let mut i = 0;
        while i < data.len() {
            if data[i] != 0x1b {
                i += 1;
                continue;
            }
            match parse_csi(&data[i..]) {
                Parsed::Sequence(len, sequence) => {
                    self.apply(sequence);
                    i += len;
                }
                Parsed::Incomplete => {
                    if data.len() - i <= MAX_SEQUENCE {
                        self.partial = data[i..].to_vec();
                    }
                    return;
                }
                Parsed::Other => i += 1,
            }
        }
    }

    fn apply(&mut self, sequence: Csi) {
        match sequence {
            Csi::Private { params, set } => {
                for mode in params {
                    if !MODES.contains(&mode) {
                        continue;
                    }
                    // Cursor: shown is normal, so "on" means hidden.
                    let on = if mode == 25 { !set } else { set };
                    self.on.retain(|m| *m != mode);
                    if on {
                        self.on.push(mode);
                    }
                }
            }
            Csi::KittyPush => self.kitty = self.kitty.saturating_add(1),
            Csi::KittyPop(n) => self.kitty = self.kitty.saturating_sub(n.max(1)),
        }
    }

    /// Whether a mode the program set is still on.
    pub fn any_on(&self) -> bool {
        !self.on.is_empty() || self.kitty > 0
    }

    /// The bytes that switch off what is still on, in reverse order of setting (the
    /// alternate screen last, so the cursor and the text return to the main screen).
    pub fn reset_sequence(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.kitty > 0 {
            out.extend_from_slice(format!("\x1b[<{}u", self.kitty).as_bytes());
        }
        let mut on = self.on.clone();
        // The screen switch goes last.
        on.sort_by_key(|m| matches!(m, 1049 | 1047 | 47));
        for mode in on {
            if mode == 25 {
                out.extend_from_slice(b"\x1b[?25h");
            } else {
                out.extend_from_slice(format!("\x1b[?{mode}l").as_bytes());
            }
        }
        // Colours and styles: the program's last pen must not colour moat's words.
        out.extend_from_slice(b"\x1b[0m");
        out
    }

    /// Whether the program is showing its alternate screen now.
    pub fn on_alternate_screen(&self) -> bool {
        self.on.iter().any(|m| matches!(m, 1049 | 1047 | 47))
    }
}

enum Csi {
    Private { params: Vec<u16>, set: bool },
    KittyPush,
    KittyPop(u32),
}

enum Parsed {
    /// A sequence of this many bytes that matters here.
    Sequence(usize, Csi),
    /// The data ends inside what may be one.
    Incomplete,
    /// Not one of ours (the scanner moves on by one byte).
    Other,
}

/// `ESC [ ? N ; N h|l`, `ESC [ > N u` and `ESC [ < N u`, at the start of `data`.
fn parse_csi(data: &[u8]) -> Parsed {
    debug_assert_eq!(data.first(), Some(&0x1b));
    let Some(&second) = data.get(1) else {
        return Parsed::Incomplete;
    };
    if second != b'[' {
        return Parsed::Other;
    }
    let Some(&kind) = data.get(2) else {
        return Parsed::Incomplete;
    };
    if !matches!(kind, b'?' | b'>' | b'<') {
        return Parsed::Other;
    }
    let body = &data[3..];
    let Some(end) = body
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b';'))
    else {
        return if body.len() > MAX_SEQUENCE {
            Parsed::Other
        } else {
            Parsed::Incomplete
        };
    };
    let numbers: Vec<u32> = std::str::from_utf8(&body[..end])
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let len = 3 + end + 1;
    let csi = match (kind, body[end]) {
        (b'?', b'h' | b'l') => Csi::Private {
            params: numbers
                .iter()
                .filter_map(|n| u16::try_from(*n).ok())
                .collect(),
            set: body[end] == b'h',
        },
        (b'>', b'u') => Csi::KittyPush,
        (b'<', b'u') => Csi::KittyPop(numbers.first().copied().unwrap_or(1)),
        _ => return Parsed::Other,
    };
    Parsed::Sequence(len, csi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&[u8]]) -> TerminalModes {
        let mut modes = TerminalModes::default();
        for chunk in chunks {
            modes.feed(chunk);
        }
        modes
    }

    #[test]
    fn what_is_set_and_not_reset_is_undone_the_screen_last() {
        let modes = fed(&[b"\x1b[?1049h\x1b[?25l\x1b[?2004hhello\x1b[?1000;1006h"]);
        assert!(modes.any_on() && modes.on_alternate_screen());
        assert_eq!(
            String::from_utf8(modes.reset_sequence()).unwrap(),
            "\x1b[?25h\x1b[?2004l\x1b[?1000l\x1b[?1006l\x1b[?1049l\x1b[0m"
        );
    }

    #[test]
    fn a_mode_reset_by_the_program_is_left_alone() {
        let modes = fed(&[b"\x1b[?2004h\x1b[?25l", b"bye\x1b[?2004l\x1b[?25h"]);
        assert!(!modes.any_on());
        assert_eq!(modes.reset_sequence(), b"\x1b[0m");
    }

    #[test]
    fn a_sequence_split_between_chunks_is_followed() {
        let modes = fed(&[b"text\x1b[", b"?10", b"49h more"]);
        assert!(modes.on_alternate_screen());
    }

    #[test]
    fn kitty_keyboard_levels_are_popped() {
        let modes = fed(&[b"\x1b[>1u\x1b[>3u\x1b[<1u\x1b[>1u"]);
        assert!(modes.any_on());
        assert!(
            String::from_utf8(modes.reset_sequence())
                .unwrap()
                .starts_with("\x1b[<2u")
        );
    }

    #[test]
    fn other_sequences_and_unknown_modes_change_nothing() {
        let modes = fed(&[b"\x1b[31mred\x1b[0m\x1b[?7h\x1b[2J\x1b]0;title\x07"]);
        assert!(!modes.any_on());
    }
}
