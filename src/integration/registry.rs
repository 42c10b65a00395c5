//! Which integration serves a locator (CONTRACT.md section 2).

use std::sync::Arc;

use crate::error::Result;
use crate::integration::Integration;
use crate::locator::Locator;

/// All integrations, indexed by scope.
pub struct Registry {
    integrations: Vec<Arc<Integration>>,
}

impl Registry {
    pub fn resolve(&self, loc: &Locator) -> Result<&Arc<Integration>> {
        let _ = loc;
        todo!()
    }

    pub fn all(&self) -> &[Arc<Integration>] {
        &self.integrations
    }
}
