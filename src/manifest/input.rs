//! The manifest: a CSV file with a header, an id column and any other columns, loaded whole
//! and checked before anything runs, so a bad row fails the command instead of a chain.
//!
//! Line numbers in errors are physical file lines (header = line 1; a quoted value spanning
//! lines counts every line), as an editor shows them. Values are kept exactly as written.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use csv::StringRecord;

use super::{ManifestError, Position};
use crate::chain::Row;

/// A loaded and checked manifest: unique, non-empty ids and rows as wide as the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Where it was read from, for error messages and the summary.
    pub path: PathBuf,
    /// Header names in file order, including the id column.
    pub columns: Vec<String>,
    /// Rows in file order; each row's `vars` holds every column, the id column included.
    pub rows: Vec<Row>,
}

impl Manifest {
    /// Reads and checks the manifest at `path`; `id_column` is the `--id-column` value.
    pub fn load(path: &Path, id_column: &str) -> Result<Manifest, ManifestError> {
        let bytes = fs::read(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&bytes, path, id_column)
    }

    /// Checks manifest bytes already in memory; `path` is only used in messages.
    pub fn parse(bytes: &[u8], path: &Path, id_column: &str) -> Result<Manifest, ManifestError> {
        // Spreadsheet exports often start with a BOM; it must not become part of the first name.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (line, column) = line_and_byte_column(bytes, e.valid_up_to());
            let bad = bytes[e.valid_up_to()];
            invalid_at(
                path,
                Position::at(line, column),
                format!("invalid UTF-8 (byte 0x{bad:02X})"),
            )
        })?;
        check_quotes(text, path)?;

        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
        if header.is_empty() {
            return Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                message: "empty file: no header and no rows".into(),
            });
        }
        let columns: Vec<String> = header.iter().map(String::from).collect();
        check_unique_columns(&columns, path)?;
        let id_index = columns.iter().position(|c| c == id_column).ok_or_else(|| {
            invalid_at(
                path,
                Position::line(1),
                format!(
                    "has no column {id_column:?} (columns: {}); choose one with --id-column",
                    columns.join(", ")
                ),
            )
        })?;

        let mut rows = Vec::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut record = StringRecord::new();
        while reader
            .read_record(&mut record)
            .map_err(|e| csv_error(path, &e))?
        {
            let line = record.position().map_or(0, |p| p.line() as usize);
            let id = &record[id_index];
            if id.trim().is_empty() {
                let message = format!("empty id in column {id_column:?}");
                return Err(invalid_at(path, Position::at(line, id_index + 1), message));
            }
            if let Some(first) = first_line.get(id) {
                let message = format!("duplicate id {id:?} (first at line {first})");
                return Err(invalid_at(path, Position::line(line), message));
            }
            first_line.insert(id.to_string(), line);
            let vars = columns
                .iter()
                .cloned()
                .zip(record.iter().map(String::from))
                .collect();
            rows.push(Row {
                id: id.to_string(),
                vars,
            });
        }
        if rows.is_empty() {
            let message = "header only, no rows".to_string();
            return Err(invalid_at(path, Position::line(1), message));
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            columns,
            rows,
        })
    }
}

fn invalid_at(path: &Path, at: Position, message: String) -> ManifestError {
    ManifestError::InvalidAt {
        path: path.to_path_buf(),
        at,
        message,
    }
}

/// 1-based line and byte column of `offset`.
fn line_and_byte_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// A duplicated header name would make one column silently shadow the other in templates.
fn check_unique_columns(columns: &[String], path: &Path) -> Result<(), ManifestError> {
    for (i, name) in columns.iter().enumerate() {
        if let Some(first) = columns[..i].iter().position(|c| c == name) {
            let message = format!("duplicate column {name:?} (first at column {})", first + 1);
            return Err(invalid_at(path, Position::at(1, i + 1), message));
        }
    }
    Ok(())
}

/// The csv crate reads an unclosed quote as a value running to the end of the file, which
/// would silently merge every following row into one; catch it and point at the quote.
/// Mirrors the crate's default dialect: a quote opens a quoted value only at a value's start,
/// `""` inside is a literal quote.
fn check_quotes(text: &str, path: &Path) -> Result<(), ManifestError> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let (mut line, mut column) = (1usize, 0usize);
    let mut opened_at = Position::line(1);
    for c in text.chars() {
        column += 1;
        state = match (state, c) {
            (State::Quoted, '"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, '"') => State::Quoted,
            (State::FieldStart, '"') => {
                opened_at = Position::at(line, column);
                State::Quoted
            }
            (_, ',' | '\n' | '\r') => State::FieldStart,
            _ => State::Unquoted,
        };
        if c == '\n' {
            line += 1;
            column = 0;
        }
    }
    match state {
        State::Quoted => Err(invalid_at(
            path,
            opened_at,
            "quoted value is never closed (missing '\"')".into(),
        )),
        _ => Ok(()),
    }
}

