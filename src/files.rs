//! Reading and writing the user's files: scripts, and later tensors and checkpoints.
//! Every write goes to a temporary file in the same folder and is renamed into place, so a
//! crash never leaves a half-written file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors reading or writing files (codes E0501, E0502).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FileError {
    /// `cnn run missing.cnn`, or `load_npy("nowhere.npy")`: the file cannot be opened.
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(
        code(E0501),
        help("check the path; it is relative to the current directory")
    )]
    Read {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// `save_npy("/no/such/dir/x.npy", t)`: the file cannot be written.
    #[error("cannot write `{path}`: {reason}")]
    #[diagnostic(code(E0501))]
    Write {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// A script that is not UTF-8 text.
    #[error("`{path}` is not UTF-8 text")]
    #[diagnostic(code(E0502), help("save the script as UTF-8"))]
    NotText {
        /// The path as given.
        path: PathBuf,
    },
}

/// Read a script as text.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes = std::fs::read(path).map_err(|e| FileError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| FileError::NotText {
        path: path.to_owned(),
    })
}

/// Write `bytes` to `path` atomically: into a temporary file beside it, flushed to disk,
/// then renamed over the target. Readers see the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let fail = |e: std::io::Error| FileError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| FileError::Write {
        path: path.to_owned(),
        reason: "the path names no file".into(),
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("cnn-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomic(&path, b"first version, long").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // no temporary file is left behind
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_into_missing_folder_is_e0501() {
        let err = write_atomic(Path::new("/no/such/folder/x.bin"), b"x").unwrap_err();
        assert!(matches!(err, FileError::Write { .. }));
    }

    #[test]
    fn missing_file_is_e0501() {
        let err = read_text(Path::new("/no/such/file.cnn")).unwrap_err();
        assert!(matches!(err, FileError::Read { .. }));
    }
}
