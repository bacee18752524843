//! The manifest: a CSV file with a header, an id column and any other columns, checked whole
//! before anything runs, so a bad row fails the command instead of a chain.
//!
//! Checking keeps no row: the file's text is held once, with the byte offset where each row
//! starts (8 bytes a row), and a row's cells are parsed from it when a chain needs them. A
//! million-row manifest costs its file size plus 8 MB, not a map of every cell (which was 30x
//! the file). Line numbers in errors are physical file lines (header = line 1; a quoted value
//! spanning lines counts every line), as an editor shows them. Values are kept exactly as written.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use csv::StringRecord;

use super::{ManifestError, Position};
use crate::chain::{Row, RowSource};

/// A loaded and checked manifest: unique, non-empty ids and rows as wide as the header.
/// Cloning is cheap (the text and offsets are shared).
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it was read from, for error messages and the summary.
    pub path: PathBuf,
    /// Header names in file order, including the id column.
    pub columns: Vec<String>,
    id_index: usize,
    // The file's text after a byte-order mark, checked to be UTF-8 with every quote closed.
    text: Arc<String>,
    // Byte offset in `text` where row i starts; rows end where the next one starts.
    starts: Arc<Vec<u64>>,
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Manifest) -> bool {
        self.path == other.path && self.columns == other.columns && self.text == other.text
    }
}

impl Eq for Manifest {}

impl Manifest {
    /// Reads and checks the manifest at `path`; `id_column` is the `--id-column` value.
    pub fn load(path: &Path, id_column: &str) -> Result<Manifest, ManifestError> {
        let bytes = fs::read(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::from_bytes(bytes, path, id_column)
    }

    /// Checks manifest bytes already in memory; `path` is only used in messages.
    pub fn parse(bytes: &[u8], path: &Path, id_column: &str) -> Result<Manifest, ManifestError> {
        Manifest::from_bytes(bytes.to_vec(), path, id_column)
    }

    fn from_bytes(
        mut bytes: Vec<u8>,
        path: &Path,
        id_column: &str,
    ) -> Result<Manifest, ManifestError> {
        // Spreadsheet exports often start with a BOM; it must not become part of the first name.
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let (line, column) = line_and_byte_column(bytes, at);
            invalid_at(
                path,
                Position::at(line, column),
                format!("invalid UTF-8 (byte 0x{:02X})", bytes[at]),
            )
        })?;
        check_quotes(&text, path)?;

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

        // At most one row a line: sized once, so a million rows never double a vector.
        let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
        let mut starts = Vec::with_capacity(lines);
        let mut ids = IdHashes::with_capacity(lines);
        let mut record = StringRecord::new();
        while reader
            .read_record(&mut record)
            .map_err(|e| csv_error(path, &e))?
        {
            let (line, start) = record
                .position()
                .map_or((0, 0), |p| (p.line() as usize, p.byte()));
            let id = &record[id_index];
            if id.trim().is_empty() {
                let message = format!("empty id in column {id_column:?}");
                return Err(invalid_at(path, Position::at(line, id_index + 1), message));
            }
            ids.push(id, line);
            starts.push(start);
        }
        if starts.is_empty() {
            let message = "header only, no rows".to_string();
            return Err(invalid_at(path, Position::line(1), message));
        }
        let id_of = |row: usize| {
            record_in(&text, &starts, row)
                .get(id_index)
                .map(String::from)
        };
        if let Some(dup) = ids.first_duplicate(id_of) {
            let message = format!(
                "duplicate id {:?} (first at line {})",
                dup.id, dup.first_line
            );
            return Err(invalid_at(path, Position::line(dup.line), message));
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            columns,
            id_index,
            text: Arc::new(text),
            starts: Arc::new(starts),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether it has no rows (never true of a loaded manifest).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Row `index` (0-based, file order); its `vars` hold every column, the id column included.
    pub fn row(&self, index: usize) -> Row {
        let record = record_in(&self.text, &self.starts, index);
        Row {
            id: record.get(self.id_index).unwrap_or_default().to_string(),
            vars: self
                .columns
                .iter()
                .cloned()
                .zip(record.iter().map(String::from))
                .collect(),
        }
    }

    /// The id of row `index`.
    pub fn id(&self, index: usize) -> String {
        let record = record_in(&self.text, &self.starts, index);
        record.get(self.id_index).unwrap_or_default().to_string()
    }

    /// Every id, in file order, parsed one at a time.
    pub fn ids(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.len()).map(|i| self.id(i))
    }

    /// Keeps only the rows whose index (0-based, file order) `keep` accepts; ids stay unique.
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let kept: Vec<u64> = (self.starts.iter().enumerate())
            .filter(|&(i, _)| keep(i))
            .map(|(_, &s)| s)
            .collect();
        self.starts = Arc::new(kept);
    }

    /// The rows at `indices` (0-based, in that order) as a source a runner can take.
    pub fn pick(&self, indices: Vec<u32>) -> Picked {
        Picked {
            manifest: self.clone(),
            indices,
        }
    }
}

/// Some of a manifest's rows, made one at a time when a chain needs one.
#[derive(Debug, Clone)]
pub struct Picked {
    manifest: Manifest,
    indices: Vec<u32>,
}

