//! Chains: ordered steps whose prompts are templates over a row's columns and the previous
//! step's output. Owns loading and checking chain files; knows nothing about HTTP.

mod template;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

pub use template::{Template, TemplateError};

/// One input row of a batch: an id and its named columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Stable identifier, used in logs, results and retries.
    pub id: String,
    /// Column name → value, as templates see them.
    pub vars: BTreeMap<String, String>,
}

impl Row {
    /// Column names of [`Row::synthetic`] rows, which templates in a sweep may use.
    pub fn synthetic_columns() -> Vec<String> {
        vec!["id".to_string(), "topic".to_string()]
    }

    /// The synthetic rows a sweep uses: ids `1..=n`, one `topic` column.
    pub fn synthetic(n: usize) -> Vec<Row> {
        (0..n).map(Row::synthetic_at).collect()
    }

    /// Synthetic row number `index` (0-based; its id is `index + 1`).
    pub fn synthetic_at(index: usize) -> Row {
        let i = index + 1;
        let mut vars = BTreeMap::new();
        vars.insert("id".to_string(), i.to_string());
        vars.insert("topic".to_string(), format!("topic {i}"));
        Row {
            id: i.to_string(),
            vars,
        }
    }
}

/// Rows kept elsewhere in a compact form (a manifest's text), made one at a time when a chain
/// needs one, so a batch of a million rows holds no million maps of cells.
pub trait RowSource: Send + Sync + std::fmt::Debug {
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `index` (0-based).
    fn row(&self, index: usize) -> Row;
}

/// Where a batch's synthetic rows sit in the whole run's numbering: batch row `k` is row
/// `first + k·stride` (0-based) of the whole run. A `--segment` uses it to send exactly the
/// rows the whole run would have sent: a sized batch takes its contiguous share (stride 1), a
/// soak of unknown length every n-th row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    /// The whole run's index of the batch's first row.
    pub first: usize,
    /// The step between two of the batch's rows in the whole run (≥ 1).
    pub stride: usize,
}

impl Numbering {
    /// The whole run itself: batch row k is row k.
    pub const WHOLE: Numbering = Numbering {
        first: 0,
        stride: 1,
    };

    /// The whole run's index of batch row `k`.
    pub fn global(self, k: usize) -> usize {
        self.first.saturating_add(k.saturating_mul(self.stride))
    }
}

/// The rows of a batch: a sweep's synthetic rows, made when a chain needs one (a sweep of a
/// million chains holds no million rows), rows in memory, or rows from a [`RowSource`].
#[derive(Debug, Clone)]
pub enum Rows {
    /// `n` rows as [`Row::synthetic_at`] makes them, numbered as the whole run numbers them.
    Synthetic(usize, Numbering),
    /// Rows held whole in memory.
    Listed(Arc<[Row]>),
    /// Rows made on demand by their source (a manifest).
    Source(Arc<dyn RowSource>),
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Synthetic(n, _) => *n,
            Rows::Listed(rows) => rows.len(),
            Rows::Source(source) => source.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `index` (0-based), borrowed when listed, made when synthetic.
    pub fn get(&self, index: usize) -> Cow<'_, Row> {
        match self {
            Rows::Synthetic(_, at) => Cow::Owned(Row::synthetic_at(at.global(index))),
            Rows::Listed(rows) => Cow::Borrowed(&rows[index]),
            Rows::Source(source) => Cow::Owned(source.row(index)),
        }
    }
}

impl From<Vec<Row>> for Rows {
    fn from(rows: Vec<Row>) -> Rows {
        Rows::Listed(rows.into())
    }
}

impl From<Arc<[Row]>> for Rows {
    fn from(rows: Arc<[Row]>) -> Rows {
        Rows::Listed(rows)
    }
}

/// One step of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Name shown in logs and reports (`research`, `write`, …).
    pub name: String,
    /// The user message (OpenAI format) or request body (raw format).
    pub prompt: Template,
    /// Optional system message (OpenAI format only).
    pub system: Option<Template>,
    /// Optional `max_tokens` for this step.
    pub max_tokens: Option<u32>,
}

/// An ordered list of dependent steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Steps in the order they run; never empty.
    pub steps: Vec<Step>,
    /// The chain file's `price = "in=..,out=.."` (per 1M tokens), checked when loaded;
    /// `--price` overrides it.
    pub price: Option<String>,
}

