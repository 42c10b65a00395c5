//! HMAC-SHA256 (RFC 2104), the one helper behind signed URLs ([`crate::auth`])
//! and Azure SharedKey / SAS signatures ([`crate::integration::azure::credential`]).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The block size of SHA-256, in bytes.
const BLOCK: usize = 64;

/// A MAC keyed with `key`, to feed and then finalize or verify (in
/// constant time, `Mac::verify_slice`). The key is brought to one block the
/// way RFC 2104 section 2 does (hashed when longer than the 64-byte block,
/// zero-padded), so construction cannot fail.
pub fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256_of(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}
