//! Builds the object store (and, for S3, the URL signer) that `storage.*` describes.

use crate::StorageError;
use keel_config::{StorageBackend, StorageSettings};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::signer::Signer;
use std::sync::Arc;

pub(crate) struct Built {
    pub store: Arc<dyn ObjectStore>,
    pub signer: Option<Arc<dyn Signer>>,
}

pub(crate) fn build(settings: &StorageSettings) -> Result<Built, StorageError> {
    match settings.backend {
        StorageBackend::Local => local(&settings.local_root),
        StorageBackend::S3 => s3(settings),
    }
}

/// A folder, created when missing. Empty folders left by deletions are removed, so a
/// deleted upload leaves nothing behind on disk.
fn local(root: &str) -> Result<Built, StorageError> {
    std::fs::create_dir_all(root)
        .map_err(|e| StorageError::Config(format!("storage.local_root {root:?}: {e}")))?;
    let store = LocalFileSystem::new_with_prefix(root)
        .map_err(|e| StorageError::Config(format!("storage.local_root {root:?}: {e}")))?
        .with_automatic_cleanup(true);
    Ok(Built {
        store: Arc::new(store),
        signer: None,
    })
}

/// Credentials not given in the settings come from the environment (`AWS_*`, an
/// instance or pod role), as every AWS tool does.
fn s3(s: &StorageSettings) -> Result<Built, StorageError> {
    // reqwest is built without a default TLS provider: use the process-wide one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s.s3_bucket)
        .with_region(&s.s3_region)
        .with_virtual_hosted_style_request(!s.s3_path_style);
    if !s.s3_endpoint.is_empty() {
        builder = builder
            .with_endpoint(&s.s3_endpoint)
            .with_allow_http(s.s3_endpoint.starts_with("http://"));
    }
    if !s.s3_access_key_id.is_empty() {
        builder = builder
            .with_access_key_id(&s.s3_access_key_id)
            .with_secret_access_key(s.s3_secret_access_key.expose());
    }
    let store = Arc::new(
        builder
            .build()
            .map_err(|e| StorageError::Config(format!("storage.s3_*: {e}")))?,
    );
    Ok(Built {
        store: store.clone(),
        signer: Some(store),
    })
}
