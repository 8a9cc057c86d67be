//! The inspection every upload gets: one pass over the stored bytes for their size and
//! SHA-256, keeping the first bytes to recognise the type.

use super::{Content, ProcessError};
use crate::sniff::HEAD_BYTES;
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// Size, digest and the first [`HEAD_BYTES`] of a stored file.
#[derive(Debug)]
pub(crate) struct Inspected {
    pub size: u64,
    pub sha256: String,
    pub head: Vec<u8>,
}

pub(crate) async fn inspect(content: &Content<'_>) -> Result<Inspected, ProcessError> {
    let mut stream = content.stream().await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(Inspected {
        size,
        sha256: hex::encode(hasher.finalize()),
        head,
    })
}
