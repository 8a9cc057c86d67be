//! Streaming a request body into storage: bytes go out in parts as they arrive, are
//! counted and hashed on the way, and the write is abandoned — leaving nothing — the
//! moment the size limit is passed or the body breaks off.

use crate::UploadsError;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use keel_storage::{ObjectKey, Storage};
use sha1::Sha1;
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

/// What to do when the body breaks off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnBreak {
    /// Drop everything: a streamed upload is whole or nothing.
    Discard,
    /// Keep what arrived (a resumable upload's chunk: the client resumes after it).
    Keep,
}

/// What was stored.
#[derive(Debug)]
pub(crate) struct Received {
    pub size: u64,
    pub sha256: [u8; 32],
    pub sha1: [u8; 20],
    /// Why the body ended early, when it did and what arrived was kept.
    pub broken: Option<String>,
}

impl Received {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Streams `body` to `key`. On an error the partial object is aborted (or, with
/// [`OnBreak::Keep`] and a broken body, published with what arrived), so the caller
/// only ever sees a complete object or none.
pub(crate) async fn receive<S, E>(
    storage: &Storage,
    key: ObjectKey,
    mut body: S,
    limit: &Limit,
    on_break: OnBreak,
) -> Result<Received, UploadsError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let mut writer = storage.writer(key).await?;
    let mut sha256 = Sha256::new();
    let mut sha1 = Sha1::new();
    let mut broken = None;
    let failure = loop {
        match body.next().await {
            None => break None,
            Some(Err(e)) if on_break == OnBreak::Keep && writer.written() > 0 => {
                broken = Some(e.to_string());
                break None;
            }
            Some(Err(e)) => break Some(UploadsError::Incomplete(e.to_string())),
            Some(Ok(chunk)) => {
                if writer.written() + chunk.len() as u64 > limit.bytes {
                    break Some(limit.exceeded());
                }
                sha256.update(&chunk);
                sha1.update(&chunk);
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
        sha256: sha256.finalize().into(),
        sha1: sha1.finalize().into(),
        broken,
    })
}
