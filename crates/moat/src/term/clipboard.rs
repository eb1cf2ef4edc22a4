//! Taking the clipboard sequences (OSC 52) out of a run's output on its way to the
//! user's terminal, as a filter over byte chunks.
//!
//! An attached session passes the program's output through as written: it is the
//! program's terminal. But OSC 52 (`ESC ] 52 ; c ; BASE64 BEL`) asks the terminal to
//! write the user's clipboard — a command planted there is one paste away from the host's
//! shell — and `ESC ] 52 ; c ; ? BEL` asks it to answer with the clipboard's contents, as
//! if typed into the container. Any process in the container can write such a sequence to
//! its terminal, so none of them reaches the user's. Everything else passes untouched.

/// The introducer of an OSC 52 sequence, after its ESC.
const INTRODUCER: &[u8] = b"]52;";

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
/// CAN and SUB cancel a control string in the middle.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

/// Where the filter is in the stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Text,
    /// Inside a clipboard sequence, dropping it up to its terminator.
    Dropping,
    /// Inside one, just after an ESC (the start of `ESC \`, the string terminator).
    DroppingAfterEsc,
}

/// A filter that drops OSC 52 sequences, however the chunks cut them.
#[derive(Debug, Default)]
pub struct ClipboardFilter {
    state: State,
    /// The start of what may be an introducer (`ESC`, `ESC ]`, `ESC ] 5`, ...), held back
    /// until the next chunk says whether it is one (at most four bytes; left out if the
    /// output ends there).
    held: Vec<u8>,
}

impl ClipboardFilter {
    /// The part of `chunk` (with what the last chunk held back) to pass on.
    pub fn filter(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            let byte = data[i];
            match self.state {
                State::Dropping => {
                    match byte {
                        BEL | CAN | SUB => self.state = State::Text,
                        ESC => self.state = State::DroppingAfterEsc,
                        _ => {}
                    }
                    i += 1;
                }
                State::DroppingAfterEsc => {
                    self.state = State::Text;
                    // `ESC \` ends the string; another ESC sequence ends it too and is
                    // the terminal's to act on.
                    if byte == b'\\' {
                        i += 1;
                    } else {
                        out.push(ESC);
                    }
                }
                State::Text if byte == ESC => {
                    let rest = &data[i + 1..];
                    let known = rest.len().min(INTRODUCER.len());
                    if rest[..known] != INTRODUCER[..known] {
                        out.push(byte);
                        i += 1;
                    } else if known < INTRODUCER.len() {
                        // Cut by the chunk: decide with the next one.
                        self.held = data[i..].to_vec();
                        return out;
                    } else {
                        self.state = State::Dropping;
                        i += 1 + INTRODUCER.len();
                    }
                }
                State::Text => {
                    // Up to the next ESC, as it is.
                    let end = data[i..]
                        .iter()
                        .position(|&b| b == ESC)
                        .map_or(data.len(), |at| i + at);
                    out.extend_from_slice(&data[i..end]);
                    i = end;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(chunks: &[&[u8]]) -> Vec<u8> {
        let mut filter = ClipboardFilter::default();
        chunks.iter().flat_map(|c| filter.filter(c)).collect()
    }

    #[test]
    fn clipboard_writes_and_reads_are_dropped_and_the_rest_passes() {
        let out = filtered(&[b"a\x1b]52;c;Y3VybCBldmlsfHNo\x07b\x1b]52;c;?\x1b\\c"]);
        assert_eq!(out, b"abc");
        // Colours, titles, cursor moves and other OSCs are the program's own.
        let screen: &[u8] =
            b"\x1b[1;31mred\x1b[0m\x1b]0;title\x07\x1b]8;;https://x.test\x1b\\l\x1b]520;x\x07";
        assert_eq!(filtered(&[screen]), screen);
    }

    #[test]
    fn a_sequence_cut_anywhere_between_chunks_is_still_dropped() {
        let whole: &[u8] = b"before\x1b]52;c;Y3VybA==\x1b\\after\x1b[0m";
        for cut in 0..=whole.len() {
            for second in cut..=whole.len() {
                let out = filtered(&[&whole[..cut], &whole[cut..second], &whole[second..]]);
                assert_eq!(out, b"beforeafter\x1b[0m", "{cut} {second}");
            }
        }
    }

    #[test]
    fn an_escape_that_ends_the_string_early_is_passed_on() {
        assert_eq!(filtered(&[b"\x1b]52;c;abc\x1b[2Jx"]), b"\x1b[2Jx");
        assert_eq!(filtered(&[b"\x1b]52;c;abc\x18x"]), b"x");
        // A lone ESC at the very end is held, then passed on with what follows.
        assert_eq!(filtered(&[b"x\x1b", b"[0m"]), b"x\x1b[0m");
    }
}
