//! serde-saphyr's limit errors (alias bombs, absurd nesting, huge documents) in plain
//! words, for every crate that reads YAML (the configuration, provider files).
//!
//! serde-saphyr's own texts for these print its Rust values (`budget breached:
//! AliasAnchorRatio { aliases: 70, anchors: 7 }`), which tell a user nothing.

use serde_saphyr::Error;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::{Event, Parser};

/// A limit a YAML file broke, said for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlLimit {
    /// What is wrong with the file (without its name).
    pub message: String,
    /// How to fix it.
    pub hint: &'static str,
}

const ALIAS_HINT: &str = "remove the YAML aliases (`*name`) and anchors (`&name`) and write the \
                          values out: moat's files need neither";
const SIZE_HINT: &str = "moat's files are short lists of settings: check that this is the file \
                         you meant, and cut it down";

/// `1 anchor`, `7 anchors`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Whether `text` uses an alias (`*name`), read with the parser alone, which does not
/// expand them.
fn uses_aliases(text: &str) -> bool {
    Parser::new_from_str(text)
        .map_while(Result::ok)
        .any(|(event, _)| matches!(event, Event::Alias(..)))
}

/// `Some` when `error` (or the error an alias wraps) is one of serde-saphyr's limits;
/// `text` is what was parsed (an expanded alias counts against the size limits, and is
/// then what to remove).
pub fn yaml_limit(error: &Error, text: &str) -> Option<YamlLimit> {
    let mut error = error.without_snippet();
    while let Error::AliasError { error: inner, .. } = error {
        error = inner.without_snippet();
    }
    let alias = |message: String| YamlLimit {
        message,
        hint: ALIAS_HINT,
    };
    let size = |message: String| YamlLimit {
        message,
        hint: SIZE_HINT,
    };
    Some(match error {
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => {
            alias("the file uses YAML aliases beyond moat's limit: they expand to too much".into())
        }
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::AliasAnchorRatio { aliases, anchors } => alias(format!(
                "the file uses YAML aliases beyond moat's limit ({aliases} aliases of {})",
                count(*anchors, "anchor")
            )),
            BudgetBreach::Aliases { aliases } => alias(format!(
                "the file uses YAML aliases beyond moat's limit ({aliases} aliases)"
            )),
            BudgetBreach::Anchors { anchors } => alias(format!(
                "the file defines YAML anchors beyond moat's limit ({anchors} anchors)"
            )),
            BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => {
                alias("the file's YAML anchors hold more than moat's limit".into())
            }
            BudgetBreach::MergeKeys { merge_keys } => YamlLimit {
                message: format!(
                    "the file uses YAML merge keys (`<<`) beyond moat's limit ({merge_keys})"
                ),
                hint: "remove the merge keys (`<<: *name`) and write the entries out",
            },
            BudgetBreach::Depth { depth } => YamlLimit {
                message: format!("the file nests deeper than moat's limit ({depth} levels)"),
                hint: "moat's settings are a few levels deep: check the indentation and the \
                       brackets",
            },
            BudgetBreach::Documents { documents } => YamlLimit {
                message: format!("the file holds too many YAML documents ({documents})"),
                hint: "remove the `---` separators: moat reads a single document",
            },
            BudgetBreach::Events { .. }
            | BudgetBreach::Nodes { .. }
            | BudgetBreach::ScalarBytes { .. }
            | BudgetBreach::InputBytes { .. } => {
                if uses_aliases(text) {
                    alias(
                        "the file uses YAML aliases beyond moat's limit: they expand to more \
                           than moat reads"
                            .into(),
                    )
                } else {
                    size("the file is larger or more complex than moat's YAML limits".into())
                }
            }
            _ => size("the file breaks one of moat's YAML limits".into()),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each level repeats the one before nine times: 9^9 values from a few hundred bytes.
    fn alias_bomb() -> String {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let prev = format!("*a{}", level - 1);
            let items = [prev.as_str(); 9].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
        }
        text
    }

    fn parse(text: &str) -> Error {
        serde_saphyr::from_str::<serde_json::Value>(text).unwrap_err()
    }

    #[test]
    fn an_alias_bomb_is_said_in_words_with_the_fix() {
        let text = alias_bomb();
        let limit = yaml_limit(&parse(&text), &text).expect("a limit");
        assert!(
            limit
                .message
                .starts_with("the file uses YAML aliases beyond moat's limit"),
            "{limit:?}"
        );
        assert!(!limit.message.contains('{'), "no Rust values: {limit:?}");
        assert!(limit.hint.contains("remove the YAML aliases"));
    }

    #[test]
    fn many_aliases_to_one_anchor_are_said_in_words() {
        let text = format!("a: &a x\nb: [{}]\n", vec!["*a"; 2000].join(", "));
        let limit = yaml_limit(&parse(&text), &text).expect("a limit");
        assert_eq!(
            limit.message,
            "the file uses YAML aliases beyond moat's limit (2000 aliases of 1 anchor)"
        );
    }

    #[test]
    fn other_errors_are_not_limits() {
        assert_eq!(yaml_limit(&parse("a: ["), "a: ["), None);
    }
}
