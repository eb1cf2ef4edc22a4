//! `--format` templates (`moat list --format '{{.ID}}\t{{.State}}'`): text with `{{.Field}}`
//! placeholders, as `docker ps --format` and `gh --template` take them, without the rest
//! of Go's template language. Field names are the JSON fields' too: `{{.ExitCode}}` and
//! `{{.exit_code}}` are one field.

use super::UserError;

/// The long help of `--format`.
pub const TEMPLATE_HELP: &str =
    "Print each run through a template instead of the table: text with \
`{{.Field}}` placeholders (as `docker ps --format`), `\\t` for a tab, `\\n` for a new line.

Fields: ID, Name, State (created, running, exited, stopped, failed), ExitCode (empty until \
the command ended), Status (state and code, as the table shows it), Workspace, Image, \
Command, Created, Started, Finished (RFC 3339 times, empty when not yet), Age, Snapshots. \
A field is also known by its JSON name: `{{.exit_code}}` is `{{.ExitCode}}`.

Example: moat list --format '{{.ID}}\\t{{.Name}}\\t{{.State}}'";

/// A parsed template: literal text and field names, in order.
#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Field(String),
}

impl Template {
    /// Parse `text`; every field must be one of `fields` (compared without case and `_`).
    pub fn parse(text: &str, fields: &[&str]) -> Result<Template, UserError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            push_text(&mut parts, &rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(UserError::new(format!(
                    "`--format`: `{{{{` without a closing `}}}}` in `{text}`"
                ))
                .hint("write fields as `{{.ID}}`"));
            };
            let inner = after[..close].trim();
            let Some(name) = inner.strip_prefix('.') else {
                return Err(UserError::new(format!(
                    "`--format`: `{{{{{inner}}}}}` is not a field"
                ))
                .hint(format!(
                    "fields are written `{{{{.Name}}}}`: {}",
                    fields.join(", ")
                )));
            };
            let Some(field) = fields.iter().find(|f| same_field(f, name)) else {
                return Err(
                    UserError::new(format!("`--format`: there is no field `{name}`"))
                        .hint(format!("the fields are {}", fields.join(", "))),
                );
            };
            parts.push(Part::Field((*field).to_owned()));
            rest = &after[close + 2..];
        }
        push_text(&mut parts, rest);
        Ok(Template { parts })
    }

    /// The template filled in: `value` gives each field's text.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(&value(field)),
            }
        }
        out
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.replace("\\t", "\t").replace("\\n", "\n")));
    }
}

/// `ExitCode`, `exitcode` and `exit_code` are one name.
fn same_field(field: &str, name: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    norm(field) == norm(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["ID", "Name", "ExitCode"];

    fn render(text: &str) -> Result<String, String> {
        let template = Template::parse(text, FIELDS).map_err(|e| e.to_string())?;
        Ok(template.render(|f| format!("<{f}>")))
    }

    #[test]
    fn fields_text_and_escapes() {
        assert_eq!(render("{{.ID}}\\t{{ .name }}").unwrap(), "<ID>\t<Name>");
        assert_eq!(
            render("code={{.exit_code}}\\n").unwrap(),
            "code=<ExitCode>\n"
        );
        assert_eq!(render("plain").unwrap(), "plain");
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            render("{{.Nope}}").unwrap_err(),
            "`--format`: there is no field `Nope`"
        );
        assert_eq!(
            render("{{ID}}").unwrap_err(),
            "`--format`: `{{ID}}` is not a field"
        );
        assert_eq!(
            render("{{.ID").unwrap_err(),
            "`--format`: `{{` without a closing `}}` in `{{.ID`"
        );
    }
}
