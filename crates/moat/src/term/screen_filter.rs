//! What of a run's output reaches the user's terminal from an attached session: the
//! program draws as it likes, but cannot reach the clipboard or send files.
//!
//! An attached session passes the program's output through: it is the program's
//! terminal. But some control strings act beyond the screen. OSC 52 (`ESC ] 52 ; c ;
//! BASE64 BEL`) writes the user's clipboard — a command planted there is one paste away
//! from the host's shell — and `ESC ] 52 ; c ; ? BEL` asks the terminal to type the
//! clipboard's contents back into the container; kitty's OSC 5522 and iTerm2's OSC 1337
//! (`Copy=`, `File=`) do the same and more; a DCS (tmux's and screen's passthrough) or an
//! APC carries any of them to an outer terminal. Any process in the container can write
//! these to its terminal, so:
//!
//! - an OSC passes only when its number is one that draws or labels (titles, colours,
//!   hyperlinks, the working directory, shell-integration marks, notifications); every
//!   other OSC is dropped whole;
//! - DCS, SOS, PM and APC strings are dropped whole;
//! - everything else (text, CSI sequences such as colours and cursor moves, other escape
//!   sequences) passes as it is.
//!
//! The filter parses the stream as a terminal does (the DEC/ECMA-48 state machine): an
//! ESC is passed on only once the byte after it says what it starts; C0 controls inside a
//! sequence are executed by the terminal and passed on, or ignored inside a string and
//! dropped; an ESC inside a string ends it and starts a sequence of its own; the C1 forms
//! encoded in UTF-8 (U+009B, U+009D, U+0090, ...) are sequences too; an OSC's number is
//! read as a number (`052` is 52). Nothing is buffered but an OSC's number (a few bytes)
//! and the first byte of a two-byte C1 character.

/// The OSC numbers that pass: they draw or label, and reach nothing beyond the screen.
/// 0-2 titles; 4, 10-19, 104, 110-119 colours; 7 working directory; 8 hyperlinks; 9 and
/// 777 notifications; 133 and 633 shell-integration marks.
fn osc_passes(number: u32) -> bool {
    matches!(number, 0..=2 | 4 | 7..=19 | 104 | 110..=119 | 133 | 633 | 777)
}

/// How many digits an OSC number may have before the string is dropped unread.
const MAX_OSC_DIGITS: usize = 6;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
/// CAN and SUB cancel a sequence or a string in the middle.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
/// The first byte of the UTF-8 encoding of U+0080..U+00BF, the C1 controls among them.
const C1_LEAD: u8 = 0xc2;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    /// After an ESC, not passed on yet.
    Escape,
    /// An escape sequence's intermediates (`ESC ( B`), passed on.
    EscapeIntermediate,
    /// A control sequence (CSI), passed on.
    Csi,
    /// An OSC whose number is still being read; `digits` holds it.
    OscNumber,
    /// A string being passed on up to its terminator.
    PassString,
    /// A string being dropped up to its terminator.
    DropString,
}

/// The filter, one per terminal the output goes to (stdout and stderr on the same
/// terminal share one: the terminal sees them as one stream).
#[derive(Debug, Default)]
pub struct ScreenFilter {
    state: State,
    /// The OSC number read so far (its digits, without the introducer).
    digits: Vec<u8>,
    /// Whether the OSC being read was introduced by U+009D (rather than `ESC ]`).
    c1_introducer: bool,
    /// A C1 lead byte (0xC2) whose next byte decides what it is.
    lead: bool,
    /// In `Escape` right after a dropped string: a `\\` there is its terminator, dropped too.
    swallow_terminator: bool,
}

impl ScreenFilter {
    /// The part of `chunk` to pass on, given the chunks before it.
    pub fn filter(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        for &byte in chunk {
            if self.lead {
                self.lead = false;
                if let Some(c1) = c1_control(byte) {
                    self.control_string_byte(c1, &mut out);
                    continue;
                }
                // Not a C1 control: an ordinary character, in whatever state.
                self.byte(C1_LEAD, &mut out);
            }
            if byte == C1_LEAD {
                self.lead = true;
                continue;
            }
            self.byte(byte, &mut out);
        }
        out
    }

