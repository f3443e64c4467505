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
///
/// The temporary file has a random name (`.NAME.PID.wXXXXXX.tmp`) and is created
/// exclusively (`O_CREAT | O_EXCL`), so a file or link planted in the folder is never
/// opened or followed; it is removed on every error. Temporary files that writes killed
/// before they finished left in the folder are removed first ([`remove_stale_temporaries`]).
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
    remove_stale_temporaries(&dir);
    let prefix = format!(".{}.{}.w", name.to_string_lossy(), std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp").rand_bytes(6);
    // The mode a plain `File::create` gives (before the umask), not tempfile's private 0600:
    // the saved file is the user's ordinary output.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    // Dropping the temporary file (on any `?` below) deletes it.
    let mut tmp = builder.tempfile_in(&dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Removes the temporary files of atomic writes that never finished (the process was
/// killed) from `dir`: only names of this module's patterns, `.NAME.PID.tmp` (older
/// versions) and `.NAME.PID.wXXXXXX.tmp`, only regular files or links, and only when no
/// process `PID` is alive. Where liveness cannot be told (no `/proc`), nothing is removed.
/// Failures are ignored: this is housekeeping, never a reason for the write to fail.
pub fn remove_stale_temporaries(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(temporary_pid) else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if (kind.is_file() || kind.is_symlink()) && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The writer's PID, if `name` is a temporary file of [`write_atomic`]:
/// `.NAME.PID.tmp` or `.NAME.PID.wXXXXXX.tmp` (six letters or digits after the `w`).
fn temporary_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (head, last) = rest.rsplit_once('.')?;
    let is_pid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (head, pid) = if is_pid(last) {
        (head, last)
    } else {
        let random = last.strip_prefix('w')?;
        if random.len() != 6 || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (head, pid) = head.rsplit_once('.')?;
        if !is_pid(pid) {
            return None;
        }
        (head, pid)
    };
    if head.is_empty() {
        return None;
    }
    pid.parse().ok()
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

    /// A fresh empty folder for one test.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cnn-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_at_the_predictable_temporary_name_is_not_followed() {
        let dir = folder("planted");
        let victim = dir.join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        // The name older versions wrote through, for this process: a link to the victim.
        let planted = dir.join(format!(".out.txt.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let path = dir.join("out.txt");
        write_atomic(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert!(
            std::fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // The target itself a link: replaced by the new file, the victim untouched.
        let link = dir.join("link.txt");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_atomic(&link, b"through a link").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = folder("failed");
        // A folder where the file should go: the final rename fails.
        let target = dir.join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let err = write_atomic(&target, b"data").unwrap_err();
        assert!(matches!(err, FileError::Write { .. }), "{err}");
        assert_eq!(names(&dir), ["taken"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_of_dead_writers_are_removed_on_the_next_write() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = folder("stale");
        let me = std::process::id();
        // No process has a PID above the kernel's maximum (2^22).
        let dead = 4_000_000_000u32;
        let kept = [
            format!(".live.npy.{me}.tmp"),
            format!(".live.npy.{me}.wAb3dE9.tmp"),
            ".notours.tmp".to_string(),
            format!("plain.{dead}.tmp"),
            format!(".odd.npy.{dead}.wtoolong1.tmp"),
            "keep.npy".to_string(),
        ];
        let stale = [
            format!(".a.npy.{dead}.tmp"),
            format!(".b.safetensors.{dead}.wXy12Z3.tmp"),
        ];
        for name in kept.iter().chain(&stale) {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        write_atomic(&dir.join("new.npy"), b"data").unwrap();
        let mut expected: Vec<String> = kept.to_vec();
        expected.push("new.npy".to_string());
        expected.sort();
        assert_eq!(names(&dir), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(temporary_pid(".x.npy.123.tmp"), Some(123));
        assert_eq!(temporary_pid(".x.npy.123.wAbC123.tmp"), Some(123));
        assert_eq!(temporary_pid("..123.tmp"), None);
        assert_eq!(temporary_pid(".x.npy.tmp"), None);
        assert_eq!(temporary_pid(".x.npy.123.w12.tmp"), None);
        assert_eq!(temporary_pid("x.npy.123.tmp"), None);
        assert_eq!(temporary_pid(".x.npy.123.tmp.bak"), None);
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
