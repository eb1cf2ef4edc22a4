//! The output of an interactive run as text: its bytes replayed on a virtual terminal
//! (asciinema's `avt`) of the size the run's terminal had, and the screen's lines given
//! out as they scrolled off it, then what the screen showed at the end.
//!
//! A TUI such as Claude Code draws by moving the cursor and rewriting rows; its raw bytes
//! (`moat logs --raw`) are escape codes, not text. Replayed, every redraw lands where it
//! did on the user's screen, and what is left is what they saw: a line that scrolled
//! away appears once, as it last looked.
//!
//! The output may be hostile (the program in the container wrote it), so the replay is
//! bounded: a repeat sequence (`CSI N b`, N copies of the last character) is clamped, a
//! line is cut at [`MAX_LINE`] characters, the text given out may not outgrow the bytes
//! fed by more than [`GROWTH`] times (then the rest is left out, with a notice), and
//! the lines are plain: what a terminal would act on is dropped (`moat_text::plain`).

use std::collections::VecDeque;

use avt::parser::Function;
use avt::{Line, Observation, Observer, Operation, Terminal};
use jiff::Timestamp;
use moat_run::TerminalSize;

/// The size of a terminal nobody attached to (Docker's default for a container's TTY).
const DEFAULT_SIZE: (usize, usize) = (80, 24);

/// The largest screen replayed (a recorded size beyond it is clamped).
const MAX_SIZE: (u16, u16) = (1000, 500);

/// The longest line given out, in characters; the rest of it is cut (marked `…`).
pub const MAX_LINE: usize = 64 * 1024;

/// How much more text than bytes fed the replay may give out (plus [`SLACK`]): enough
/// for any real screen, which prints each character it is sent about once.
pub const GROWTH: usize = 64;
const SLACK: usize = 4 * 1024 * 1024;

/// The most copies one repeat sequence (`CSI N b`) may ask for.
const MAX_REPEAT: u32 = 1024;

/// One line of the rendered text, with the time of the output that completed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenLine {
    pub ts: Option<Timestamp>,
    pub text: String,
}

/// Replays a TTY run's records and hands out its text lines.
pub struct ScreenText {
    terminal: Terminal,
    transcript: Transcript,
    /// Sizes still to come, oldest first.
    sizes: VecDeque<TerminalSize>,
    last_ts: Option<Timestamp>,
    /// An unfinished control sequence at the end of the last record.
    carry: String,
    fed: usize,
    given: usize,
    /// The budget ran out: nothing more is replayed.
    stopped: bool,
}

fn clamp_size(cols: u16, rows: u16) -> (usize, usize) {
    (
        usize::from(cols.clamp(1, MAX_SIZE.0)),
        usize::from(rows.clamp(1, MAX_SIZE.1)),
    )
}

impl ScreenText {
    /// A screen that takes each of `sizes` from its time on (the first from the start).
    pub fn new(sizes: Vec<TerminalSize>) -> Self {
        let mut sizes: VecDeque<_> = sizes.into();
        let (cols, rows) = sizes
            .pop_front()
            .map_or(DEFAULT_SIZE, |s| clamp_size(s.cols, s.rows));
        ScreenText {
            terminal: Terminal::new(cols, rows).expect("sizes are positive"),
            transcript: Transcript::default(),
            sizes,
            last_ts: None,
            carry: String::new(),
            fed: 0,
            given: 0,
            stopped: false,
        }
    }

    /// Feed one record of output (`newline`: it ended a line in the log, whose `\n` the
    /// log dropped); returns the lines that left the screen.
    pub fn feed(&mut self, ts: Option<Timestamp>, text: &str, newline: bool) -> Vec<ScreenLine> {
        if self.stopped {
            return Vec::new();
        }
        let mut lines = Vec::new();
        if let Some(ts) = ts {
            while self.sizes.front().is_some_and(|s| s.ts <= ts) {
                let size = self.sizes.pop_front().expect("checked");
                let (cols, rows) = clamp_size(size.cols, size.rows);
                lines.extend(self.terminal.resize_with(cols, rows, &mut self.transcript));
            }
            self.last_ts = Some(ts);
        }
        let mut input = std::mem::take(&mut self.carry);
        input.push_str(text);
        // The log keeps a terminal's `\r\n` as the end of a line (the `\r` dropped), and
        // on a terminal a line ends with both (`ONLCR`).
        if newline {
            input.push_str("\r\n");
        }
        let (input, carry) = clamp_repeats(&input);
        self.carry = carry;
        self.fed += input.len();
        lines.extend(
            self.terminal
                .feed_with(input.as_str(), &mut self.transcript),
        );
        self.give(lines, ts)
    }

