//! Streaming a request body into storage: bytes go out in parts as they arrive, are
//! counted (and hashed when a checksum is to be verified) on the way, and the write is
//! abandoned — leaving nothing — the moment the size limit is passed or the body breaks
//! off. The content's SHA-256 is not taken here: processing takes it, once, off the
//! request path (hashing is most of the CPU an upload costs).

use crate::UploadsError;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use keel_storage::{ObjectKey, Storage};
use sha2::Digest as _;
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

/// The digest to take of the body, to check a client's checksum against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    None,
    Sha1,
    Sha256,
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
    /// The digest asked for, if one was.
    pub digest: Option<Vec<u8>>,
    /// Why the body ended early, when it did and what arrived was kept.
    pub broken: Option<String>,
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
    digest: Digest,
) -> Result<Received, UploadsError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let mut writer = storage.writer(key).await?;
    let mut hasher = Hasher::of(digest);
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
        digest: hasher.finish(),
        broken,
    })
}

/// The running digest, if one is taken.
enum Hasher {
    None,
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn of(digest: Digest) -> Self {
        match digest {
            Digest::None => Hasher::None,
            Digest::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Digest::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::None => {}
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Option<Vec<u8>> {
        match self {
            Hasher::None => None,
            Hasher::Sha1(h) => Some(h.finalize().to_vec()),
            Hasher::Sha256(h) => Some(h.finalize().to_vec()),
        }
    }
}
