//! Azure Blob Storage: `account_key` (SharedKey, signed here) and `sas_token`.

use crate::error::Result;
use crate::integration::{ObjectRequest, ObjectResponse};

/// An Azure Blob integration's client.
pub struct AzureBackend {}

impl AzureBackend {
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        let _ = req;
        todo!()
    }

    pub async fn test_connection(&self) -> Result<String> {
        todo!()
    }
}