    /// What the screen shows at the end (its blank rows at the bottom left out).
    pub fn finish(mut self) -> Vec<ScreenLine> {
        if self.stopped {
            return Vec::new();
        }
        let ts = self.last_ts;
        let lines = std::mem::take(&mut self.transcript).finish(&self.terminal);
        self.give(lines, ts)
    }

    /// The lines, plain, within the budget.
    fn give(&mut self, lines: Vec<String>, ts: Option<Timestamp>) -> Vec<ScreenLine> {
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            self.given += line.len() + 1;
            if self.given > self.fed.saturating_mul(GROWTH) + SLACK {
                self.stopped = true;
                out.push(ScreenLine {
                    ts,
                    text: "[moat: the rest of this output draws far more text than it holds, and is not shown; `moat logs --raw` has its bytes]".into(),
                });
                break;
            }
            out.push(ScreenLine {
                ts,
                // The virtual terminal passes controls, bidirectional overrides and
                // zero-width characters through as text; a real one would act on them.
                text: moat_text::plain(&line).into_owned(),
            });
        }
        out
    }
}

/// `text` with every repeat sequence (`ESC [ N b`) asking for at most [`MAX_REPEAT`]
/// copies, and the unfinished control sequence at its end (if any) held back for the
/// next record, so that a sequence cut between two records is clamped too.
fn clamp_repeats(text: &str) -> (String, String) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let digits = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if digits == after.len() {
            // Unfinished (or a run of digits long enough to be one): carried over, up to
            // a length no real sequence has.
            if after.len() <= 32 {
                return (out, rest[at..].to_owned());
            }
            out.push_str(&rest[at..]);
            return (out, String::new());
        }
        let (params, final_byte) = (&after[..digits], after[digits..].chars().next());
        out.push_str("\x1b[");
        if final_byte == Some('b') {
            let n: u32 = params.parse().unwrap_or(1).min(MAX_REPEAT);
            out.push_str(&n.to_string());
        } else {
            out.push_str(params);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    // A lone ESC or `ESC` at the very end: the next record finishes it.
    if out.ends_with('\x1b') {
        out.pop();
        return (out, "\x1b".to_owned());
    }
    (out, String::new())
}

/// Lines as they leave the terminal (evicted from the top of the main screen), and the
/// main screen's rows at the end; wrapped rows joined into one line, cut at
/// [`MAX_LINE`]. (`avt`'s own transcript, bounded.)
#[derive(Default)]
struct Transcript {
    pending: String,
    pending_chars: usize,
    cut: bool,
    ready: Vec<String>,
}

impl Transcript {
    fn finish(mut self, terminal: &Terminal) -> Vec<String> {
        self.finish_primary(terminal);
        self.ready
    }

    fn finish_primary(&mut self, terminal: &Terminal) {
        let start = self.ready.len();
        for line in terminal.primary_screen().all_lines() {
            self.push(line);
        }
        while self.ready.len() > start && self.ready.last().is_some_and(String::is_empty) {
            self.ready.pop();
        }
    }

    fn push(&mut self, line: &Line) {
        for c in line.chars() {
            if self.pending_chars < MAX_LINE {
                self.pending.push(c);
                self.pending_chars += 1;
            } else {
                self.cut = true;
            }
        }
        if !line.is_wrapped() {
            let mut done = self.pending.trim_end().to_owned();
            if self.cut {
                done.push('…');
            }
            self.ready.push(done);
            self.pending.clear();
            self.pending_chars = 0;
            self.cut = false;
        }
    }
}

impl Observer for Transcript {
    type Output = Vec<String>;

    fn before(&mut self, context: &mut Observation<'_>, operation: &Operation) {
        // A hard reset clears the screen: what it held is given out first.
        if matches!(operation, Operation::Function(Function::Ris)) {
            self.finish_primary(context.terminal());
        }
    }