/// A chain file that cannot be used.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The file could not be read.
    #[error("cannot read chain file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("chain file {path}: {message}")]
    Toml { path: PathBuf, message: String },
    /// A step's template does not parse.
    #[error("chain file {path}: step {step:?} {field}: {source}")]
    Template {
        path: PathBuf,
        step: String,
        field: &'static str,
        source: TemplateError,
    },
    /// A template names a column the rows do not have.
    #[error(
        "{origin}: step {step:?} uses {{{{{column}}}}}, but {rows} has no column {column:?} (columns: {available})"
    )]
    MissingColumn {
        origin: String,
        step: String,
        column: String,
        rows: String,
        available: String,
    },
    /// No steps, or a step count of zero.
    #[error("{0}")]
    Empty(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainFile {
    steps: Vec<StepFile>,
    price: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: String,
    prompt: String,
    system: Option<String>,
    max_tokens: Option<u32>,
}

/// Names of the default chain's steps: the course's research → write → edit.
const DEFAULT_STEPS: [(&str, &str); 3] = [
    (
        "research",
        "Research the topic \"{{topic}}\" and list the key facts.",
    ),
    (
        "write",
        "Write a 1,000-word article about \"{{topic}}\" from these notes:\n{{previous}}",
    ),
    (
        "edit",
        "Edit this article for clarity and correctness:\n{{previous}}",
    ),
];

impl Chain {
    /// The default chain over a `topic` column: research → write → edit, then `revise-4`, ….
    pub fn default_steps(steps: usize) -> Result<Chain, ChainError> {
        if steps == 0 {
            return Err(ChainError::Empty("--steps must be at least 1".into()));
        }
        let steps = (0..steps)
            .map(|i| {
                let (name, prompt) = match DEFAULT_STEPS.get(i) {
                    Some((n, p)) => (n.to_string(), p.to_string()),
                    None => (
                        format!("revise-{}", i + 1),
                        "Improve this text:\n{{previous}}".to_string(),
                    ),
                };
                Step {
                    name,
                    prompt: Template::parse(&prompt).expect("built-in templates parse"),
                    system: None,
                    max_tokens: None,
                }
            })
            .collect();
        Ok(Chain { steps, price: None })
    }

    /// Loads a TOML chain file: `[[steps]]` tables with `name`, `prompt`, optional `system`
    /// and `max_tokens`.
    pub fn from_toml_file(path: &Path) -> Result<Chain, ChainError> {
        let text = std::fs::read_to_string(path).map_err(|source| ChainError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Chain::from_toml_str(&text, path)
    }

    /// Parses chain TOML; `path` is only used in error messages.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Chain, ChainError> {
        let file: ChainFile = toml::from_str(text).map_err(|e| ChainError::Toml {
            path: path.to_path_buf(),
            message: toml_message(text, &e),
        })?;
        if file.steps.is_empty() {
            return Err(ChainError::Empty(format!(
                "chain file {}: no [[steps]]",
                path.display()
            )));
        }
        let parse = |step: &str, field: &'static str, s: &str| {
            Template::parse(s).map_err(|source| ChainError::Template {
                path: path.to_path_buf(),
                step: step.to_string(),
                field,
                source,
            })
        };
        let mut steps = Vec::with_capacity(file.steps.len());
        for s in file.steps {
            let prompt = parse(&s.name, "prompt", &s.prompt)?;
            let system = s
                .system
                .as_deref()
                .map(|t| parse(&s.name, "system", t))
                .transpose()?;
            steps.push(Step {
                name: s.name,
                prompt,
                system,
                max_tokens: s.max_tokens,
            });
        }
        if let Some(p) = &file.price
            && let Err(e) = p.parse::<crate::cost::Price>()
        {
            return Err(ChainError::Toml {
                path: path.to_path_buf(),
                message: format!("price: {e}"),
            });
        }
        Ok(Chain {
            steps,
            price: file.price,
        })
    }

    /// Checks that every column a template names exists; `origin` names the chain (file or
    /// "default chain") and `rows` the input (manifest path) in the error.
    pub fn check_columns(
        &self,
        columns: &[String],
        origin: &str,
        rows: &str,
    ) -> Result<(), ChainError> {
        for step in &self.steps {
            let templates = std::iter::once(&step.prompt).chain(step.system.as_ref());
            for column in templates.flat_map(Template::columns) {
                if !columns.iter().any(|c| c == column) {
                    return Err(ChainError::MissingColumn {
                        origin: origin.to_string(),
                        step: step.name.clone(),
                        column: column.to_string(),
                        rows: rows.to_string(),
                        available: columns.join(", "),
                    });
                }
            }
        }
        Ok(())
    }

    /// Step names, in order.
    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }
}

/// toml's message with the line and column it points at, on one line.
fn toml_message(text: &str, err: &toml::de::Error) -> String {
    let detail = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {detail}")
        }
        None => detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chain_is_research_write_edit() {
        let c = Chain::default_steps(3).unwrap();
        assert_eq!(c.step_names(), ["research", "write", "edit"]);
        assert!(!c.steps[0].prompt.uses_previous());
        assert!(c.steps[1].prompt.uses_previous());
        assert_eq!(Chain::default_steps(5).unwrap().steps[4].name, "revise-5");
        assert!(Chain::default_steps(0).is_err());
    }

    #[test]
    fn loads_toml_chain() {
        let text = r#"
[[steps]]
name = "summarize"
system = "You are terse."
prompt = "Summarize {{title}}"
max_tokens = 50

[[steps]]
name = "translate"
prompt = "Translate: {{previous}}"
"#;
        let c = Chain::from_toml_str(text, Path::new("c.toml")).unwrap();
        assert_eq!(c.step_names(), ["summarize", "translate"]);
        assert_eq!(c.steps[0].max_tokens, Some(50));
        assert!(
            c.check_columns(&["title".into()], "c.toml", "rows.csv")
                .is_ok()
        );
        let err = c
            .check_columns(&["id".into()], "c.toml", "rows.csv")
            .unwrap_err();
        assert!(err.to_string().contains("no column \"title\""), "{err}");
    }

    #[test]
    fn malformed_toml_names_line_and_column() {
        let text = "[[steps]]\nname = \"a\"\nprompt = \n";
        let err = Chain::from_toml_str(text, Path::new("bad.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("chain file bad.toml: line 3"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn bad_template_names_step_and_column() {
        let text = "[[steps]]\nname = \"a\"\nprompt = \"x {{oops\"\n";
        let msg = Chain::from_toml_str(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("step \"a\" prompt: column 3"), "{msg}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "[[steps]]\nname = \"a\"\nprompt = \"x\"\nmodel = \"m\"\n";
        assert!(Chain::from_toml_str(text, Path::new("c.toml")).is_err());
    }
}
