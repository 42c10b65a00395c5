//! HTTP building blocks of the media path, one module per feature.

pub mod body;
pub mod conditional;
pub mod content_type;
pub mod cors;
pub mod entity;
pub mod head;
pub mod multipart;
pub mod range;
