//! The runs table (`moat list`, and the candidates of an ambiguous run) and ages.

use moat_run::RunRecord;

/// NAME, RUN ID, STATE, AGE.
pub fn runs_table(runs: &[RunRecord]) -> String {
    let now = jiff::Timestamp::now();
    let header = ["NAME", "RUN ID", "STATE", "SNAPSHOTS", "AGE"].map(String::from);
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|run| {
            [
                run.name.clone(),
                run.id.to_string(),
                state_cell(run),
                run.snapshots.to_string(),
                age(run.created_at, now),
            ]
        })
        .collect();
    table(&header, &rows).trim_end().to_owned()
}

/// The STATE column: the state, and what else is wrong with the run: nothing watches it
/// (its supervisor died; the next command that looks copies its log and records its end),
/// its log misses output, it left files at protected paths.
pub fn state_cell(run: &RunRecord) -> String {
    let mut cell = run.state_label();
    if run.state == moat_run::RunState::Running && !moat_run::supervisor_alive(run) {
        cell.push_str(" (supervisor gone)");
    }
    if run.logs_incomplete() {
        cell.push_str(", log incomplete");
    }
    if !run.held_back.is_empty() {
        cell.push_str(&format!(", {} held back", run.held_back.len()));
    }
    cell
}

/// What to tell the user about a run that wrote to protected paths, if it did.
pub fn held_back_notice(run: &RunRecord) -> Option<String> {
    if run.held_back.is_empty() {
        return None;
    }
    let mut text = format!(
        "moat: run {} ({}) wrote where moat protects the workspace; moved out of it:\n",
        run.id, run.name
    );
    for held in &run.held_back {
        // The path is what the run wrote: its name is the run's choice.
        text.push_str(&format!(
            "  {} ({}), kept at {}\n",
            moat_text::escaped(&held.path),
            held.change,
            moat_text::escaped(&held.kept_at.display().to_string())
        ));
    }
    text.push_str(&format!(
        "Look at it there before anything on this machine uses it; `moat accept {}` puts it back.",
        run.id
    ));
    Some(text)
}

/// A table with columns padded to their widest cell, two spaces apart; one line a row,
/// each ending in a newline. Cells often hold what a run or a repository chose (a label,
/// a plugin's name, a path), so each is shown [`moat_text::escaped`].
pub fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let rows: Vec<[std::borrow::Cow<'_, str>; N]> = std::iter::once(header)
        .chain(rows)
        .map(|row| row.each_ref().map(|cell| moat_text::escaped(cell)))
        .collect();
    let mut widths = [0usize; N];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How long ago `then` was, in the largest whole unit: `12s`, `5m`, `3h`, `2d`.
pub fn age(then: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let secs = now.as_second().saturating_sub(then.as_second()).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let t = |s| jiff::Timestamp::from_second(s).unwrap();
        assert_eq!(age(t(0), t(12)), "12s");
        assert_eq!(age(t(0), t(300)), "5m");
        assert_eq!(age(t(0), t(3 * 3600 + 5)), "3h");
        assert_eq!(age(t(0), t(2 * 86_400)), "2d");
        assert_eq!(age(t(10), t(0)), "0s");
    }

    #[test]
    fn cells_are_shown_as_text_and_aligned_as_shown() {
        let header = ["LABEL", "N"].map(String::from);
        let rows = [
            ["x\u{1b}]52;c;Qg==\u{7}\r".to_owned(), "1".to_owned()],
            ["plain".to_owned(), "2".to_owned()],
        ];
        assert_eq!(
            table(&header, &rows),
            "LABEL                     N\n\
             x\\u{1b}]52;c;Qg==\\u{7}\\r  1\n\
             plain                     2\n"
        );
    }
}
