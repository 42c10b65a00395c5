//! Values built from a secret file (`account_key_file`, `sas_token_file`,
//! `client_secret_file`): a signing key, a SAS, a token credential. The file
//! is watched by [`crate::integration::secret_file::SecretFile`] (the one
//! home of "content less a trailing newline, read again when it changes");
//! here the value is rebuilt when the content changes, and a new content
//! that does not parse keeps the last good value, with a warning in the log.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::integration::secret_file::SecretFile;
use crate::secret::Secret;

/// What a secret file's content is turned into.
pub type Parse<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

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

/// A value built from a secret file, rebuilt when the content changes.
pub struct WatchedSecret<T> {
    file: SecretFile,
    /// The key that names the file, for messages.
    key: &'static str,
    integration: Arc<str>,
    parse: Parse<T>,
    last: Mutex<(Secret, Arc<T>)>,
}

impl<T> WatchedSecret<T> {
    /// Reads and parses the file now; an error names the integration and
    /// the key, never the content.
    pub fn new(integration: &str, key: &'static str, path: &Path, parse: Parse<T>) -> Result<Self, String> {
        let file = SecretFile::open(path).map_err(|e| format!("integration \"{integration}\": {key}: {e}"))?;
        let text = file.current().map_err(|e| format!("integration \"{integration}\": {key}: {e}"))?;
        let value = parse(text.expose()).map_err(|e| format!("integration \"{integration}\": {key}: {e}"))?;
        Ok(WatchedSecret {
            file,
            key,
            integration: Arc::from(integration),
            parse,
            last: Mutex::new((text, Arc::new(value))),
        })
    }

    /// The current value: rebuilt first if the file's content changed.
    pub fn get(&self) -> Arc<T> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(text) = self.file.current() else { return last.1.clone() };
        if text == last.0 {
            return last.1.clone();
        }
        match (self.parse)(text.expose()) {
            Ok(value) => {
                *last = (text, Arc::new(value));
                tracing::info!(
                    integration = &*self.integration,
                    key = self.key,
                    "the secret file changed: its new content is in use"
                );
            }
            Err(e) => {
                // Parsed again at the next change only.
                last.0 = text;
                tracing::warn!(
                    integration = &*self.integration,
                    key = self.key,
                    error = %e,
                    "the secret file changed but is unusable: the last good content stays in use"
                );
            }
        }
        last.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::integration::secret_file::CHECK_EVERY;

    fn rewrite(path: &Path, text: &str, secs: u64) {
        std::fs::write(path, text).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
    }

    #[test]
    fn a_changed_file_is_parsed_again_and_a_broken_one_keeps_the_last_good_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        rewrite(&path, "one\n", 1_000);
        let parse: Parse<String> =
            Box::new(|t| if t.starts_with("bad") { Err("bad".into()) } else { Ok(t.to_owned()) });
        let w = WatchedSecret::new("az", "sas_token_file", &path, parse).unwrap();
        assert_eq!(*w.get(), "one");
        rewrite(&path, "two\r\n", 2_000);
        poll_until(&w, "two", &["one"]);
        // A broken content is never served; the next good one is.
        rewrite(&path, "bad\n", 3_000);
        let window = std::time::Instant::now() + CHECK_EVERY * 2;
        while std::time::Instant::now() < window {
            assert_eq!(*w.get(), "two");
            std::thread::sleep(Duration::from_millis(50));
        }
        rewrite(&path, "three\n", 4_000);
        poll_until(&w, "three", &["two"]);
    }

    /// Reads `w` until it gives `want` (within 5 checks' time), each read
    /// being one of `before` until then.
    fn poll_until(w: &WatchedSecret<String>, want: &str, before: &[&str]) {
        let deadline = std::time::Instant::now() + CHECK_EVERY * 5;
        loop {
            let got = w.get();
            if *got == want {
                return;
            }
            assert!(before.contains(&got.as_str()), "served {got:?} while waiting for {want:?}");
            assert!(std::time::Instant::now() < deadline, "{want:?} never served");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn an_unusable_file_is_refused_naming_the_key_but_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "hunter2\n").unwrap();
        let parse: Parse<String> = Box::new(|_| Err("is not valid base64".into()));
        let err = WatchedSecret::new("az", "account_key_file", &path, parse).err().unwrap();
        assert_eq!(err, "integration \"az\": account_key_file: is not valid base64");
    }
}
