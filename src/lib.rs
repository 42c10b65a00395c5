//! mediagate: a read-through caching HTTP proxy that serves media kept in
//! private object storage (S3 and S3-compatible, Google Cloud Storage through
//! its XML API, Azure Blob, a local directory) to browsers, CDNs and app pods.
//!
//! The request pipeline reads top to bottom in [`proxy`]: parse the locator
//! ([`locator`]), pick the integration ([`integration::Registry`]), ask the
//! storage with a signed request, and stream the answer back with the range
//! and conditional semantics of RFC 9110 ([`http`]). Every failure is an
//! [`error::Error`], turned into a response in exactly one place.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod control;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod http;
pub mod integration;
pub mod locator;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod schema;
pub mod secret;
pub mod server;
pub mod store;
pub mod sync;
pub mod tls;
