//! Streaming a request body into storage: bytes go out in parts as they arrive, are
//! counted and hashed on the way, and the write is abandoned — leaving nothing — the
//! moment the size limit is passed or the body breaks off.

use crate::UploadsError;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use keel_storage::{ObjectKey, Storage};
use sha2::{Digest, Sha256};
use std::fmt::Display;

/// The most a body may carry, and what to tell the client past it.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub bytes: u64,
    pub why: String,
}

impl Limit {
    pub fn exceeded(&self) -> UploadsError {
        UploadsError::TooLarge(self.why.clone())
    }
}

/// What was stored.
#[derive(Debug)]
pub(crate) struct Received {
    pub size: u64,
    pub sha256: String,
}

/// Streams `body` to `key`. On any error the partial object is aborted, so the caller
/// only ever sees a complete object or none.
pub(crate) async fn receive<S, E>(
    storage: &Storage,
    key: ObjectKey,
    mut body: S,
    limit: &Limit,
) -> Result<Received, UploadsError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let mut writer = storage.writer(key).await?;
    let mut hasher = Sha256::new();
    let failure = loop {
        match body.next().await {
            None => break None,
            Some(Err(e)) => break Some(UploadsError::Incomplete(e.to_string())),
            Some(Ok(chunk)) => {
                if writer.written() + chunk.len() as u64 > limit.bytes {
                    break Some(limit.exceeded());
                }
                hasher.update(&chunk);
                if let Err(e) = writer.write(chunk).await {
                    break Some(e.into());
                }
            }
        }
    };
    if let Some(error) = failure {
        if let Err(e) = writer.abort().await {
            tracing::warn!(error = %e, "a refused upload could not be aborted; the sweeper will remove it");
        }
        return Err(error);
    }
    let size = writer.finish().await?;
    Ok(Received {
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}
