//! A secret read from a file (`account_key_file`, `sas_token_file`,
//! `client_secret_file`): the content less a trailing newline, read again
//! when the file's modification time changes, so a rotated Kubernetes
//! Secret (an atomic symlink swap) needs no restart. The file is looked at
//! no more than once per [`CHECK_EVERY`]; a file that turns unreadable or
//! invalid keeps the last good value, with a warning in the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the file is looked at, at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a secret file is turned into (a signing key, a SAS, a credential).
pub type Parse<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// A value built from a secret file, rebuilt when the file changes.
pub struct WatchedSecret<T> {
    path: PathBuf,
    /// The key that names the file, for messages.
    key: &'static str,
    integration: Arc<str>,
    parse: Parse<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    checked: Instant,
    modified: Option<SystemTime>,
    value: Arc<T>,
}

impl<T> WatchedSecret<T> {
    /// Reads the file now; an unreadable, empty or invalid file is an error
    /// naming the integration and the key, never the content.
    pub fn new(integration: &str, key: &'static str, path: &Path, parse: Parse<T>) -> Result<Self, String> {
        let (text, modified) = read(path).map_err(|e| format!("integration \"{integration}\": {key}: {e}"))?;
        let value =
            parse(&text).map_err(|e| format!("integration \"{integration}\": {key} {}: {e}", path.display()))?;
        let state = State { checked: Instant::now(), modified, value: Arc::new(value) };
        Ok(WatchedSecret {
            path: path.to_path_buf(),
            key,
            integration: Arc::from(integration),
            parse,
            state: Mutex::new(state),
        })
    }

    /// The current value: rebuilt first if the file changed since it was read.
    pub fn get(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() < CHECK_EVERY {
            return state.value.clone();
        }
        state.checked = Instant::now();
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified.is_none() || modified == state.modified {
            return state.value.clone();
        }
        match read(&self.path).and_then(|(text, m)| (self.parse)(&text).map(|v| (v, m))) {
            Ok((value, m)) => {
                state.modified = m;
                state.value = Arc::new(value);
                tracing::info!(
                    integration = &*self.integration,
                    key = self.key,
                    "the secret file changed: its new content is in use"
                );
            }
            Err(e) => tracing::warn!(
                integration = &*self.integration,
                key = self.key,
                error = %e,
                "the secret file changed but is unusable: the last good content stays in use"
            ),
        }
        state.value.clone()
    }
}

/// A value given in the config, or built from a secret file.
pub enum Held<T> {
    Fixed(Arc<T>),
    File(WatchedSecret<T>),
}

impl<T> Held<T> {
    /// The value now (a file's is rebuilt first if the file changed).
    pub fn get(&self) -> Arc<T> {
        match self {
            Held::Fixed(v) => v.clone(),
            Held::File(w) => w.get(),
        }
    }
}

/// A secret file's content less one trailing newline (`\n` or `\r\n`), and
/// its modification time.
pub fn read(path: &Path) -> Result<(String, Option<SystemTime>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned();
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok((text, modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_broken_one_keeps_the_last_good_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "one\n").unwrap();
        set_mtime(&path, 1_000);
        let parse: Parse<String> =
            Box::new(|t| if t.starts_with("bad") { Err("bad".into()) } else { Ok(t.to_owned()) });
        let w = WatchedSecret::new("az", "sas_token_file", &path, parse).unwrap();
        assert_eq!(*w.get(), "one");
        std::fs::write(&path, "two\r\n").unwrap();
        set_mtime(&path, 2_000);
        w.state.lock().unwrap().checked -= CHECK_EVERY;
        assert_eq!(*w.get(), "two");
        std::fs::write(&path, "bad\n").unwrap();
        set_mtime(&path, 3_000);
        w.state.lock().unwrap().checked -= CHECK_EVERY;
        assert_eq!(*w.get(), "two");
    }

    #[test]
    fn an_empty_file_is_refused_naming_the_key_but_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "\n").unwrap();
        let err = WatchedSecret::new("az", "account_key_file", &path, Box::new(|t| Ok(t.to_owned()))).err().unwrap();
        assert!(err.contains("integration \"az\": account_key_file:") && err.contains("is empty"), "{err}");
    }
}
