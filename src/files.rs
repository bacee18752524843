//! What every file loadchain writes has in common: one layout version for its JSON documents
//! (a sweep's report.json and a run's summary.json) and one way to write a file, so a crash,
//! a power cut or a full disk never leaves half of one behind.
//!
//! Owns no format: report/ and manifest/ decide what goes in a file, this module how it lands
//! on disk.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Layout version of report.json and summary.json, written as `schema_version` in both.
/// Readers refuse a newer version; bump it when a change is not backwards compatible.
pub const SCHEMA_VERSION: u32 = 1;

/// Oldest layout this build still reads.
pub const MIN_SCHEMA_VERSION: u32 = 1;

/// Writes `path` so readers see either the old file or the complete new one, never a prefix,
/// and the new one survives a power cut once this returns: `write` fills a sibling temp file,
/// which is fsynced and renamed over `path` (see [`commit`]).
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let filled = (|| {
        let mut out = BufWriter::new(File::create(&tmp)?);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = filled {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    commit(&tmp, path)
}

/// [`write_atomically`] for bytes already in memory.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically(path, |w| w.write_all(bytes))
}

/// Moves a finished temp file (written by someone else, e.g. a chart encoder) to `path`
/// durably: fsync its data, rename it, fsync the folder so the rename itself persists. On
/// failure the temp file is removed.
pub fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    let moved = File::open(tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| fs::rename(tmp, path));
    if let Err(e) = moved {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    sync_parent(path);
    Ok(())
}

/// A hidden temp name beside `path` that keeps its extension (the PNG encoder picks the
/// format from it) and carries the process id (two processes never share one).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!(
            ".{stem}.tmp-{}.{}",
            std::process::id(),
            ext.to_string_lossy()
        ),
        None => format!(".{stem}.tmp-{}", std::process::id()),
    };
    path.with_file_name(name)
}

/// Makes a rename or file creation durable. Best effort: some platforms cannot open folders,
/// and the data itself was already synced.
pub fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        fs::write(&path, "old").unwrap();
        let err = write_atomically(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_are_hidden_and_keep_the_extension() {
        let t = temp_sibling(Path::new("out/latency.png"));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".latency.tmp-"), "{name}");
        assert!(name.ends_with(".png"), "{name}");
        assert_eq!(t.parent(), Some(Path::new("out")));
    }
}
