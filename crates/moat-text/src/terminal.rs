//! Text from a run or a repository made safe to print on the user's terminal.
//!
//! A run's agent chooses much of what moat later shows: the URLs and headers it sent, what
//! it printed, the names of files it made, the subjects of its commits, the names in a
//! workspace's settings. A terminal acts on some characters instead of showing them:
//! control characters start escape sequences (an OSC 52 sequence writes the clipboard, a
//! carriage return or a cursor move overwrites what was shown before), and invisible
//! formatting characters reorder or hide text (a right-to-left override, a zero-width
//! space, the tag characters). Every value of that kind goes through one of these before
//! it is printed:
//!
//! - [`escaped`]: one value on one line of output (a URL, a name, a path). What the
//!   terminal would act on is written out as an escape (`\u{1b}`, `\r`), so the reader
//!   sees that it is there;
//! - [`escaped_text`]: the same for text of several lines (a hook's script, a diff), line
//!   breaks and tabs kept;
//! - [`plain`]: output as a reader expects to see it (a log line, a build step):
//!   escape sequences removed whole, the other characters a terminal would act on dropped;
//! - [`escaped_json`]: JSON output, with what serde_json leaves as it is (DEL, C1 controls,
//!   the invisible characters) written as `\u` escapes: the same value, read by a program.

use std::borrow::Cow;

/// Whether a terminal would act on `c` rather than show it as text: C0 controls, DEL and
/// C1 controls, and the invisible characters that reorder or hide text (Unicode's format
/// characters and blank fillers). Variation selectors are left alone: emoji need them,
/// and they hide nothing.
pub fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Soft hyphen, combining grapheme joiner, Arabic letter mark; the Arabic,
            // Syriac and Kaithi number signs and marks, which format what follows.
            '\u{ad}' | '\u{34f}' | '\u{61c}'
            | '\u{600}'..='\u{605}' | '\u{6dd}' | '\u{70f}' | '\u{8e2}'
            | '\u{110bd}' | '\u{110cd}'
            // Hangul fillers: blank, yet not spaces.
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}'
            // Khmer inherent vowels; Mongolian variation selectors and vowel separator.
            | '\u{17b4}' | '\u{17b5}' | '\u{180b}'..='\u{180f}'
            // Zero-width space, non-joiner and joiner; left-to-right and right-to-left marks.
            | '\u{200b}'..='\u{200f}'
            // Line and paragraph separators; the bidirectional embeddings and overrides.
            | '\u{2028}'..='\u{202e}'
            // Word joiner, invisible operators, the bidirectional isolates and the
            // deprecated format characters.
            | '\u{2060}'..='\u{206f}'
            // Byte-order mark (zero-width no-break space); interlinear annotation.
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            // Egyptian hieroglyph, shorthand and musical format controls.
            | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
            // Tag characters: invisible, and read by language models as text.
            | '\u{e0000}'..='\u{e007f}'
        )
}

/// `value` for one line of output, with every character a terminal would act on (line
/// breaks and tabs included) written as an escape: `\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`.
pub fn escaped(value: &str) -> Cow<'_, str> {
    escape(value, |_| false)
}

