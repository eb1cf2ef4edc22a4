//! Reading YAML into the file schemas, and turning serde-saphyr's errors into
//! [`ConfigError`]s that name the field (`network.allow`) and say how to fix it.
//!
//! serde-saphyr reports a position but not the field it belongs to, so [`PathIndex`] walks
//! the document's events once more to learn which dotted path starts where.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, MessageFormatter, Options, Spanned};

use crate::error::{ConfigError, SourceLocation};
use crate::suggest;

/// Parse one YAML document of `text` (read from `path`, which names it in errors).
///
/// An empty document (or one holding only comments) is `T::default()`.
pub(crate) fn parse<T: DeserializeOwned + Default>(
    path: &Path,
    text: &str,
    fields: &FieldNotes,
) -> Result<T, ConfigError> {
    let mut options = Options::default();
    // Both are the defaults today; they are what moat promises, so say so.
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.strict_booleans = false;
    // An unknown `!tag` would otherwise be dropped without a word.
    options.reject_unsupported_tags = true;
    // Errors are rendered by us, with the field path; the snippet would be unused work.
    options.with_snippet = false;
    match serde_saphyr::from_str_with_options::<Option<T>>(text, options) {
        Ok(value) => Ok(value.unwrap_or_default()),
        Err(error) => Err(translate(path, text, &error, fields)),
    }
}

/// What to tell the user about fields of one file schema.
pub(crate) struct FieldNotes {
    /// A short example for a field path (`[]` stands for any list index), shown when the
    /// value there has the wrong type.
    pub example: fn(&str) -> Option<&'static str>,
    /// Why a known-but-unsupported field (from moat's Go original) is refused.
    pub unsupported: fn(&str) -> Option<&'static str>,
}

/// The location serde-saphyr gives a `Spanned` value, in `path`.
pub(crate) fn location<T>(path: &Path, spanned: &Spanned<T>) -> SourceLocation {
    SourceLocation {
        path: path.to_owned(),
        line: usize::try_from(spanned.referenced.line()).unwrap_or(usize::MAX),
        column: usize::try_from(spanned.referenced.column()).unwrap_or(usize::MAX),
    }
}