    fn evicted(&mut self, _: &mut Observation<'_>, line: &Line) {
        self.push(line);
    }

    fn end(&mut self, _: &mut Observation<'_>) -> Self::Output {
        std::mem::take(&mut self.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(sizes: Vec<TerminalSize>, records: &[(&str, bool)]) -> Vec<String> {
        let mut screen = ScreenText::new(sizes);
        let mut lines = Vec::new();
        for (text, newline) in records {
            lines.extend(screen.feed(None, text, *newline));
        }
        lines.extend(screen.finish());
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn redraws_leave_what_the_screen_showed() {
        // A spinner rewriting its row, colours, then a box redrawn in place.
        let lines = render(
            vec![],
            &[
                ("\x1b[32m> \x1b[0mthinking |", true),
                ("\x1b[1A\x1b[2K> thinking /", true),
                ("\x1b[1A\x1b[2K> done", true),
                ("\x1b[?25l╭────╮", true),
                ("│ hi │", true),
                ("╰────╯", false),
            ],
        );
        assert_eq!(lines, ["> done", "╭────╮", "│ hi │", "╰────╯"]);
    }

    #[test]
    fn lines_that_scroll_away_come_out_once_in_order() {
        let records: Vec<(String, bool)> = (0..100).map(|i| (format!("line {i}"), true)).collect();
        let records: Vec<(&str, bool)> = records.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        let lines = render(vec![], &records);
        let expected: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn the_alternate_screen_leaves_only_the_main_one() {
        let lines = render(
            vec![],
            &[
                ("before", true),
                ("\x1b[?1049h\x1b[Hfull screen app", false),
                ("\x1b[?1049l", false),
                ("after", true),
            ],
        );
        assert_eq!(lines, ["before", "after"]);
    }

    #[test]
    fn hostile_output_costs_bounded_text_and_comes_out_plain() {
        // 8 bytes asking for 65,535 copies of a character, many times over.
        let bomb = "x\x1b[65535b\r\n".repeat(1000);
        let mut screen = ScreenText::new(vec![]);
        let (mut given, mut notices) = (0, 0);
        for _ in 0..15 {
            for line in screen.feed(None, &bomb, true) {
                given += line.text.len();
                notices += usize::from(line.text.starts_with("[moat: the rest of this output"));
            }
        }
        given += screen.finish().iter().map(|l| l.text.len()).sum::<usize>();
        assert!(given <= 15 * bomb.len() * GROWTH + SLACK, "{given}");
        assert_eq!(notices, 1, "the replay stopped, and said so once");
        // A repeat sequence cut between two records is clamped all the same.
        assert_eq!(
            clamp_repeats("a\x1b[655"),
            ("a".to_owned(), "\x1b[655".to_owned())
        );
        assert_eq!(clamp_repeats("\x1b[65535b").0, "\x1b[1024b");
        assert_eq!(clamp_repeats("\x1b[31mred").0, "\x1b[31mred");
        // Control and bidi characters do not reach the reader's terminal.
        let lines = render(vec![], &[("safe\u{202e}txt.exe\u{7f}\u{9b}", true)]);
        assert_eq!(lines, ["safetxt.exe"]);
        // One endless line is cut.
        let long = "y".repeat(MAX_LINE + 10);
        let lines = render(vec![], &[(&long, true)]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with('…') && lines[0].chars().count() == MAX_LINE + 1);
    }

    #[test]
    fn the_recorded_size_is_the_one_drawn_for() {
        let size = |cols, rows| TerminalSize {
            ts: "2026-12-01T10:00:00Z".parse().unwrap(),
            cols,
            rows,
        };
        // 100 columns of text on a 100-column terminal is one line, not two of 80.
        let wide = "x".repeat(100);
        assert_eq!(
            render(vec![size(100, 24)], &[(&wide, true)]),
            ["x".repeat(100)]
        );
        // A size taken later applies from its time on.
        let mut screen = ScreenText::new(vec![size(10, 2), size(20, 2), size(60_000, 60_000)]);
        let later: Timestamp = "2026-12-01T10:00:01Z".parse().unwrap();
        screen.feed(Some(later), "abc", false);
        assert_eq!(screen.terminal.size(), (1000, 500), "clamped");
    }
}