fn csv_error(path: &Path, err: &csv::Error) -> ManifestError {
    let line = err.position().map_or(0, |p| p.line() as usize);
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, header has {expected_len}"),
        _ => err.to_string(),
    };
    match line {
        0 => ManifestError::Invalid {
            path: path.to_path_buf(),
            message,
        },
        line => invalid_at(path, Position::line(line), message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(contents: &[u8]) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        fs::write(&path, contents).unwrap();
        Manifest::load(&path, "id")
    }

    /// The error message, checked to be one line that names the file.
    fn err(contents: &[u8]) -> String {
        let e = load(contents).unwrap_err();
        assert!(e.is_input_error());
        let msg = e.to_string();
        assert!(msg.contains("rows.csv"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        msg
    }

    #[test]
    fn loads_rows_with_every_column_and_values_untrimmed() {
        let m = load(b"id,topic\r\n1, rust \n2,\"a, \"\"quoted\"\"\nvalue\"\n").unwrap();
        assert_eq!(m.columns, ["id", "topic"]);
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[0].id, "1");
        assert_eq!(m.rows[0].vars["id"], "1");
        assert_eq!(m.rows[0].vars["topic"], " rust ");
        assert_eq!(m.rows[1].vars["topic"], "a, \"quoted\"\nvalue");
    }

    #[test]
    fn byte_order_mark_is_not_part_of_the_first_column() {
        let m = load(b"\xEF\xBB\xBFid,topic\n1,x\n").unwrap();
        assert_eq!(m.columns, ["id", "topic"]);
        assert_eq!(m.rows[0].id, "1");
    }

    #[test]
    fn missing_file_is_an_input_error_naming_it() {
        let e = Manifest::load(Path::new("/nonexistent/rows.csv"), "id").unwrap_err();
        assert!(e.is_input_error());
        assert!(
            e.to_string()
                .starts_with("cannot read manifest /nonexistent/rows.csv")
        );
    }

    #[test]
    fn empty_file_and_header_only_have_no_rows() {
        assert!(err(b"").ends_with("rows.csv: empty file: no header and no rows"));
        assert!(err(b"\xEF\xBB\xBF\n\n").contains("empty file"));
        assert!(err(b"id,topic\n").ends_with("rows.csv: line 1: header only, no rows"));
    }

    #[test]
    fn missing_id_column_lists_columns_and_the_flag() {
        let msg = err(b"a,b\n1,2\n");
        assert!(
            msg.ends_with(
                "rows.csv: line 1: has no column \"id\" (columns: a, b); choose one with --id-column"
            ),
            "{msg}"
        );
    }

    #[test]
    fn custom_id_column_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        fs::write(&path, "key,topic\nk1,x\n").unwrap();
        let m = Manifest::load(&path, "key").unwrap();
        assert_eq!(m.rows[0].id, "k1");
    }

    #[test]
    fn duplicate_id_names_both_lines() {
        let msg = err(b"id,t\nx,1\ny,2\n\"multi\nline\",3\nz,4\nx,5\n");
        assert!(
            msg.ends_with("rows.csv: line 7: duplicate id \"x\" (first at line 2)"),
            "{msg}"
        );
    }

    #[test]
    fn empty_or_blank_id_names_line_and_column() {
        let msg = err(b"t,id\na,1\nb,\n");
        assert!(
            msg.ends_with("rows.csv: line 3, column 2: empty id in column \"id\""),
            "{msg}"
        );
        assert!(err(b"id,t\n  ,a\n").contains("line 2, column 1: empty id"));
    }

    #[test]
    fn invalid_utf8_names_line_and_byte_column() {
        let msg = err(b"id,topic\n1,ok\n2,caf\xE9\n");
        assert!(
            msg.ends_with("rows.csv: line 3, column 6: invalid UTF-8 (byte 0xE9)"),
            "{msg}"
        );
    }

    #[test]
    fn ragged_row_names_line_and_field_counts() {
        let msg = err(b"id,topic\n1,a\n2,b,extra\n");
        assert!(
            msg.ends_with("rows.csv: line 3: has 3 fields, header has 2"),
            "{msg}"
        );
        assert!(err(b"id,topic\n1\n").ends_with("line 2: has 1 fields, header has 2"));
    }

    #[test]
    fn unclosed_quote_points_at_the_opening_quote() {
        let msg = err(b"id,topic\n1,a\n2,\"never closed\n3,c\n");
        assert!(
            msg.ends_with(
                "rows.csv: line 3, column 3: quoted value is never closed (missing '\"')"
            ),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_header_name_is_rejected() {
        let msg = err(b"id,topic,topic\n1,a,b\n");
        assert!(msg.ends_with("line 1, column 3: duplicate column \"topic\" (first at column 2)"));
    }
}
