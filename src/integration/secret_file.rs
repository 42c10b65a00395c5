//! Secrets written in the config or kept in a file (`secret_access_key_file`,
//! ..., CONTRACT.md section 2): the file's content less one trailing newline
//! is the secret, and it is read again when the file changes, so a rotated
//! Kubernetes Secret needs no restart.
//!
//! Change detection: at most once a second a caller looks at the file's
//! modification time and length (one `stat`), and reads the file again only
//! when either changed. A rotation is therefore seen within a second of the
//! next request after it. (Kubernetes swaps a Secret volume's symlink, which
//! changes both.)

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::secret::Secret;

/// How often the file's metadata is looked at, at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A secret as configured: its value, or the file holding it.
#[derive(Debug, Clone)]
pub enum SecretValue {
    Inline(Secret),
    File(PathBuf),
}

/// A [`SecretValue`] ready to be read on each use.
#[derive(Debug)]
pub enum SecretSource {
    Inline(Secret),
    File(SecretFile),
}

impl SecretSource {
    /// Reads `value` (a file now, so a missing file fails at build time).
    pub fn new(value: &SecretValue) -> Result<SecretSource, String> {
        Ok(match value {
            SecretValue::Inline(s) => SecretSource::Inline(s.clone()),
            SecretValue::File(path) => SecretSource::File(SecretFile::open(path)?),
        })
    }

    /// The secret now.
    pub fn current(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(f) => f.current(),
        }
    }
}

/// A secret file with its last content.
#[derive(Debug)]
pub struct SecretFile {
    path: PathBuf,
    state: Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    checked: Instant,
    stamp: (Option<SystemTime>, u64),
    secret: Secret,
}

impl SecretFile {
    pub fn open(path: &Path) -> Result<SecretFile, String> {
        let (stamp, secret) = read(path)?;
        Ok(SecretFile { path: path.to_owned(), state: Mutex::new(Seen { checked: Instant::now(), stamp, secret }) })
    }

    /// The content, read again if the file changed (looked at no more than
    /// once per [`CHECK_EVERY`]). A file that became unreadable keeps its
    /// last content (a rotation in progress) and says so in the log.
    pub fn current(&self) -> Result<Secret, String> {
        let mut seen = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if seen.checked.elapsed() >= CHECK_EVERY {
            seen.checked = Instant::now();
            match std::fs::metadata(&self.path) {
                Ok(meta) if stamp(&meta) != seen.stamp => match read(&self.path) {
                    Ok((stamp, secret)) => {
                        seen.stamp = stamp;
                        seen.secret = secret;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "secret file changed but cannot be read; keeping its last content")
                    }
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), error = %e, "secret file unreadable; keeping its last content")
                }
            }
        }
        Ok(seen.secret.clone())
    }
}

fn stamp(meta: &std::fs::Metadata) -> (Option<SystemTime>, u64) {
    (meta.modified().ok(), meta.len())
}

/// The content of `path` less one trailing newline (`\n` or `\r\n`).
pub fn read_secret_text(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    Ok(text.to_owned())
}

fn read(path: &Path) -> Result<((Option<SystemTime>, u64), Secret), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = read_secret_text(path)?;
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok((stamp(&meta), Secret::new(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_less_one_trailing_newline_is_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        for (content, secret) in
            [("abc\n", "abc"), ("abc\r\n", "abc"), ("abc", "abc"), ("abc\n\n", "abc\n"), (" a b ", " a b ")]
        {
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_secret_text(&path).unwrap(), secret, "{content:?}");
        }
    }

    #[test]
    fn an_empty_or_missing_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        assert!(SecretFile::open(&path).unwrap_err().contains("cannot read"));
        std::fs::write(&path, "\n").unwrap();
        assert!(SecretFile::open(&path).unwrap_err().ends_with("is empty"));
    }

    #[test]
    fn a_rewritten_file_is_read_again_after_the_check_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "old\n").unwrap();
        let f = SecretFile::open(&path).unwrap();
        std::fs::write(&path, "newer\n").unwrap();
        assert_eq!(f.current().unwrap().expose(), "old", "not looked at within the interval");
        f.state.lock().unwrap().checked -= CHECK_EVERY;
        assert_eq!(f.current().unwrap().expose(), "newer");
    }
}
