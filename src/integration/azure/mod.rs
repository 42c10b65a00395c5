//! Azure Blob Storage: reads blobs with [Get Blob] and [Get Blob Properties],
//! authorized with an `account_key` (SharedKey, signed here, see [`credential`])
//! or a `sas_token`.
//!
//! [Get Blob]: https://learn.microsoft.com/rest/api/storageservices/get-blob
//! [Get Blob Properties]: https://learn.microsoft.com/rest/api/storageservices/get-blob-properties

mod client;
pub mod config;
pub mod credential;

pub use client::{API_VERSION, AzureBackend};
pub use credential::{SharedKeyCredential, shared_key_authorization, string_to_sign};
pub mod identity;
pub mod imds;
pub mod secret_file;
pub mod transport;
