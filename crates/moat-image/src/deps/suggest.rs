//! "Did you mean" suggestions: the known names closest to a mistyped one.

/// Edit distance between two strings, by characters: insertions, deletions, substitutions
/// and swaps of two neighbours (`gti` is one edit from `git`).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between the first i characters of `a` and the first j of `b`.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// The candidates that look like `wanted`, best first, at most three.
///
/// A candidate qualifies when it is a few edits away (about one edit per three characters)
/// or when one name contains the other (`claude` → `claude-code`). Case is ignored.
pub(crate) fn suggestions<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let wanted = wanted.to_lowercase();
    if wanted.is_empty() {
        return Vec::new();
    }
    let limit = (wanted.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = edit_distance(&wanted, candidate);
            let contains = wanted.len() >= 3
                && (candidate.contains(wanted.as_str()) || wanted.contains(candidate));
            (distance <= limit || contains).then_some((distance, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, name)| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("node", "node"), 0);
        assert_eq!(edit_distance("nod", "node"), 1);
        assert_eq!(edit_distance("pyhton", "python"), 1);
        assert_eq!(edit_distance("gti", "git"), 1);
        assert_eq!(edit_distance("", "go"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn close_names_are_suggested_best_first() {
        let names = ["node", "go", "git", "gh", "python", "claude-code"];
        assert_eq!(suggestions("nod", names), ["node"]);
        assert_eq!(suggestions("pyhton", names), ["python"]);
        assert_eq!(suggestions("claude", names), ["claude-code"]);
        assert_eq!(suggestions("gti", names), ["git"]);
        assert!(suggestions("kubernetes", names).is_empty());
        assert_eq!(suggestions("NODE", names), ["node"]);
    }
}
