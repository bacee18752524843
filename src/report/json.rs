//! report.json: the one saved source every other file of a report can be rebuilt from.
//!
//! Reading checks `schema_version` before the layout, so a report from a newer loadchain gets
//! "upgrade" rather than a confusing missing-field error.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::ReportError;
pub use crate::files::MIN_SCHEMA_VERSION;
use crate::files::SCHEMA_VERSION;
use crate::sweep::SweepReport;

/// File name of the saved report inside a report folder.
pub const FILE_NAME: &str = "report.json";

/// The pretty-printed JSON of a report, newline-terminated.
pub fn to_string(report: &SweepReport) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}

/// Only the version field, read first: it must parse whatever else a future layout holds.
#[derive(Deserialize)]
struct Probe {
    schema_version: Option<u32>,
}

/// Resolves a report folder or a report.json path to the file itself.
fn locate(dir_or_file: &Path) -> Result<PathBuf, ReportError> {
    let path = if dir_or_file.is_dir() {
        dir_or_file.join(FILE_NAME)
    } else {
        dir_or_file.to_path_buf()
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(ReportError::NotAReport {
            path: dir_or_file.to_path_buf(),
        })
    }
}

/// What a folder (or file) given to `loadchain report` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A sweep's report.json.
    Sweep(PathBuf),
    /// A `loadchain run` folder's summary.json.
    Run(PathBuf),
}

/// Resolves a sweep report folder, a run folder, report.json or summary.json to the file
/// itself, saying which kind it is. A folder with both is a sweep report (report.json rules).
pub fn locate_any(dir_or_file: &Path) -> Result<Located, ReportError> {
    let summary = crate::manifest::SUMMARY_FILE;
    if dir_or_file.is_dir() && !dir_or_file.join(FILE_NAME).is_file() {
        let path = dir_or_file.join(summary);
        if path.is_file() {
            return Ok(Located::Run(path));
        }
    }
    if dir_or_file.is_file() && dir_or_file.file_name() == Some(summary.as_ref()) {
        return Ok(Located::Run(dir_or_file.to_path_buf()));
    }
    locate(dir_or_file).map(Located::Sweep)
}

/// Parses a versioned document (report.json or summary.json; they share
/// [`SCHEMA_VERSION`]), checking `schema_version` before the layout; `path` is for messages
/// only.
fn parse_versioned<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ReportError> {
    let json_err = |source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    };
    let probe: Probe = serde_json::from_str(text).map_err(json_err)?;
    let found = probe
        .schema_version
        .ok_or_else(|| ReportError::MissingSchema {
            path: path.to_path_buf(),
        })?;
    if found > SCHEMA_VERSION {
        return Err(ReportError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < MIN_SCHEMA_VERSION {
        return Err(ReportError::OlderSchema {
            path: path.to_path_buf(),
            found,
            oldest: MIN_SCHEMA_VERSION,
        });
    }
    serde_json::from_str(text).map_err(json_err)
}

/// Reads and checks report.json from a folder or a file path.
pub fn read(dir_or_file: &Path) -> Result<SweepReport, ReportError> {
    read_versioned(&locate(dir_or_file)?)
}

/// Reads and checks a versioned document from its file path.
pub fn read_versioned<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_versioned(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::fixture;

    #[test]
    fn report_json_round_trips_through_serde() {
        let report = fixture();
        let text = to_string(&report).unwrap();
        let back = parse_versioned::<SweepReport>(&text, Path::new("report.json")).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn newer_schema_is_refused_with_upgrade_advice() {
        let mut report = fixture();
        report.schema_version = SCHEMA_VERSION + 1;
        let text = to_string(&report).unwrap();
        let err = parse_versioned::<SweepReport>(&text, Path::new("r/report.json")).unwrap_err();
        assert!(
            matches!(err, ReportError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1)
        );
        assert!(err.is_input_error());
        let msg = err.to_string();
        assert!(
            msg.contains("r/report.json") && msg.contains("upgrade"),
            "{msg}"
        );
    }

    #[test]
    fn newer_schema_wins_over_an_unknown_layout() {
        let text = format!(
            "{{\"schema_version\": {}, \"whatever\": []}}",
            SCHEMA_VERSION + 1
        );
        let err = parse_versioned::<SweepReport>(&text, Path::new("report.json")).unwrap_err();
        assert!(matches!(err, ReportError::NewerSchema { .. }), "{err}");
    }

    #[test]
    fn missing_or_zero_schema_version_is_refused() {
        let err = parse_versioned::<SweepReport>("{\"tool\": \"x\"}", Path::new("report.json"))
            .unwrap_err();
        assert!(matches!(err, ReportError::MissingSchema { .. }), "{err}");
        let err =
            parse_versioned::<SweepReport>("{\"schema_version\": 0}", Path::new("report.json"))
                .unwrap_err();
        assert!(matches!(err, ReportError::OlderSchema { .. }), "{err}");
        assert!(err.is_input_error());
    }

    #[test]
    fn malformed_json_names_the_file_line_and_column() {
        let text = "{\n  \"schema_version\": 1,\n  \"tool\": oops\n}\n";
        let err =
            parse_versioned::<SweepReport>(text, Path::new("runs/a/report.json")).unwrap_err();
        assert!(err.is_input_error());
        let msg = err.to_string();
        assert!(msg.contains("runs/a/report.json"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("column"), "{msg}");
    }

    #[test]
    fn wrong_shape_names_the_file_and_line() {
        let text = "{\n  \"schema_version\": 1,\n  \"tool\": 5\n}\n";
        let err = parse_versioned::<SweepReport>(text, Path::new("report.json")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("report.json") && msg.contains("line 3"),
            "{msg}"
        );
    }
}
