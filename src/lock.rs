//! One loadchain process per output folder: an exclusive advisory lock on a file in the
//! folder, held for the whole run and released by the kernel when the process ends, however
//! it ends (a SIGKILL included), so a crashed run never leaves a stale lock behind.
//!
//! Why: two `run`s (or a `run` and a `--resume`) on one folder would both append to
//! results.jsonl and finish rows twice; a check for "results.jsonl is empty" races. The lock
//! file holds the owner's pid, so the second process can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Name of the lock file inside a locked folder.
pub const LOCK_FILE: &str = ".loadchain.lock";

/// The folder could not be locked.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another live process holds the lock (an input error: exit 2).
    #[error("{dir} is in use by another loadchain run (pid {pid})")]
    InUse {
        /// The folder.
        dir: PathBuf,
        /// The holder's pid as it wrote it, or `unknown`.
        pid: String,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An exclusive lock on a folder; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    // Held only for its lock: closing the file releases it.
    _file: File,
}

impl DirLock {
    /// Locks `dir` (which must exist) without waiting: fails at once with
    /// [`LockError::InUse`] when another process holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::InUse {
                    dir: dir.to_path_buf(),
                    pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io)?;
        Ok(DirLock { path, _file: file })
    }

    /// Releases the lock and deletes its file: for a folder this process refused to use, so it
    /// is left as it was found. (Unlinked while still held, so nobody can lock a file that is
    /// about to vanish.)
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::InUse { .. }), "{text}");
        assert!(
            text.ends_with(&format!(
                "is in use by another loadchain run (pid {})",
                std::process::id()
            )),
            "{text}"
        );
        drop(first);
        let again = DirLock::acquire(dir.path()).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