fn translate(path: &Path, text: &str, error: &YamlError, fields: &FieldNotes) -> ConfigError {
    // Alias and snippet wrappers carry the original error inside.
    let mut error = error.without_snippet();
    while let YamlError::AliasError { error: inner, .. } = error {
        error = inner.without_snippet();
    }
    let position = error
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .filter(|&(line, _)| line > 0);
    let located = |message: String| match position {
        Some((line, column)) => ConfigError {
            path: Some(path.to_owned()),
            line: Some(line),
            column: Some(column),
            message,
            hint: None,
        },
        None => ConfigError::in_file(path, message),
    };
    // An alias bomb or absurd nesting: serde-saphyr's own words for these are Rust values.
    if let Some(limit) = moat_text::yaml_limit(error, text) {
        return located(limit.message).with_hint(limit.hint);
    }
    let want_key = matches!(
        error,
        YamlError::SerdeUnknownField { .. } | YamlError::DuplicateMappingKey { .. }
    );
    let index = PathIndex::new(text);
    let node = position.and_then(|(line, column)| index.node_at(line, column, want_key));
    let field = node.as_ref().map(|n| n.path.as_str()).unwrap_or("");
    let example = (fields.example)(&normalize(field));
    let with_example = |error: ConfigError, fallback: String| match example {
        Some(example) => error.with_hint(format!("for example `{example}`")),
        None => error.with_hint(fallback),
    };

    match error {
        YamlError::SerdeUnknownField {
            field: unknown,
            expected,
            ..
        } => {
            let parent = parent_of(field);
            let message = if parent.is_empty() {
                format!("unknown field `{unknown}`")
            } else {
                format!("unknown field `{unknown}` in `{parent}`")
            };
            let hint = if let Some(why) = (fields.unsupported)(&normalize(field)) {
                why.to_owned()
            } else if let Some(close) = suggest::closest(unknown, expected) {
                format!("did you mean `{close}`?")
            } else {
                format!(
                    "remove it; the fields allowed here are {}",
                    suggest::one_of(expected)
                )
            };
            located(message).with_hint(hint)
        }
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.clone().unwrap_or_else(|| "?".into());
            let parent = parent_of(field);
            let message = if parent.is_empty() {
                format!("duplicate key `{key}`")
            } else {
                format!("duplicate key `{key}` in `{parent}`")
            };
            let earlier =
                position.and_then(|(line, column)| index.earlier_key(field, line, column));
            let hint = match earlier {
                Some(line) => format!("`{key}` is already set on line {line}; keep one of them"),
                None => format!("keep one `{key}` entry"),
            };
            located(message).with_hint(hint)
        }
        YamlError::Unexpected { expected, .. } => {
            let wanted = match *expected {
                "sequence start" => "a list",
                "mapping start" | "empty mapping start" => "a mapping of `key: value` entries",
                "string scalar" => "a string",
                "scalar" | "value" => "a single value",
                other => other,
            };
            let message = if field.is_empty() && wanted.contains("mapping") {
                "the file must hold `key: value` settings".to_owned()
            } else if field.is_empty() {
                format!("expected {wanted} here")
            } else {
                format!("`{field}` must be {wanted}")
            };
            with_example(located(message), format!("write {wanted} here"))
        }
        YamlError::InvalidScalar { ty, .. } => {
            let wanted = scalar_noun(ty);
            let message = if field.is_empty() {
                format!("invalid value: expected {wanted}")
            } else {
                format!("`{field}` must be {wanted}")
            };
            with_example(located(message), format!("write {wanted} here"))
        }
        YamlError::InvalidBooleanStrict { .. } => with_example(
            located(format!("`{field}` must be `true` or `false`")),
            "write `true` or `false`".into(),
        ),
        YamlError::NullIntoString { .. } => {
            let message = if field.is_empty() {
                "a value is missing here".to_owned()
            } else {
                format!("`{field}` has no value")
            };
            located(message).with_hint("write a value after the colon, or remove the entry")
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => {
            let message = if field.is_empty() {
                format!("expected {expected}, found {unexpected}")
            } else {
                format!("`{field}` must be {expected}, not {unexpected}")
            };
            with_example(located(message), format!("write {expected} here"))
        }
        YamlError::SerdeMissingField { field: missing, .. } => {
            let message = if field.is_empty() {
                format!("missing field `{missing}`")
            } else {
                format!("`{field}` is missing the field `{missing}`")
            };
            located(message).with_hint(format!("add `{missing}:` with a value"))
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let hint = match suggest::closest(variant, expected) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use {}", suggest::one_of(expected)),
            };
            located(format!("unknown value `{variant}` for `{field}`")).with_hint(hint)
        }
        YamlError::MultipleDocuments { .. } => {
            located("the file holds more than one YAML document".into())
                .with_hint("remove the `---` separator: moat reads a single document")
        }
        YamlError::UnsupportedTag { tag, .. } => located(format!("unsupported YAML tag `{tag}`"))
            .with_hint("remove the tag; moat reads plain YAML values"),
        YamlError::InvalidUtf8Input => ConfigError::in_file(path, "the file is not valid UTF-8")
            .with_hint("save it as UTF-8 text"),
        other => {
            let message = serde_saphyr::UserMessageFormatter.format_message(other);
            located(format!("invalid YAML: {}", shown(&message)))
                .with_hint("check the indentation and quoting at this spot")
        }
    }
}

fn scalar_noun(ty: &str) -> &'static str {
    match ty {
        "boolean" | "bool" => "`true` or `false`",
        "f32" | "f64" | "floating point" => "a number",
        t if t.starts_with('u') || t.starts_with('i') => "a whole number",
        "char" => "a single character",
        _ => "a different kind of value",
    }
}

