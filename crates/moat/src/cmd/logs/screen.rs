//! The output of an interactive run as text: its bytes replayed on a virtual terminal
//! (asciinema's `avt`) of the size the run's terminal had, and the screen's lines given
//! out as they scrolled off it, then what the screen showed at the end.
//!
//! A TUI such as Claude Code draws by moving the cursor and rewriting rows; its raw bytes
//! (`moat logs --raw`) are escape codes, not text. Replayed, every redraw lands where it
//! did on the user's screen, and what is left is what they saw: a line that scrolled
//! away appears once, as it last looked. Memory is the screen's, whatever the log's size.

use std::collections::VecDeque;

use avt::Terminal;
use avt::observer::Transcript;
use jiff::Timestamp;
use moat_run::TerminalSize;

/// The size of a terminal nobody attached to (Docker's default for a container's TTY).
const DEFAULT_SIZE: (usize, usize) = (80, 24);

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
}

impl ScreenText {
    /// A screen that takes each of `sizes` from its time on (the first from the start).
    pub fn new(sizes: Vec<TerminalSize>) -> Self {
        let mut sizes: VecDeque<_> = sizes.into();
        let (cols, rows) = sizes
            .pop_front()
            .map_or(DEFAULT_SIZE, |s| (usize::from(s.cols), usize::from(s.rows)));
        ScreenText {
            terminal: Terminal::new(cols, rows).expect("sizes are positive"),
            transcript: Transcript::new(),
            sizes,
            last_ts: None,
        }
    }

    /// Feed one record of output (`newline`: it ended a line in the log, whose `\n` the
    /// log dropped); returns the lines that left the screen.
    pub fn feed(&mut self, ts: Option<Timestamp>, text: &str, newline: bool) -> Vec<ScreenLine> {
        let mut out = Vec::new();
        if let Some(ts) = ts {
            while self.sizes.front().is_some_and(|s| s.ts <= ts) {
                let size = self.sizes.pop_front().expect("checked");
                let lines = self.terminal.resize_with(
                    usize::from(size.cols),
                    usize::from(size.rows),
                    &mut self.transcript,
                );
                out.extend(
                    lines
                        .into_iter()
                        .map(|text| ScreenLine { ts: Some(ts), text }),
                );
            }
            self.last_ts = Some(ts);
        }
        // The log keeps a terminal's `\r\n` as the end of a line (the `\r` dropped), and
        // on a terminal a line ends with both (`ONLCR`).
        let lines = if newline {
            self.terminal
                .feed_with([text, "\r\n"], &mut self.transcript)
        } else {
            self.terminal.feed_with(text, &mut self.transcript)
        };
        out.extend(lines.into_iter().map(|text| ScreenLine { ts, text }));
        out
    }

    /// What the screen shows at the end (its blank rows at the bottom left out).
    pub fn finish(self) -> Vec<ScreenLine> {
        let ts = self.last_ts;
        self.transcript
            .finish(&self.terminal)
            .into_iter()
            .map(|text| ScreenLine { ts, text })
            .collect()
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
        let mut screen = ScreenText::new(vec![size(10, 2), size(20, 2)]);
        let later: Timestamp = "2026-12-01T10:00:01Z".parse().unwrap();
        screen.feed(Some(later), "abc", false);
        assert_eq!(screen.terminal.size(), (20, 2));
    }
}