    /// A C1 control (given as its 7-bit escape's final byte: `[` for CSI, `]` OSC, `P`
    /// DCS, `X` SOS, `^` PM, `_` APC, `\` ST), arrived as a two-byte UTF-8 character.
    fn control_string_byte(&mut self, c1: u8, out: &mut Vec<u8>) {
        match self.state {
            State::PassString | State::OscNumber if c1 == b'\\' => {
                if self.state == State::OscNumber {
                    self.decide_osc(out);
                }
                if self.state == State::PassString {
                    out.extend_from_slice(&[C1_LEAD, 0x9c]);
                }
                self.state = State::Ground;
            }
            State::DropString if c1 == b'\\' => self.state = State::Ground,
            // In a string, another C1 control is the string's to ignore; an ST elsewhere
            // means nothing.
            State::PassString | State::DropString | State::OscNumber => {}
            // Elsewhere a C1 control ends what was going on (a pending ESC is forgotten);
            // an ST then means nothing, another starts its own sequence.
            _ => {
                self.swallow_terminator = false;
                self.state = State::Ground;
                if c1 != b'\\' {
                    self.introduce(c1, true, out);
                }
            }
        }
    }

    /// After ESC (or as a C1 character), the byte that says what the sequence is.
    fn introduce(&mut self, kind: u8, c1: bool, out: &mut Vec<u8>) {
        match kind {
            b'[' => {
                out.extend_from_slice(if c1 { &[C1_LEAD, 0x9b] } else { b"\x1b[" });
                self.state = State::Csi;
            }
            b']' => {
                self.digits.clear();
                self.c1_introducer = c1;
                self.state = State::OscNumber;
            }
            b'P' | b'X' | b'^' | b'_' => self.state = State::DropString,
            _ => {}
        }
    }

    fn byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => {
                if byte == ESC {
                    self.state = State::Escape;
                } else {
                    out.push(byte);
                }
            }
            State::Escape => {
                let swallow = std::mem::take(&mut self.swallow_terminator);
                match byte {
                    // A new escape: the first one is forgotten, as a terminal does.
                    ESC => {}
                    b'\\' if swallow => self.state = State::Ground,
                    CAN | SUB => {
                        out.push(byte);
                        self.state = State::Ground;
                    }
                    // Executed by the terminal without leaving the escape.
                    0x00..=0x1f | 0x7f => {
                        out.push(byte);
                        self.swallow_terminator = swallow;
                    }
                    b'[' | b']' | b'P' | b'X' | b'^' | b'_' => {
                        self.state = State::Ground;
                        self.introduce(byte, false, out);
                    }
                    0x20..=0x2f => {
                        out.extend_from_slice(&[ESC, byte]);
                        self.state = State::EscapeIntermediate;
                    }
                    _ => {
                        out.extend_from_slice(&[ESC, byte]);
                        self.state = State::Ground;
                    }
                }
            }
            State::EscapeIntermediate | State::Csi => match byte {
                ESC => self.state = State::Escape,
                CAN | SUB => {
                    out.push(byte);
                    self.state = State::Ground;
                }
                _ => {
                    out.push(byte);
                    let done = match self.state {
                        State::Csi => (0x40..=0x7e).contains(&byte),
                        _ => (0x30..=0x7e).contains(&byte),
                    };
                    if done {
                        self.state = State::Ground;
                    }
                }
            },
            State::OscNumber => match byte {
                b'0'..=b'9' if self.digits.len() < MAX_OSC_DIGITS => self.digits.push(byte),
                b'0'..=b'9' => self.state = State::DropString,
                // Ignored inside a string by the terminal; not passed on while unread.
                0x00..=0x06 | 0x08..=0x17 | 0x19 | 0x1c..=0x1f => {}
                _ => {
                    self.decide_osc(out);
                    self.string_byte(byte, out);
                }
            },
            State::PassString | State::DropString => self.string_byte(byte, out),
        }
    }

    /// The OSC's number is read: pass the string on (its introducer and number first) or
    /// drop it.
    fn decide_osc(&mut self, out: &mut Vec<u8>) {
        let number = std::str::from_utf8(&self.digits)
            .ok()
            .and_then(|d| d.parse::<u32>().ok());
        if number.is_some_and(osc_passes) {
            if self.c1_introducer {
                out.extend_from_slice(&[C1_LEAD, 0x9d]);
            } else {
                out.extend_from_slice(b"\x1b]");
            }
            out.extend_from_slice(&self.digits);
            self.state = State::PassString;
        } else {
            self.state = State::DropString;
        }
        self.digits.clear();
    }

    /// A byte of a string being passed on or dropped.
    fn string_byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        let pass = self.state == State::PassString;
        match byte {
            BEL | CAN | SUB => {
                if pass {
                    out.push(byte);
                }
                self.state = State::Ground;
            }
            // The string ends here; the ESC starts a sequence of its own, read as any
            // other: `ESC \` (the terminator) goes out after a passed string and is
            // swallowed after a dropped one, anything else is checked anew.
            ESC => {
                self.state = State::Escape;
                self.swallow_terminator = !pass;
            }
            _ => {
                if pass {
                    out.push(byte);
                }
            }
        }
    }
}

