//! A directory on the proxy's disk: one sub-directory per bucket.

use crate::error::Result;
use crate::integration::{ObjectRequest, ObjectResponse};

/// A local-directory integration.
pub struct LocalBackend {}

impl LocalBackend {
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        let _ = req;
        todo!()
    }

    pub async fn test_connection(&self) -> Result<String> {
        todo!()
    }
}
