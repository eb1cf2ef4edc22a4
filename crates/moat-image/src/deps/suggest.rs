//! "Did you mean" suggestions: the known names closest to a mistyped one.

use moat_text::edit_distance;

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
