//! A directory on the proxy's disk: `local://<bucket>/<key>` is the file
//! `<root>/<bucket>/<key>`. Used for the embedded demo, tests and NFS mounts.
//!
//! Nothing can leave the root: an absolute key or a path whose symlinks
//! resolve outside the root is `400 bad_locator`. Keys with `.` or `..`
//! segments never get here (the locator refuses them, see
//! [`crate::locator::check_key`]); should one ever do, it is refused with an
//! internal error before the file system is touched
//! ([`crate::locator::check_upstream_path`]).
//! Range and preconditions are answered here from the file's metadata, with
//! a strong ETag made of the modification time and the size (as nginx does).

pub mod config;

use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use self::config::LocalConfig;
use crate::error::{Error, Kind, Result};
use crate::http::body::{self, BoxError};
use crate::http::range::ByteSpan;
use crate::integration::probe::{Context, Problem, Storage, Target};
use crate::integration::{ObjectMeta, ObjectRequest, ObjectResponse, Part};
use crate::locator::{check_upstream_path, encode_key};

/// Read buffer per streamed file: memory per request stays at this size.
const CHUNK: usize = 64 * 1024;

/// A local-directory integration.
#[derive(Debug)]
pub struct LocalBackend {
    name: String,
    /// The configured root, canonicalized when the integration is built.
    root: PathBuf,
    /// The scope: one directory under the root each.
    buckets: Vec<String>,
}

impl LocalBackend {
    /// Builds the integration; the root must exist and be a directory.
    pub fn new(name: &str, cfg: &LocalConfig) -> Result<LocalBackend, String> {
        let root = cfg.root.canonicalize().map_err(|e| format!("root {} cannot be opened: {e}", cfg.root.display()))?;
        if !root.is_dir() {
            return Err(format!("root {} is not a directory", cfg.root.display()));
        }
        Ok(LocalBackend { name: name.to_owned(), root, buckets: cfg.buckets.clone() })
    }

    /// Reads a file, a range of it, or its metadata.
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        let what = format!("local://{}/{}", req.bucket, req.key);
        let path = self.resolve(req.bucket, req.key, &what).await?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| self.io_error(e, &what))?;
        let md = file.metadata().await.map_err(|e| self.io_error(e, &what))?;
        if !md.is_file() {
            return Err(not_found(&what, &self.name));
        }
        let meta = file_meta(md.len(), md.modified().ok());
        let span = match req.range {
            None => None,
            Some(spec) => Some(spec.resolve(meta.size).ok_or_else(|| {
                Error::new(Kind::RangeNotSatisfiable { len: Some(meta.size) }, format!("the range lies outside {what}"))
            })?),
        };
        let part = span.map_or(Part::Whole, Part::Range);
        if req.head {
            return Ok(ObjectResponse::new(meta, part, body::empty()));
        }
        let span = span.unwrap_or(ByteSpan { start: 0, end: meta.size.saturating_sub(1) });
        let len = if meta.size == 0 { 0 } else { span.len() };
        file.seek(SeekFrom::Start(span.start)).await.map_err(|e| self.io_error(e, &what))?;
        let stream = ReaderStream::with_capacity(file.take(len), CHUNK)
            .map_ok(Frame::data)
            .map_err(|e| -> BoxError { Box::new(e) });
        Ok(ObjectResponse::new(meta, part, StreamBody::new(stream).boxed_unsync()))
    }

    /// The connection test: the root and each scoped bucket's directory can
    /// be listed; the first failure ends it. `Ok` says what was listed.
    pub async fn test_connection(&self) -> Result<String, Problem> {
        list_directory(Target::Directory { bucket: None, path: self.root.clone() }).await?;
        for bucket in &self.buckets {
            let path = self.root.join(bucket);
            list_directory(Target::Directory { bucket: Some(bucket.clone()), path }).await?;
        }
        Ok(match self.buckets.len() {
            0 => format!("listed root directory {}", self.root.display()),
            1 => {
                format!("listed root directory {} and the directory of bucket {}", self.root.display(), self.buckets[0])
            }
            _ => format!(
                "listed root directory {} and the directories of buckets {}",
                self.root.display(),
                self.buckets.join(", ")
            ),
        })
    }

    /// What the connection test's sentences may name.
    pub fn probe_context(&self) -> Context<'_> {
        Context { integration: &self.name, storage: Storage::Local { root: &self.root } }
    }

    /// The file of `bucket`/`key`, proven to lie inside the root.
    async fn resolve(&self, bucket: &str, key: &str, what: &str) -> Result<PathBuf> {
        check_upstream_path(&format!("/{}/{}", encode_key(bucket), encode_key(key)), &self.name)?;
        check_key_is_relative(key, what)?;
        let path = self.root.join(bucket).join(key);
        let real = tokio::fs::canonicalize(&path).await.map_err(|e| self.io_error(e, what))?;
        if !real.starts_with(&self.root) {
            return Err(Error::bad_locator(format!("{what} leads outside the root of integration \"{}\"", self.name)));
        }
        Ok(real)
    }

    fn io_error(&self, e: std::io::Error, what: &str) -> Error {
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => not_found(what, &self.name),
            std::io::ErrorKind::PermissionDenied => Error::new(
                Kind::UpstreamDenied,
                format!("integration \"{}\" may not read {what}: permission denied", self.name),
            ),
            _ => Error::new(Kind::UpstreamError, format!("integration \"{}\" failed to read {what}: {e}", self.name)),
        }
    }
}

