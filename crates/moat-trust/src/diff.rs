//! What changed in a workspace file since the user last trusted it, as a unified diff.

use similar::TextDiff;

/// A unified line diff from the trusted text to the current one, with three lines of
/// context; empty when they are equal.
pub fn diff(trusted: &str, current: &str, file_name: &str) -> String {
    if trusted == current {
        return String::new();
    }
    let diff = TextDiff::from_lines(trusted, current);
    let mut out = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{file_name} (trusted)"),
            &format!("{file_name} (now)"),
        )
        .to_string();
    // A last line without a newline would run into whatever is printed next.
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_one_changed_line_with_context() {
        let old = "name: p\ngrants: [anthropic]\nenv:\n  A: \"1\"\n";
        let new = "name: p\ngrants: [anthropic, github]\nenv:\n  A: \"1\"\n";
        insta::assert_snapshot!(diff(old, new, "moat.yaml"), @r#"
        --- moat.yaml (trusted)
        +++ moat.yaml (now)
        @@ -1,4 +1,4 @@
         name: p
        -grants: [anthropic]
        +grants: [anthropic, github]
         env:
           A: "1"
        "#);
    }

    #[test]
    fn equal_texts_have_no_diff_and_a_missing_newline_is_closed() {
        assert_eq!(diff("a\n", "a\n", "moat.yaml"), "");
        assert!(diff("a", "b", "moat.yaml").ends_with('\n'));
    }
}
