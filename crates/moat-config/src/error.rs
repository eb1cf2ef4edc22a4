//! Configuration problems: where each one is (file, line, column) and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem with the configuration.
///
/// `path` is the file the problem is in, as the loader was given it; it is `None` when the
/// value came from the command line or the environment (the message then names the flag
/// or variable). `line` and `column` are 1-based and present when the problem has a place
/// in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    /// A problem at a place in a file.
    pub fn at(location: &SourceLocation, message: impl Into<String>) -> Self {
        ConfigError {
            path: Some(location.path.clone()),
            line: Some(location.line),
            column: Some(location.column),
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with a whole file (it cannot be read, or it clashes with another file).
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            path: Some(path.to_owned()),
            line: None,
            column: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with a value from the command line or the environment; the message names
    /// the flag or the variable.
    pub fn input(message: impl Into<String>) -> Self {
        ConfigError {
            path: None,
            line: None,
            column: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Attach how to fix it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// How the user fixes it, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}", path.display())?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a value sits in a configuration file (1-based line and column).
///
/// Kept with values another crate validates later (dependency strings), so that crate can
/// report `agent.yaml:LINE:COL` through [`SourceLocation::error`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceLocation {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl SourceLocation {
    /// A [`ConfigError`] pointing here.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self, message)
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Every problem found, never empty, in file order.
///
/// A YAML or schema error (bad syntax, unknown field, wrong type, duplicate key) stops the
/// reading of that file at once, because nothing after it can be trusted; the value checks
/// that follow (env names, mounts, host patterns, ...) all run, so one attempt reports every
/// bad value together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// `None` when there is nothing to report.
    pub fn from_vec(errors: Vec<ConfigError>) -> Option<Self> {
        (!errors.is_empty()).then(|| Self::sorted(errors))
    }

    fn sorted(mut errors: Vec<ConfigError>) -> Self {
        // Stable: problems without a position keep the order they were found in.
        errors.sort_by(|a, b| {
            (a.path.is_none(), &a.path, a.line, a.column).cmp(&(
                b.path.is_none(),
                &b.path,
                b.line,
                b.column,
            ))
        });
        ConfigErrors(errors)
    }

    /// Both lists in one, in file order.
    pub(crate) fn merge(self, other: ConfigErrors) -> ConfigErrors {
        let mut all = self.0;
        all.extend(other.0);
        ConfigErrors::sorted(all)
    }

    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `ConfigErrors` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }

    /// The fix for a single problem. With several, each hint is printed under its problem
    /// by `Display` and this is `None`.
    pub fn hint(&self) -> Option<&str> {
        match self.0.as_slice() {
            [only] => only.hint(),
            _ => None,
        }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0.as_slice() {
            return only.fmt(f);
        }
        write!(f, "{} problems in the configuration:", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
            if let Some(hint) = error.hint() {
                write!(f, "\n    hint: {hint}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Problems gathered while checking values, so all of them are reported together.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<ConfigError>);

impl Problems {
    pub(crate) fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// `Ok(value)` when nothing was found.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        match ConfigErrors::from_vec(self.0) {
            None => Ok(value),
            Some(errors) => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_and_column() {
        let location = SourceLocation {
            path: "agent.yaml".into(),
            line: 3,
            column: 5,
        };
        let error = location
            .error("unknown field `grant`")
            .with_hint("did you mean `grants`?");
        assert_eq!(error.to_string(), "agent.yaml:3:5: unknown field `grant`");
        assert_eq!(error.hint(), Some("did you mean `grants`?"));
    }

    #[test]
    fn display_without_position_or_file() {
        let file = ConfigError::in_file(Path::new("moat.yaml"), "cannot read it");
        assert_eq!(file.to_string(), "moat.yaml: cannot read it");
        let flag = ConfigError::input("invalid `--grant` `a b`");
        assert_eq!(flag.to_string(), "invalid `--grant` `a b`");
    }

    #[test]
    fn several_problems_are_listed_in_file_order_with_their_hints() {
        let at = |line| SourceLocation {
            path: "agent.yaml".into(),
            line,
            column: 1,
        };
        let errors = ConfigErrors::from_vec(vec![
            ConfigError::input("invalid `--env` key `1A`"),
            at(7).error("second").with_hint("fix the second"),
            at(2).error("first"),
        ])
        .unwrap();
        assert_eq!(errors.hint(), None);
        insta::assert_snapshot!(errors.to_string(), @r"
        3 problems in the configuration:
          agent.yaml:2:1: first
          agent.yaml:7:1: second
            hint: fix the second
          invalid `--env` key `1A`
        ");
    }

    #[test]
    fn a_single_problem_displays_alone_and_keeps_its_hint() {
        let errors: ConfigErrors = ConfigError::input("bad").with_hint("fix").into();
        assert_eq!(errors.to_string(), "bad");
        assert_eq!(errors.hint(), Some("fix"));
        assert_eq!(errors.len(), 1);
    }
}