/// The C1 control a UTF-8 continuation byte after 0xC2 encodes, as its 7-bit escape's
/// final byte; `None` for the other characters of U+0080..U+00BF.
fn c1_control(byte: u8) -> Option<u8> {
    match byte {
        0x90 => Some(b'P'),
        0x98 => Some(b'X'),
        0x9b => Some(b'['),
        0x9c => Some(b'\\'),
        0x9d => Some(b']'),
        0x9e => Some(b'^'),
        0x9f => Some(b'_'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(chunks: &[&[u8]]) -> Vec<u8> {
        let mut filter = ScreenFilter::default();
        chunks.iter().flat_map(|c| filter.filter(c)).collect()
    }

    /// What a terminal would take from `out` that reaches beyond the screen: an OSC whose
    /// number does not pass, or a DCS, SOS, PM or APC string, introduced by ESC (C0
    /// controls may stand between, as a terminal executes them there) or by a C1 form.
    fn reaches_beyond_the_screen(out: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < out.len() {
            let kind = match out[i] {
                ESC => {
                    let mut j = i + 1;
                    while j < out.len() && out[j] < 0x20 && ![ESC, CAN, SUB].contains(&out[j]) {
                        j += 1;
                    }
                    out.get(j).map(|&k| (k, j + 1))
                }
                C1_LEAD => out
                    .get(i + 1)
                    .and_then(|&b| c1_control(b))
                    .map(|k| (k, i + 2)),
                _ => None,
            };
            match kind {
                Some((b'P' | b'X' | b'^' | b'_', _)) => return Some(i),
                Some((b']', mut j)) => {
                    let mut digits = String::new();
                    while j < out.len()
                        && (out[j].is_ascii_digit()
                            || (out[j] < 0x20 && ![BEL, ESC, CAN, SUB].contains(&out[j])))
                    {
                        if out[j].is_ascii_digit() {
                            digits.push(char::from(out[j]));
                        }
                        j += 1;
                    }
                    if !digits.parse::<u32>().is_ok_and(osc_passes) {
                        return Some(i);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }

    #[test]
    fn clipboard_writes_and_reads_are_dropped_and_drawing_passes() {
        let out = filtered(&[b"a\x1b]52;c;Y3VybCBldmlsfHNo\x07b\x1b]52;c;?\x1b\\c"]);
        assert_eq!(out, b"abc");
        // Colours, modes, titles, hyperlinks, charsets: the program's own.
        let screen: &[u8] = b"\x1b[1;31mred\x1b[0m\x1b[?1049h\x1b]0;title\x07\x1b]8;;https://x.test\x1b\\l\x1b]8;;\x1b\\\x1b(B\x1b7\xc2\x9b2J caf\xc3\xa9 \xe2\x80\x9cq\xe2\x80\x9d";
        assert_eq!(filtered(&[screen]), screen);
    }

    #[test]
    fn the_ways_round_a_prefix_match_are_closed() {
        let attacks: &[&[u8]] = &[
            // A doubled ESC, before and inside a dropped string.
            b"\x1b\x1b]52;\x07]52;c;ZXZpbA==\x07",
            b"\x1b]52;x\x1b\x1b]52;\x07]52;c;ZXZpbA==\x07",
            // Leading zeros; C0 controls inside the introducer.
            b"\x1b]052;c;ZXZpbA==\x07",
            b"\x1b\x00]52;c;ZXZpbA==\x07",
            b"\x1b]5\x002;c;ZXZpbA==\x07",
            // Other clipboards and file transfers; passthrough to an outer terminal.
            b"\x1b]5522;type=write;ZXZpbA==\x07",
            b"\x1b]1337;Copy=:ZXZpbA==\x07",
            b"\x1b]1337;File=name=eA==:ZXZpbA==\x07",
            b"\x1bPtmux;\x1b\x1b]52;c;ZXZpbA==\x07\x1b\\",
            b"\x1b_Gf=100;ZXZpbA==\x1b\\",
            // The C1 forms, in UTF-8.
            b"\xc2\x9d52;c;ZXZpbA==\xc2\x9c",
            b"\xc2\x90tmux;\x1b\x1b]52;c;ZXZpbA==\x07\xc2\x9c",
        ];
        for attack in attacks {
            let out = filtered(&[attack]);
            assert_eq!(
                reaches_beyond_the_screen(&out),
                None,
                "{attack:?} gave {out:?}"
            );
        }
    }

    #[test]
    fn no_mix_of_fragments_cut_anyhow_reaches_beyond_the_screen() {
        let fragments: &[&[u8]] = &[
            b"\x1b", b"]", b"52", b"052", b"0", b"8", b";", b"c;", b"ZXZp", b"\x07", b"\x1b\\",
            b"\x00", b"\x18", b"\xc2", b"\x9d", b"\x9c", b"\x90", b"P", b"_", b"tmux;", b"[",
            b"?1049h", b"m", b"(", b"5522;", b"1337;", b"text ",
        ];
        // A small deterministic generator: the same cases every run.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..20_000 {
            let length = 1 + next(12);
            let input: Vec<u8> = (0..length)
                .flat_map(|_| fragments[next(fragments.len())].iter().copied())
                .collect();
            let mut filter = ScreenFilter::default();
            let mut out = Vec::new();
            let mut at = 0;
            while at < input.len() {
                let take = 1 + next(input.len() - at);
                out.extend(filter.filter(&input[at..at + take]));
                at += take;
            }
            assert_eq!(
                reaches_beyond_the_screen(&out),
                None,
                "{input:?} gave {out:?}"
            );
        }
    }

    #[test]
    fn a_sequence_cut_anywhere_between_chunks_is_still_dropped() {
        let whole: &[u8] =
            b"before\x1b]52;c;Y3VybA==\x1b\\after\x1b[0m\xc2\x9d52;c;Y3VybA==\xc2\x9cend";
        for cut in 0..=whole.len() {
            for second in cut..=whole.len() {
                let out = filtered(&[&whole[..cut], &whole[cut..second], &whole[second..]]);
                assert_eq!(out, b"beforeafter\x1b[0mend", "{cut} {second}");
            }
        }
    }

    #[test]
    fn what_ends_a_string_early_is_read_as_itself() {
        assert_eq!(filtered(&[b"\x1b]52;c;abc\x1b[2Jx"]), b"\x1b[2Jx");
        assert_eq!(filtered(&[b"\x1b]52;c;abc\x18x"]), b"x");
        assert_eq!(filtered(&[b"x\x1b", b"[0m"]), b"x\x1b[0m");
        assert_eq!(filtered(&[b"\x1b]2;t\x1b\\"]), b"\x1b]2;t\x1b\\");
    }
}