/// Opens a directory and reads its first entry.
async fn list_directory(target: Target) -> Result<(), Problem> {
    let Target::Directory { path, .. } = &target else {
        return Err(Problem::Internal(format!("{target} is not a directory")));
    };
    let mut dir = match tokio::fs::read_dir(path).await {
        Ok(dir) => dir,
        Err(e) => return Err(Problem::local(target, &e)),
    };
    match dir.next_entry().await {
        Ok(_) => Ok(()),
        Err(e) => Err(Problem::local(target, &e)),
    }
}

fn not_found(what: &str, integration: &str) -> Error {
    Error::new(Kind::NotFound, format!("{what} does not exist in integration \"{integration}\""))
}

/// Refuses absolute keys (`/etc/passwd`). Dot segments are refused before,
/// by the locator and by [`check_upstream_path`]; symlinks are checked after
/// resolution, in [`LocalBackend::resolve`].
fn check_key_is_relative(key: &str, what: &str) -> Result<()> {
    let absolute = Path::new(key).components().any(|c| matches!(c, Component::RootDir | Component::Prefix(_)));
    if absolute {
        return Err(Error::bad_locator(format!("{what}: a local key may not start with '/'")));
    }
    Ok(())
}

/// Metadata of a file; the ETag is `"<mtime in ns, hex>-<size, hex>"`.
fn file_meta(size: u64, modified: Option<SystemTime>) -> ObjectMeta {
    let nanos = modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    ObjectMeta { size, etag: Some(format!("\"{nanos:x}-{size:x}\"")), last_modified: modified, ..ObjectMeta::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_keys_are_refused_and_relative_ones_pass() {
        for key in ["/etc/passwd", "//x", "/"] {
            let err = check_key_is_relative(key, "local://b/x").unwrap_err();
            assert_eq!(err.kind, Kind::BadLocator, "{key:?}");
        }
        for key in ["a", "a/b.mp4", "a..b", "..a", "a//b", "dir/"] {
            assert!(check_key_is_relative(key, "local://b/x").is_ok(), "{key:?}");
        }
    }

    #[tokio::test]
    async fn a_key_with_a_dot_segment_never_reaches_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other/x.txt"), b"other").unwrap();
        let cfg = LocalConfig { root: dir.path().to_owned(), buckets: vec!["b".to_owned()] };
        let backend = LocalBackend::new("files", &cfg).unwrap();
        let cond = crate::http::conditional::Conditions::default();
        for key in ["../other/x.txt", "./../other/x.txt", "sub/../../other/x.txt", "..", "."] {
            let req = ObjectRequest { head: false, bucket: "b", key, range: None, conditions: &cond };
            let Err(err) = backend.fetch(&req).await else { panic!("{key:?} was read") };
            assert_eq!(err.kind, Kind::Internal, "{key:?}: {}", err.message);
        }
    }

    #[test]
    fn the_etag_changes_with_mtime_and_size() {
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(0x1234);
        assert_eq!(file_meta(16, Some(t)).etag.as_deref(), Some("\"1234-10\""));
        assert_ne!(file_meta(17, Some(t)).etag, file_meta(16, Some(t)).etag);
    }
}
