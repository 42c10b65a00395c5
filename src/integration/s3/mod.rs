//! S3 and S3-compatible storage (and GCS through its XML API), signed with SigV4.

use crate::error::Result;
use crate::integration::{ObjectRequest, ObjectResponse};

/// An S3 integration's client.
pub struct S3Backend {}

impl S3Backend {
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        let _ = req;
        todo!()
    }

    pub async fn test_connection(&self) -> Result<String> {
        todo!()
    }
}
