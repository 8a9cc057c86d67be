//! What can go wrong talking to the object store.

/// A failed storage call. `NotFound` is the one callers branch on; the rest are the
/// store being unreachable or refusing, which callers report as unavailable (503) or
/// retry (jobs).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object at this key.
    #[error("no object at {0}")]
    NotFound(String),
    /// The requested byte range starts past the end of the object.
    #[error("range not satisfiable")]
    Range,
    /// The local backend cannot sign URLs; callers use Keel's own signed routes instead.
    #[error("this storage backend cannot presign URLs")]
    CannotPresign,
    /// A presign condition that cannot be a header value (the caller validates first).
    #[error("not a valid header value: {0}")]
    Invalid(String),
    /// `storage.*` settings that cannot work: stops start-up.
    #[error("storage settings: {0}")]
    Config(String),
    /// Reading a local file failed.
    #[error("reading a stored file: {0}")]
    Io(#[source] std::io::Error),
    /// Anything else from the store (network, permissions, disk).
    #[error("object storage: {0}")]
    Store(#[source] object_store::Error),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StorageError::NotFound(path),
            object_store::Error::NotModified { .. } => StorageError::Store(e),
            other if is_range_error(&other) => StorageError::Range,
            other => StorageError::Store(other),
        }
    }
}

/// object_store reports an unsatisfiable range as a generic error with the cause in its
/// source chain (the local store's "Wanted range starting at ..."). Callers that know
/// the object's size check ranges themselves; this is the backstop.
fn is_range_error(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if err.to_string().contains("Wanted range starting at") {
            return true;
        }
        cause = err.source();
    }
    false
}

pub type StorageResult<T> = Result<T, StorageError>;
