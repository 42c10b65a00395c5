//! Who may load what: signed URLs (CONTRACT.md section 5).
//!
//! `[auth] mode = "none"` lets every request through; `signed-url` (coming)
//! checks `exp`, `sig` and `kid` against the locator's canonical path form.

use std::time::SystemTime;

use crate::error::Result;
use crate::locator::Locator;

/// The client-authentication policy of the media listener.
#[derive(Debug, Clone, Default)]
pub struct Auth {}

impl Auth {
    /// `mode = "none"`: every request is let through.
    pub fn none() -> Auth {
        Auth {}
    }

    /// Checks that a media request may read `loc`; `query` is the raw query
    /// string of the request (which carries `exp`, `sig`, `kid`).
    pub fn verify(&self, loc: &Locator, query: Option<&str>, now: SystemTime) -> Result<()> {
        let _ = (loc, query, now);
        Ok(())
    }
}
