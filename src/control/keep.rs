//! Where the integrations are kept: the config file (one machine), or the shared store
//! (several replicas, `[store]`, CONTRACT.md section 9). [`super::live`] runs one flow for
//! both (validate, write, rebuild, swap, purge); only reading and writing differ, here.
//!
//! Both speak the same text: `[[integration]]` tables. The store's integrations are written
//! as such a text ([`text_of`]) so that parsing, validation and the cross-integration rules
//! are the file's, word for word.

use std::path::{Path, PathBuf};

use super::persist::{self, ConfigFile, Fields, PersistError, UpdateError};
use crate::error::{Error, Result};
use crate::store::Store;

pub enum Keeper {
    File(ConfigFile),
    /// The store, and the name its messages give it.
    Store(Store, PathBuf),
}

impl Keeper {
    /// The shared store `store`.
    pub fn store(store: Store) -> Keeper {
        let label = PathBuf::from(format!("shared store {}", store.location()));
        Keeper::Store(store, label)
    }

    /// The file, or the name of the store, for messages.
    pub fn label(&self) -> &Path {
        match self {
            Keeper::File(file) => file.path(),
            Keeper::Store(_, label) => label,
        }
    }

    /// The integrations as kept, as text.
    pub async fn read(&self) -> std::result::Result<String, String> {
        match self {
            Keeper::File(file) => file.read().await.map_err(|e| e.to_string()),
            Keeper::Store(store, _) => {
                let tables = store.load().await.map_err(|e| e.message)?;
                text_of(&tables).map_err(|e| e.to_string())
            }
        }
    }

    /// One change, atomically: `edit` changes the text (and says whether it created
    /// something), `check` validates and builds the whole new text; only then is it written.
    /// An error of either writes nothing.
    pub async fn update<T>(
        &self,
        edit: impl FnOnce(&str) -> Result<(String, bool)>,
        check: impl FnOnce(&str) -> Result<T>,
    ) -> Result<(bool, T)> {
        match self {
            Keeper::File(file) => {
                let outcome = file
                    .update(|text| {
                        let (new_text, flag) = edit(text)?;
                        let built = check(&new_text)?;
                        Ok((new_text, (flag, built)))
                    })
                    .await;
                match outcome {
                    Ok(done) => Ok(done),
                    Err(UpdateError::Edit(e)) => Err(e),
                    Err(UpdateError::File(e)) => Err(Error::internal(format!("nothing was saved: {e}"))),
                }
            }
            Keeper::Store(store, _) => {
                store
                    .update(|tables| {
                        let text = text_of(&tables).map_err(|e| Error::internal(e.to_string()))?;
                        let (new_text, flag) = edit(&text)?;
                        let next =
                            persist::integration_tables(&new_text).map_err(|e| Error::internal(e.to_string()))?;
                        // Checked as every replica will read it back.
                        let normal = text_of(&next).map_err(|e| Error::internal(e.to_string()))?;
                        let built = check(&normal)?;
                        Ok((next, (flag, built)))
                    })
                    .await
            }
        }
    }
}

/// `tables` written as `[[integration]]` tables, in order.
pub fn text_of(tables: &[Fields]) -> std::result::Result<String, PersistError> {
    let mut text = String::new();
    for table in tables {
        let name = table.get("name").and_then(serde_json::Value::as_str).unwrap_or_default();
        text = persist::upsert_integration(&text, name, table)?.0;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_written_as_text_read_back_as_the_same_tables() {
        let tables: Vec<Fields> = serde_json::from_str(
            r#"[{"name": "a", "type": "s3", "endpoint": "e", "port": 9000, "buckets": ["x", "y"], "tls": false},
                {"name": "b", "type": "local", "root": "/srv", "cache_control": "no-store"}]"#,
        )
        .expect("json");
        let text = text_of(&tables).expect("text");
        let back = persist::integration_tables(&text).expect("tables");
        assert_eq!(back, tables);
        assert_eq!(text_of(&back).expect("text"), text);
    }
}