/// `network.allow` for `network.allow[2]`; `` for `name`.
fn parent_of(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// `mcp[].url` for `mcp[3].url`: list positions do not change what a field is.
pub(crate) fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The dotted path of every node of a document and where it starts.
#[derive(Debug)]
pub(crate) struct PathIndex {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub line: usize,
    pub column: usize,
    /// `network.allow[1]`; for a mapping key, the path the key names.
    pub path: String,
    pub is_key: bool,
}

enum Frame {
    Mapping {
        key: Option<String>,
        awaiting_key: bool,
    },
    Sequence {
        next: usize,
    },
}

impl PathIndex {
    /// Index as much of `text` as parses; a syntax error just ends the index early.
    pub(crate) fn new(text: &str) -> Self {
        let mut nodes = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let line = span.start.line();
            let column = span.start.col() + 1;
            let starts_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::Alias(..)
                    | Event::SequenceStart(..)
                    | Event::MappingStart(..)
            );
            if starts_node {
                let parent = path_of(&stack);
                let (path, is_key) = match stack.last_mut() {
                    Some(Frame::Mapping { key, awaiting_key }) if *awaiting_key => {
                        let name = match &event {
                            Event::Scalar(value, ..) => value.to_string(),
                            _ => "?".to_owned(),
                        };
                        *key = Some(name.clone());
                        (join(&parent, &name), true)
                    }
                    Some(Frame::Sequence { next }) => {
                        let path = format!("{parent}[{next}]");
                        *next += 1;
                        (path, false)
                    }
                    _ => (parent, false),
                };
                nodes.push(Node {
                    line,
                    column,
                    path,
                    is_key,
                });
                // The node taking a key's place flips the mapping back to "key next".
                if let Some(Frame::Mapping { awaiting_key, .. }) = stack.last_mut() {
                    *awaiting_key = !*awaiting_key;
                }
            }
            match event {
                Event::MappingStart(..) => stack.push(Frame::Mapping {
                    key: None,
                    awaiting_key: true,
                }),
                Event::SequenceStart(..) => stack.push(Frame::Sequence { next: 0 }),
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        PathIndex { nodes }
    }

    /// The node starting at this position, or else the last one before it.
    ///
    /// A block mapping starts where its first key does; `want_key` says which of the two
    /// the caller means (the key for an unknown field, the mapping for a wrong type).
    pub(crate) fn node_at(&self, line: usize, column: usize, want_key: bool) -> Option<Node> {
        let mut here = self
            .nodes
            .iter()
            .filter(|n| n.line == line && n.column == column);
        let exact = if want_key {
            here.clone().find(|n| n.is_key).or_else(|| here.next())
        } else {
            here.clone().find(|n| !n.is_key).or_else(|| here.next())
        };
        exact
            .or_else(|| {
                self.nodes
                    .iter()
                    .rev()
                    .find(|n| (n.line, n.column) < (line, column))
            })
            .cloned()
    }

    /// The line of an earlier key naming the same path, for duplicate keys.
    fn earlier_key(&self, path: &str, line: usize, column: usize) -> Option<usize> {
        self.nodes
            .iter()
            .find(|n| n.is_key && n.path == path && (n.line, n.column) < (line, column))
            .map(|n| n.line)
    }
}

fn path_of(stack: &[Frame]) -> String {
    let mut path = String::new();
    for (depth, frame) in stack.iter().enumerate() {
        match frame {
            Frame::Mapping {
                key: Some(key),
                awaiting_key: true,
            } if depth + 1 < stack.len() => path = join(&path, key),
            // A mapping whose value is being read names its key in the path.
            Frame::Mapping {
                key: Some(key),
                awaiting_key: false,
            } => path = join(&path, key),
            Frame::Sequence { next } if depth + 1 < stack.len() => {
                // The item being read is the one before `next`.
                path = format!("{path}[{}]", next.saturating_sub(1));
            }
            _ => {}
        }
    }
    path
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A YAML mapping read in file order with the position of every key, so values can be
/// checked and reported where they are. Duplicate keys were already refused by the parser.
#[derive(Debug)]
pub(crate) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: de::Deserialize<'de>> de::Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: de::Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of `key: value` entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A field that takes either one string or a list of strings (`command`, `connect_to`).
///
/// Its visitor never fails on the shape of the value: serde-saphyr cannot place errors
/// raised by a custom visitor, so a wrong shape comes back as `Wrong` and is reported at
/// the value's own position by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StringOrList {
    One(String),
    List(Vec<String>),
    /// What was found instead (`a mapping`).
    Wrong(&'static str),
}

impl<'de> de::Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringOrListVisitor;
        impl<'de> Visitor<'de> for StringOrListVisitor {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrList::One(v.to_owned()))
            }
            // Other scalars read as their text, as they do for any string field.
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(StringOrList::One(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StringOrList::One(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StringOrList::One(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(StringOrList::One(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(StringOrList::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(StringOrList::Wrong("a mapping"))
            }
        }
        deserializer.deserialize_any(StringOrListVisitor)
    }
}

/// A field that takes a whole number or a string (`memory: 4096` or `memory: 4g`). Like
/// [`StringOrList`], a wrong shape comes back as `Wrong` for the caller to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NumberOrString {
    Number(u64),
    Text(String),
    Wrong(&'static str),
}

impl<'de> de::Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberOrStringVisitor;
        impl<'de> Visitor<'de> for NumberOrStringVisitor {
            type Value = NumberOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number or a string such as `4g`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(NumberOrString::Number(v))
            }
            // Negative and fractional numbers are refused with the words of other bad sizes.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(NumberOrString::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(NumberOrString::Text(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(NumberOrString::Text(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(NumberOrString::Wrong("a boolean"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(NumberOrString::Wrong("a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(NumberOrString::Wrong("a mapping"))
            }
        }
        deserializer.deserialize_any(NumberOrStringVisitor)
    }
}

