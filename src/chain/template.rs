//! Prompt templates: literal text with `{{column}}` and `{{previous}}` placeholders.
//!
//! Parsed once at load time so a typo is reported with its column before any call is made,
//! and rendering on the hot path is a plain concatenation.

use std::collections::BTreeMap;

use thiserror::Error;

/// The placeholder that stands for the previous step's output.
pub const PREVIOUS: &str = "previous";

/// A template that failed to parse; `column` is 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("column {column}: '{{{{' is not closed by '}}}}'")]
    Unclosed { column: usize },
    /// `{{}}` or a name with characters other than letters, digits, `_`, `-`, `.`.
    #[error(
        "column {column}: invalid placeholder name {name:?} (use letters, digits, '_', '-' or '.')"
    )]
    BadName { column: usize, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
    Previous,
}

/// A parsed prompt or body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `{{name}}` placeholders; whitespace inside the braces is ignored.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0usize; // byte offset of `rest` in `source`
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let column = source[..offset + open].chars().count() + 1;
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed { column })?;
            let name = after[..close].trim();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(TemplateError::BadName {
                    column,
                    name: name.to_string(),
                });
            }
            parts.push(if name == PREVIOUS {
                Part::Previous
            } else {
                Part::Var(name.to_string())
            });
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// Column names the template needs (without `previous`), in order of appearance.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether the template uses the previous step's output.
    pub fn uses_previous(&self) -> bool {
        self.parts.contains(&Part::Previous)
    }

    /// Fills the placeholders. Columns were checked at load time; a missing one renders empty.
    pub fn render(&self, vars: &BTreeMap<String, String>, previous: Option<&str>) -> String {
        let mut out = String::with_capacity(self.source.len() + previous.map_or(0, str::len));
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(vars.get(v).map_or("", String::as_str)),
                Part::Previous => out.push_str(previous.unwrap_or("")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_columns_and_previous() {
        let t = Template::parse("Write about {{ topic }} using: {{previous}}!").unwrap();
        let out = t.render(&vars(&[("topic", "rust")]), Some("notes"));
        assert_eq!(out, "Write about rust using: notes!");
        assert_eq!(t.columns().collect::<Vec<_>>(), vec!["topic"]);
        assert!(t.uses_previous());
    }

    #[test]
    fn text_without_placeholders_is_kept() {
        let t = Template::parse("plain { text }").unwrap();
        assert_eq!(t.render(&BTreeMap::new(), None), "plain { text }");
    }

    #[test]
    fn unclosed_placeholder_names_its_column() {
        let err = Template::parse("héllo {{topic").unwrap_err();
        assert_eq!(err, TemplateError::Unclosed { column: 7 });
        assert!(err.to_string().contains("column 7"));
    }

    #[test]
    fn empty_or_bad_names_are_rejected() {
        assert!(matches!(
            Template::parse("a {{ }} b"),
            Err(TemplateError::BadName { column: 3, .. })
        ));
        assert!(Template::parse("{{a b}}").is_err());
    }
}
