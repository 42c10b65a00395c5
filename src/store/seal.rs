//! Sealing secrets for the shared store: AES-256-GCM (NIST SP 800-38D) from `ring`, the
//! crypto library the project's rustls already uses (one audited AES implementation, with
//! hardware AES where the CPU has it, and no second crate stack for the same cipher).
//!
//! Each value gets a fresh random 96-bit nonce (SP 800-38D section 8.2.2: random nonces are
//! safe far beyond the number of secrets a store holds). The associated data binds the
//! integration's name and the key, so a sealed value copied to another integration or
//! another key does not open. A sealed value is stored as the JSON object
//! `{"sealed": "<base64 of nonce || ciphertext || tag>"}`: a config value is never an object
//! in a secret's place, so the two cannot be confused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value, json};

/// The field of a sealed value's JSON object.
pub const SEALED: &str = "sealed";

/// `[store] encryption_key`: 32 bytes; never printed.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

/// Why a sealed value does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("is not a sealed value mediagate wrote (bad base64 or too short)")]
    Malformed,
    #[error(
        "cannot be decrypted with [store] encryption_key: the key is not the one it was stored with \
         (or the stored value was altered)"
    )]
    WrongKey,
}

impl SealKey {
    pub fn new(bytes: [u8; 32]) -> SealKey {
        SealKey(bytes)
    }

    fn key(&self) -> LessSafeKey {
        // 32 bytes is AES-256-GCM's key length: `new` cannot fail.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).unwrap_or_else(|_| unreachable!("32-byte key")))
    }

    /// `plain` sealed for key `key` of integration `integration`; `None` when the system's
    /// random source fails (then nothing can be sealed safely).
    pub fn seal(&self, integration: &str, key: &str, plain: &str) -> Option<Value> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut data = plain.as_bytes().to_vec();
        let aad = associated_data(integration, key);
        self.key()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut data)
            .unwrap_or_else(|_| unreachable!("a secret is far below AES-GCM's length limit"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(json!({ SEALED: STANDARD.encode(out) }))
    }

    /// The secret sealed in `sealed` (the base64 text) for key `key` of `integration`.
    pub fn open(&self, integration: &str, key: &str, sealed: &str) -> Result<String, OpenError> {
        let mut bytes = STANDARD.decode(sealed).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Malformed);
        }
        let mut rest = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| OpenError::Malformed)?;
        let aad = associated_data(integration, key);
        let plain = self.key().open_in_place(nonce, Aad::from(aad), &mut rest).map_err(|_| OpenError::WrongKey)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError::Malformed)
    }

    /// `table` (an integration as written) with the string value of every key for which
    /// `secret` is true sealed.
    pub fn seal_table(
        &self,
        integration: &str,
        table: &Map<String, Value>,
        secret: impl Fn(&str) -> bool,
    ) -> Option<Map<String, Value>> {
        table
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) if secret(k) => Some((k.clone(), self.seal(integration, k, s)?)),
                other => Some((k.clone(), other.clone())),
            })
            .collect()
    }

    /// `stored` with every sealed value opened; the first failure names the key.
    pub fn open_table(
        &self,
        integration: &str,
        stored: &Map<String, Value>,
    ) -> Result<Map<String, Value>, (String, OpenError)> {
        let mut out = Map::new();
        for (k, v) in stored {
            let opened = match sealed_text(v) {
                Some(text) => Value::String(self.open(integration, k, text).map_err(|e| (k.clone(), e))?),
                None => v.clone(),
            };
            out.insert(k.clone(), opened);
        }
        Ok(out)
    }
}

/// The base64 text of a sealed value, if `v` is one.
pub fn sealed_text(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get(SEALED).and_then(Value::as_str),
        _ => None,
    }
}

/// What a sealed value is bound to: a version tag, the integration, the key.
fn associated_data(integration: &str, key: &str) -> Vec<u8> {
    format!("mediagate-store-v1\0{integration}\0{key}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::new([byte; 32])
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_never_holds_the_secret_in_clear() {
        let sealed = key(1).seal("minio", "secret_access_key", "wJalrXUtnFEMI/K7MDENG").expect("sealed");
        let text = sealed_text(&sealed).expect("sealed");
        assert!(!text.contains("wJalr"));
        assert_eq!(key(1).open("minio", "secret_access_key", text).as_deref(), Ok("wJalrXUtnFEMI/K7MDENG"));
    }

    #[test]
    fn every_seal_of_one_value_differs_because_each_has_its_own_nonce() {
        assert_ne!(key(1).seal("a", "k", "same"), key(1).seal("a", "k", "same"));
        assert!(key(1).seal("a", "k", "same").is_some());
    }

    #[test]
    fn a_sealed_value_does_not_open_with_another_key_integration_or_key_name() {
        let sealed = key(1).seal("minio", "secret_access_key", "s3cr3t").expect("sealed");
        let text = sealed_text(&sealed).expect("sealed");
        assert_eq!(key(2).open("minio", "secret_access_key", text), Err(OpenError::WrongKey));
        assert_eq!(key(1).open("other", "secret_access_key", text), Err(OpenError::WrongKey));
        assert_eq!(key(1).open("minio", "session_token", text), Err(OpenError::WrongKey));
        assert_eq!(key(1).open("minio", "secret_access_key", "AAAA"), Err(OpenError::Malformed));
    }

    #[test]
    fn a_table_keeps_its_plain_keys_and_seals_only_the_secret_ones() {
        let table: Map<String, Value> =
            serde_json::from_str(r#"{"name": "m", "access_key_id": "AK", "secret_access_key": "SK", "port": 9000}"#)
                .expect("json");
        let sealed = key(3).seal_table("m", &table, |k| k == "secret_access_key").expect("sealed");
        assert_eq!(sealed["access_key_id"], "AK");
        assert_eq!(sealed["port"], 9000);
        assert!(sealed_text(&sealed["secret_access_key"]).is_some());
        assert_eq!(key(3).open_table("m", &sealed), Ok(table));
        let wrong = key(4).open_table("m", &sealed).expect_err("wrong key");
        assert_eq!(wrong, ("secret_access_key".to_owned(), OpenError::WrongKey));
    }
}
