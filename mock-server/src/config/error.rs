//! [`ConfigError`]: why a mock config cannot be used, on one line that says where to look
//! (the file, line and column of bad TOML, or the key and its CLI flag of a bad value).

use std::path::{Path, PathBuf};

/// A config that cannot be used. Each message is one line naming the file and line, or the
/// key (with its CLI flag) that is wrong, so the user knows where to look.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has a bad/unknown key.
    #[error("{origin}: line {line}, column {column}: {message}")]
    Toml {
        /// The file path, or `<string>` for
        /// [`MockConfig::from_toml_str`](super::MockConfig::from_toml_str).
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// toml's message, e.g. "unknown field `latncy`, expected one of ...".
        message: String,
    },
    /// A value is out of range.
    #[error("{origin}invalid {key} (--{flag}): {message}")]
    Invalid {
        /// Where the value came from, e.g. "config.toml: ", or empty.
        origin: String,
        /// The TOML key / struct field.
        key: &'static str,
        /// The matching CLI flag name without dashes.
        flag: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    pub(super) fn invalid(key: &'static str, message: String) -> Self {
        ConfigError::Invalid {
            origin: String::new(),
            key,
            flag: flag_for(key),
            message,
        }
    }

    /// Prefixes an `Invalid` error with the file its value came from.
    pub(super) fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Invalid {
                key, flag, message, ..
            } => ConfigError::Invalid {
                origin: format!("{}: ", path.display()),
                key,
                flag,
                message,
            },
            other => other,
        }
    }
}

fn flag_for(key: &'static str) -> &'static str {
    match key {
        "token_time" => "token-time",
        "output_tokens" => "output-tokens",
        "failure_rate" => "failure-rate",
        "failure_statuses" => "failure-statuses",
        "conn_cost" => "conn-cost",
        "hang_rate" => "hang-rate",
        "max_body_bytes" => "max-body-bytes",
        "reset_rate" => "reset-rate",
        "truncate_rate" => "truncate-rate",
        other => other,
    }
}

impl ConfigError {
    /// A TOML error at its line and column in `text`, from `origin` (a path or `<string>`).
    pub(super) fn toml(err: &toml::de::Error, text: &str, origin: &str) -> Self {
        let (line, column) = err
            .span()
            .map(|span| line_col(text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Toml {
            origin: origin.to_string(),
            line,
            column,
            // toml's messages can span lines; keep the error on one line.
            message: err.message().trim().replace('\n', "; "),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters_from_one() {
        let text = "a = 1\nb = \"é\"x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes but one column: x is the 8th character (9th byte).
        assert_eq!(line_col(text, text.find('x').unwrap()), (2, 8));
        assert_eq!(line_col(text, usize::MAX), (3, 1));
    }

    #[test]
    fn invalid_names_the_flag_and_the_file() {
        let err = ConfigError::invalid("hang_rate", "2 is not a fraction".into());
        assert_eq!(
            err.to_string(),
            "invalid hang_rate (--hang-rate): 2 is not a fraction"
        );
        let err = err.in_file(Path::new("mock.toml"));
        assert_eq!(
            err.to_string(),
            "mock.toml: invalid hang_rate (--hang-rate): 2 is not a fraction"
        );
    }
}
