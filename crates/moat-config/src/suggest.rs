//! "Did you mean ...?": the closest valid word to a misspelt one, by edit distance.

use moat_text::edit_distance;

/// The candidate nearest to `word`, if it is near enough to be a plausible typo.
///
/// Case is ignored. "Near enough" grows with the word: one edit for short words, about a
/// third of the letters for long ones (`dependency` → `dependencies` is three edits).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|candidate| {
            (
                edit_distance(&word, &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `a`, `b` or `c` for a message.
pub(crate) fn one_of(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["name", "dependencies", "grants", "env", "mounts", "mcp"];

    #[test]
    fn distances() {
        assert_eq!(edit_distance("grant", "grants"), 1);
        assert_eq!(edit_distance("dependency", "dependencies"), 3);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggests_the_nearest_plausible_field() {
        assert_eq!(closest("grant", FIELDS), Some("grants"));
        assert_eq!(closest("Grants", FIELDS), Some("grants"));
        assert_eq!(closest("dependency", FIELDS), Some("dependencies"));
        assert_eq!(closest("nmae", FIELDS), Some("name"));
        assert_eq!(closest("mount", FIELDS), Some("mounts"));
    }

    #[test]
    fn suggests_nothing_when_nothing_is_close() {
        assert_eq!(closest("volumes", FIELDS), None);
        assert_eq!(closest("x", FIELDS), None);
    }

    #[test]
    fn lists_choices() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b"]), "`a` or `b`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