/// `text` of several lines, with line breaks and tabs kept and every other character a
/// terminal would act on written as an escape, as in [`escaped`].
pub fn escaped_text(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| acts_on_terminal(c) && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

/// Serialised JSON with every character a terminal would act on written as a `\u` escape
/// (a surrogate pair beyond the first plane), so the document means the same to a program
/// and shows as text on a terminal. serde_json escapes C0 controls itself; line breaks and
/// tabs outside strings are layout and are kept. Such characters can only stand inside
/// strings (JSON has no other place for them), where `\u` is the same character.
pub fn escaped_json(json: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| acts_on_terminal(c) && c != '\n' && c != '\t';
    if !json.chars().any(unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    let mut units = [0u16; 2];
    for c in json.chars() {
        if unsafe_char(c) {
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `line` as a reader expects to see it: escape sequences (CSI such as colours, OSC such as
/// titles and clipboard writes, and the rest) removed whole, and every other character a
/// terminal would act on dropped, tabs and line breaks kept. What a carriage return
/// overwrote stays: the text is shown, not replayed.
pub fn plain(line: &str) -> Cow<'_, str> {
    if !line
        .chars()
        .any(|c| acts_on_terminal(c) && c != '\t' && c != '\n')
    {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' | '\n' => out.push(c),
            '\u{1b}' => skip_escape_sequence(&mut chars),
            // The C1 forms of CSI, OSC, DCS, SOS, PM and APC.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if acts_on_terminal(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// After an ESC: the rest of its sequence.
fn skip_escape_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        // OSC, DCS, SOS, PM, APC: a string up to its terminator.
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Intermediate bytes, then one final byte (`ESC ( B`, `ESC # 8`).
        Some(' '..='/') => {
            while let Some(&c) = chars.peek() {
                chars.next();
                if !(' '..='/').contains(&c) {
                    break;
                }
            }
        }
        // A two-character sequence (`ESC c`, `ESC 7`), or an ESC at the end.
        Some(_) | None => {}
    }
}

/// A control sequence's parameters and intermediates, up to and including its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
        // Anything else than parameters and intermediates ends a malformed sequence.
        if !(' '..='?').contains(&c) {
            break;
        }
    }
}

/// A control string (OSC's title or clipboard text), up to BEL or ST (`ESC \`, or C1 ST).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed_as_they_are() {
        for value in [
            "https://api.test/v1/messages?x=1",
            "café 東京 ✓",
            "a\\u{1b}b",
            "",
        ] {
            assert!(matches!(escaped(value), Cow::Borrowed(_)), "{value}");
            assert!(matches!(plain(value), Cow::Borrowed(_)), "{value}");
        }
        assert!(matches!(escaped_text("a\n\tb\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn what_a_terminal_acts_on_is_shown_as_an_escape() {
        assert_eq!(
            escaped("x\u{1b}]52;c;Y3VybA==\u{7}y"),
            "x\\u{1b}]52;c;Y3VybA==\\u{7}y"
        );
        assert_eq!(escaped("ok\rFAKE\n"), "ok\\rFAKE\\n");
        assert_eq!(escaped("a\tb"), "a\\tb");
        assert_eq!(escaped("gnp.\u{202e}exe"), "gnp.\\u{202e}exe");
        assert_eq!(escaped("a\u{9b}2Jb\u{7f}"), "a\\u{9b}2Jb\\u{7f}");
        assert_eq!(
            escaped("in\u{200b}visible\u{e0041}"),
            "in\\u{200b}visible\\u{e0041}"
        );
        assert_eq!(escaped("\u{feff}bom"), "\\u{feff}bom");
    }

    #[test]
    fn text_keeps_its_lines_and_tabs() {
        assert_eq!(
            escaped_text("set -e\n\tcurl x\r\u{1b}[2K\u{1b}[5Fapt-get install tree\n"),
            "set -e\n\tcurl x\\r\\u{1b}[2K\\u{1b}[5Fapt-get install tree\n"
        );
    }

    #[test]
    fn json_means_the_same_and_shows_as_text() {
        let value = serde_json::json!({
            "url": "https://x.test/\u{9d}52;c;Qg==\u{9c}/\u{202e}gnp",
            "tag": "a\u{e0041}\u{7f}",
            "plain": "café\n\u{1b}",
        });
        let json = serde_json::to_string_pretty(&value).unwrap();
        let shown = escaped_json(&json);
        assert!(
            !shown.chars().any(|c| acts_on_terminal(c) && c != '\n'),
            "{shown}"
        );
        assert!(
            shown.contains("\\u009d") && shown.contains("\\udb40\\udc41"),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
        assert!(matches!(
            escaped_json(&serde_json::to_string(&"ok").unwrap()),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn plain_removes_whole_sequences_and_drops_the_rest() {
        assert_eq!(plain("\u{1b}[1;31merror\u{1b}[0m: x"), "error: x");
        assert_eq!(plain("a\u{1b}]52;c;Y3VybA==\u{7}b"), "ab");
        assert_eq!(plain("a\u{1b}]0;title\u{1b}\\b"), "ab");
        assert_eq!(plain("a\u{1b}]8;;https://evil.test\u{9c}link"), "alink");
        assert_eq!(plain("a\u{9b}2Jb"), "ab");
        assert_eq!(plain("a\u{1b}(Bb\u{1b}7c"), "abc");
        assert_eq!(plain("50%\r100%\tdone\n"), "50%100%\tdone\n");
        assert_eq!(plain("gnp.\u{202e}exe\u{200b}"), "gnp.exe");
        // A sequence cut short at the end of the line goes with it.
        assert_eq!(plain("x\u{1b}[12"), "x");
        assert_eq!(plain("x\u{1b}]52;c;abc"), "x");
        assert_eq!(plain("x\u{1b}"), "x");
    }

    #[test]
    fn nothing_a_terminal_acts_on_survives_any_of_them() {
        let kept = |c: char| c == '\n' || c == '\t';
        let left = |shown: &str, allowed: &dyn Fn(char) -> bool| -> Vec<char> {
            shown
                .chars()
                .filter(|&c| acts_on_terminal(c) && !allowed(c))
                .collect()
        };
        // Every character up to the end of the tag block: all in one run, and each alone.
        let all: String = (0u32..=0xe007f).filter_map(char::from_u32).collect();
        assert_eq!(left(&escaped(&all), &|_| false), []);
        assert_eq!(left(&escaped_text(&all), &kept), []);
        assert_eq!(left(&plain(&all), &kept), []);
        for c in all.chars() {
            let one = format!("a{c}b");
            assert_eq!(left(&escaped(&one), &|_| false), [], "{c:?}");
            assert_eq!(left(&plain(&one), &kept), [], "{c:?}");
        }
    }
}
