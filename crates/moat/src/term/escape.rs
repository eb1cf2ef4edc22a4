//! The escape keys of interactive sessions, as a pure state machine over input bytes.
//!
//! `Ctrl-/` (byte 0x1F) starts an escape; the next byte decides: `d` detaches, `k` stops
//! the run, another `Ctrl-/` sends one `Ctrl-/`, anything else sends both bytes. The
//! prefix and its key may arrive in different reads.

/// The line printed when an interactive session starts.
pub const ESCAPE_HELP: &str =
    "Escape sequences: Ctrl-/ d (detach), Ctrl-/ k (stop), Ctrl-/ Ctrl-/ (send Ctrl-/)";

const PREFIX: u8 = 0x1f;

/// What to do with a chunk of keyboard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeAction {
    /// Send these bytes to the container.
    Forward(Vec<u8>),
    /// Leave the session; the run goes on.
    Detach,
    /// Stop the run.
    Stop,
}

#[derive(Debug, Default)]
pub struct EscapeParser {
    pending: bool,
}

impl EscapeParser {
    /// Feed bytes read from the keyboard. Input after a `Detach` or `Stop` in the same
    /// chunk is dropped: the session is ending.
    pub fn feed(&mut self, input: &[u8]) -> Vec<EscapeAction> {
        let mut actions = Vec::new();
        let mut forward = Vec::new();
        for &byte in input {
            if self.pending {
                self.pending = false;
                match byte {
                    b'd' | b'k' => {
                        if !forward.is_empty() {
                            actions.push(EscapeAction::Forward(std::mem::take(&mut forward)));
                        }
                        actions.push(if byte == b'd' {
                            EscapeAction::Detach
                        } else {
                            EscapeAction::Stop
                        });
                        return actions;
                    }
                    PREFIX => forward.push(PREFIX),
                    other => forward.extend([PREFIX, other]),
                }
            } else if byte == PREFIX {
                self.pending = true;
            } else {
                forward.push(byte);
            }
        }
        if !forward.is_empty() {
            actions.push(EscapeAction::Forward(forward));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Option<EscapeAction>) {
        let mut parser = EscapeParser::default();
        let mut forwarded = Vec::new();
        for chunk in chunks {
            for action in parser.feed(chunk) {
                match action {
                    EscapeAction::Forward(bytes) => forwarded.extend(bytes),
                    end => return (forwarded, Some(end)),
                }
            }
        }
        (forwarded, None)
    }

    #[test]
    fn plain_input_passes_through() {
        assert_eq!(
            run(&[b"ls -la\r", b"\x03"]),
            (b"ls -la\r\x03".to_vec(), None)
        );
    }

    #[test]
    fn detach_and_stop() {
        assert_eq!(
            run(&[b"abc\x1fdxyz"]),
            (b"abc".to_vec(), Some(EscapeAction::Detach))
        );
        assert_eq!(run(&[b"\x1fk"]), (vec![], Some(EscapeAction::Stop)));
    }

    #[test]
    fn doubled_prefix_sends_one_and_others_send_both() {
        assert_eq!(run(&[b"\x1f\x1f"]), (vec![0x1f], None));
        assert_eq!(run(&[b"\x1fx"]), (vec![0x1f, b'x'], None));
        assert_eq!(
            run(&[b"\x1f\x1f\x1fd"]),
            (vec![0x1f], Some(EscapeAction::Detach))
        );
    }

    #[test]
    fn every_split_of_the_input_gives_the_same_result() {
        let inputs: [&[u8]; 4] = [
            b"ab\x1fdcd",
            b"a\x1f\x1fb\x1fkz",
            b"\x1fq\x1f",
            b"x\x1f\x1f\x1f\x1fy",
        ];
        for input in inputs {
            let whole = run(&[input]);
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let parts = [&input[..i], &input[i..j], &input[j..]];
                    assert_eq!(run(&parts), whole, "{input:?} split at {i},{j}");
                }
            }
        }
    }
}
