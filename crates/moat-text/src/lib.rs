//! Small text helpers shared by moat's crates, so that "did you mean" suggestions measure
//! closeness the same way everywhere, a YAML file that breaks a parser limit is reported
//! in the same plain words whichever file it is, and text a run or a repository chose
//! reaches the user's terminal only as text (see [`terminal`]).

pub mod terminal;
mod yaml;

pub use terminal::{escaped, escaped_json, escaped_text, plain};
pub use yaml::{YamlLimit, yaml_limit};

/// Optimal string alignment distance, by characters: insertions, deletions, substitutions
/// and swaps of two neighbours each cost one (`gti` is one edit from `git`).
pub fn edit_distance(a: &str, b: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("git", "git"), 0);
        assert_eq!(edit_distance("gti", "git"), 1);
        assert_eq!(edit_distance("nod", "node"), 1);
        assert_eq!(edit_distance("grant", "grants"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
