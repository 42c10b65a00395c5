//! The config file on disk: read, edit and replace it atomically, one edit at a time (see the
//! parent module's doc for why each step is there).

use std::fmt;
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

/// The config file on disk; one [`ConfigFile::update`] at a time.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

/// Why [`ConfigFile::update`] failed: the file, or the edit.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Edit(E),
}

impl ConfigFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), lock: Arc::new(Mutex::new(())) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current text (a save replaces the file whole, so this never sees half of one).
    pub async fn read(&self) -> Result<String, FileError> {
        tokio::fs::read_to_string(&self.path).await.map_err(|io| FileError::new(&self.path, &self.path, Step::Read, io))
    }

    /// Under one lock: reads the file, applies `edit` to its text, writes the result
    /// atomically (see the module doc) and returns `edit`'s answer. An edit that returns the
    /// text unchanged writes nothing. Once the write has started it finishes, and keeps the
    /// lock, even if the caller stops waiting, so no later update can read the old text.
    pub async fn update<T, E>(&self, edit: impl FnOnce(&str) -> Result<(String, T), E>) -> Result<T, UpdateError<E>> {
        let guard = Arc::clone(&self.lock).lock_owned().await;
        let old = self.read().await?;
        let (new, answer) = edit(&old).map_err(UpdateError::Edit)?;
        if new != old {
            let path = self.path.clone();
            let write = tokio::task::spawn_blocking(move || {
                let _held = guard;
                write_atomic(&path, &new)
            });
            let joined =
                write.await.map_err(|e| FileError::new(&self.path, &self.path, Step::Write, io::Error::other(e)));
            joined??;
        }
        Ok(answer)
    }
}

/// Replaces the file at `path` (or, for a symbolic link, its target) with `text`: temporary
/// file beside it with mode 0600 from creation, write, fsync, rename over, fsync the directory.
/// On failure the temporary file is removed and the original is untouched.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), FileError> {
    let target = std::fs::canonicalize(path).map_err(|io| FileError::new(path, path, Step::Resolve, io))?;
    let written = target.as_path();
    let fail = |step| move |io| FileError::new(path, written, step, io);
    let dir = target.parent().ok_or_else(|| fail(Step::Resolve)(io::Error::other("no parent directory")))?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(fail(Step::Create))?;
    temp.write_all(text.as_bytes()).map_err(fail(Step::Write))?;
    temp.as_file().sync_all().map_err(fail(Step::Sync))?;
    temp.persist(&target).map_err(|e| fail(Step::Rename)(e.error))?;
    // The new file is in place; a failed directory flush only weakens durability after a
    // crash, so it is logged rather than reported as "not saved" (which would be untrue).
    if let Err(e) = File::open(dir).and_then(|dir| dir.sync_all()) {
        tracing::warn!(path = %dir.display(), error = %e, "could not flush the config file's directory");
    }
    Ok(())
}

/// The step of reading or saving the config file that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Read,
    Resolve,
    Create,
    Write,
    Sync,
    Rename,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Read => "reading it",
            Step::Resolve => "resolving its path",
            Step::Create => "creating a temporary file beside it",
            Step::Write => "writing the temporary file",
            Step::Sync => "flushing the temporary file to disk",
            Step::Rename => "renaming the temporary file over it",
        })
    }
}

/// Reading or saving the config file failed; the message names the file, the step and the
/// operating system's reason, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct FileError {
    pub path: PathBuf,
    /// The file actually written: `path`, or the target of the link at `path`.
    pub target: PathBuf,
    pub step: Step,
    pub io: io::Error,
}

impl FileError {
    pub(super) fn new(path: &Path, target: &Path, step: Step, io: io::Error) -> Self {
        Self { path: path.to_owned(), target: target.to_owned(), step, io }
    }

    fn describe(&self) -> String {
        let file = match self.target == self.path {
            true => self.path.display().to_string(),
            false => format!("{} (a link to {})", self.path.display(), self.target.display()),
        };
        let (step, io) = (self.step, &self.io);
        match io.kind() {
            io::ErrorKind::ReadOnlyFilesystem => format!(
                "the config file {file} is on a read-only file system: integrations changed through \
                 the API cannot be saved; mount it writable (a Kubernetes ConfigMap or Secret volume \
                 is always read-only: copy the file to a writable volume, e.g. with an init \
                 container), or change integrations in the file's source instead"
            ),
            io::ErrorKind::NotFound if matches!(step, Step::Read | Step::Resolve) => format!(
                "the config file {file} does not exist any more ({io}): integrations changed \
                 through the API cannot be saved; put it back and retry"
            ),
            _ if step == Step::Read => format!("cannot read the config file {file}: {io}"),
            io::ErrorKind::PermissionDenied => format!(
                "cannot save the config file {file}: {step} was refused ({io}); the file and its \
                 directory must be writable by the user mediagate runs as (a save writes a new \
                 file beside it and renames it over the old one)"
            ),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => format!(
                "cannot save the config file {file}: the disk is full ({io}) while {step}; free \
                 some space and retry"
            ),
            _ => format!("cannot save the config file {file}: {step} failed: {io}"),
        }
    }
}