/// Show a user's string in a message without letting control characters through.
pub(crate) fn shown(value: &str) -> Cow<'_, str> {
    if value.chars().any(char::is_control) {
        Cow::Owned(value.escape_debug().to_string())
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<(usize, usize, String, bool)> {
        PathIndex::new(text)
            .nodes
            .into_iter()
            .map(|n| (n.line, n.column, n.path, n.is_key))
            .collect()
    }

    #[test]
    fn index_names_nested_keys_values_and_list_items() {
        let text = "name: x\nnetwork:\n  allow:\n    - a.com\n    - b.com\nmcp:\n  - name: m\n    url: u\n";
        let got = paths(text);
        let want: Vec<(usize, usize, String, bool)> = vec![
            (1, 1, "".into(), false),
            (1, 1, "name".into(), true),
            (1, 7, "name".into(), false),
            (2, 1, "network".into(), true),
            (3, 3, "network".into(), false),
            (3, 3, "network.allow".into(), true),
            (4, 5, "network.allow".into(), false),
            (4, 7, "network.allow[0]".into(), false),
            (5, 7, "network.allow[1]".into(), false),
            (6, 1, "mcp".into(), true),
            (7, 3, "mcp".into(), false),
            (7, 5, "mcp[0]".into(), false),
            (7, 5, "mcp[0].name".into(), true),
            (7, 11, "mcp[0].name".into(), false),
            (8, 5, "mcp[0].url".into(), true),
            (8, 10, "mcp[0].url".into(), false),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn index_handles_flow_collections() {
        let got = paths("env: {A: 1, B: 2}\nports: [1, 2]\n");
        assert!(got.contains(&(1, 13, "env.B".into(), true)));
        assert!(got.contains(&(2, 12, "ports[1]".into(), false)));
    }

    #[test]
    fn normalize_drops_list_positions() {
        assert_eq!(normalize("mcp[3].auth.grant"), "mcp[].auth.grant");
        assert_eq!(normalize("name"), "name");
        assert_eq!(parent_of("mcp[3].auth"), "mcp[3]");
        assert_eq!(parent_of("network.allow[2]"), "network.allow");
        assert_eq!(parent_of("name"), "");
    }
}