impl Picked {
    /// Number of rows picked.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Picked row `index` (0-based, in picking order).
    pub fn row(&self, index: usize) -> Row {
        self.manifest.row(self.indices[index] as usize)
    }

    /// The id of picked row `index`, without building the row.
    pub fn id(&self, index: usize) -> String {
        self.manifest.id(self.indices[index] as usize)
    }
}

impl RowSource for Picked {
    fn len(&self) -> usize {
        Picked::len(self)
    }

    fn row(&self, index: usize) -> Row {
        Picked::row(self, index)
    }
}

/// Parses row `index` from the checked text; the text was read whole once, so this cannot
/// fail (an empty record would only come of a bug).
fn record_in(text: &str, starts: &[u64], index: usize) -> StringRecord {
    let start = starts[index] as usize;
    let end = starts.get(index + 1).map_or(text.len(), |&e| e as usize);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .buffer_capacity(end - start + 1)
        .from_reader(&text.as_bytes()[start..end]);
    let mut record = StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => record,
        _ => StringRecord::new(),
    }
}

/// The duplicate-id check: a 64-bit hash, the row and the line of every id (16 bytes a row,
/// sorted in place), instead of a map of the ids themselves. Equal hashes are compared by the
/// ids they stand for, so a collision never reports a false duplicate.
struct IdHashes(Vec<(u64, u32, u32)>);

/// An id seen twice.
#[derive(Debug, PartialEq, Eq)]
struct Duplicate {
    id: String,
    line: usize,
    first_line: usize,
}

impl IdHashes {
    fn with_capacity(rows: usize) -> IdHashes {
        IdHashes(Vec::with_capacity(rows))
    }

    /// Records the id of the next row, found at `line`.
    fn push(&mut self, id: &str, line: usize) {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        self.push_hashed(hasher.finish(), line);
    }

    fn push_hashed(&mut self, hash: u64, line: usize) {
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let row = small(self.0.len());
        self.0.push((hash, row, small(line)));
    }

    /// The repeat that comes first in the file (the one a reader meets first), with the line
    /// of its first occurrence. `id_of` parses a row's id.
    fn first_duplicate(mut self, id_of: impl Fn(usize) -> Option<String>) -> Option<Duplicate> {
        self.0.sort_unstable();
        let mut best: Option<(u32, Duplicate)> = None;
        for group in self.0.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
            // In row order within a group; ids are parsed only for colliding hashes.
            let ids: Vec<Option<String>> = group.iter().map(|e| id_of(e.1 as usize)).collect();
            for (later, entry) in group.iter().enumerate().skip(1) {
                let Some(earlier) = (0..later).find(|&e| ids[e] == ids[later]) else {
                    continue;
                };
                if best.as_ref().is_none_or(|(row, _)| entry.1 < *row) {
                    let dup = Duplicate {
                        id: ids[later].clone().unwrap_or_default(),
                        line: entry.2 as usize,
                        first_line: group[earlier].2 as usize,
                    };
                    best = Some((entry.1, dup));
                }
                break;
            }
        }
        best.map(|(_, dup)| dup)
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
        assert_eq!(m.len(), 2);
        assert_eq!(m.row(0).id, "1");
        assert_eq!(m.row(0).vars["id"], "1");
        assert_eq!(m.row(0).vars["topic"], " rust ");
        assert_eq!(m.row(1).vars["topic"], "a, \"quoted\"\nvalue");
        assert_eq!(m.ids().collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn byte_order_mark_is_not_part_of_the_first_column() {
        let m = load(b"\xEF\xBB\xBFid,topic\n1,x\n").unwrap();
        assert_eq!(m.columns, ["id", "topic"]);
        assert_eq!(m.row(0).id, "1");
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
        assert_eq!(m.row(0).id, "k1");
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

    #[test]
    fn a_hash_collision_is_not_a_duplicate_but_a_repeat_after_it_is() {
        let names = ["a", "b", "c", "b", "a"];
        let id_of = |row: usize| Some(names[row].to_string());
        // Every id hashes alike here: only the ids themselves tell them apart.
        let mut ids = IdHashes::with_capacity(5);
        for row in 0..3 {
            ids.push_hashed(7, row + 2);
        }
        let none = IdHashes(ids.0.clone()).first_duplicate(id_of);
        assert_eq!(none, None, "a, b, c collide but differ");
        ids.push_hashed(7, 5);
        ids.push_hashed(7, 6);
        let dup = ids.first_duplicate(id_of).unwrap();
        let expected = Duplicate {
            id: "b".into(),
            line: 5,
            first_line: 3,
        };
        assert_eq!(dup, expected, "the first repeat in file order");
    }

    #[test]
    fn rows_are_parsed_from_their_own_offsets() {
        let m = load(b"id,t\n\"x\ny\",1\nz,\"2,3\"\nw,4").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.row(0).vars["id"], "x\ny");
        assert_eq!(m.row(1).vars["t"], "2,3");
        assert_eq!(m.row(2).id, "w");
        let picked = m.pick(vec![2, 0]);
        assert_eq!(picked.len(), 2);
        assert_eq!(picked.row(0).id, "w");
        assert_eq!(picked.row(1).id, "x\ny");
    }
}
