//! Idempotency for routes whose body is streamed, not buffered (file uploads): the key
//! is claimed on the request's head alone (path, query, content type), the body is
//! hashed while the handler reads it, and the answer is stored with the fingerprint of
//! head and body together. A retry whose head matches a finished request is read to
//! its end, hashed the same way, and replayed only when the bodies are the same.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The body's part of a streamed request's fingerprint, known once the body was read.
#[derive(Debug)]
pub(super) struct StreamedBody {
    head: Vec<u8>,
    digest: Mutex<Option<[u8; 32]>>,
}

impl StreamedBody {
    pub(super) fn new(head: Vec<u8>) -> Self {
        Self {
            head,
            digest: Mutex::new(None),
        }
    }

    /// The whole request's fingerprint, once the handler has read the body to its end.
    pub(super) fn fingerprint(&self) -> Option<Vec<u8>> {
        let digest = (*self.digest.lock().ok()?)?;
        Some(combine(&self.head, &digest))
    }

    fn finish(&self, digest: [u8; 32]) {
        if let Ok(mut slot) = self.digest.lock() {
            *slot = Some(digest);
        }
    }
}

/// The fingerprint of a streamed request: its head's, then its body's digest.
pub(super) fn combine(head: &[u8], body_digest: &[u8; 32]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(b"streamed");
    hash.update(head);
    hash.update(body_digest);
    hash.finalize().to_vec()
}

/// The request body, hashed as the handler reads it; at its end — the end of the
/// stream, or its `length` (`Content-Length`) reached, for a handler that stops reading
/// at the last byte without polling on (a multipart parser does) — the digest is handed
/// to `body`.
pub(super) fn hashing(payload: Payload, body: Arc<StreamedBody>, length: Option<u64>) -> Payload {
    let stream = Hashing {
        inner: payload,
        hasher: Some(Sha256::new()),
        body,
        seen: 0,
        length,
    };
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

struct Hashing {
    inner: Payload,
    hasher: Option<Sha256>,
    body: Arc<StreamedBody>,
    seen: u64,
    length: Option<u64>,
}

impl Hashing {
    fn finish(&mut self) {
        if let Some(hasher) = self.hasher.take() {
            self.body.finish(hasher.finalize().into());
        }
    }
}

impl Stream for Hashing {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                let len = chunk.len() as u64;
                if let Some(hasher) = self.hasher.as_mut() {
                    hasher.update(chunk);
                }
                self.seen += len;
                if self.length == Some(self.seen) {
                    self.finish();
                }
            }
            Poll::Ready(None) => self.finish(),
            // A broken body has no digest: its answer keeps the head's fingerprint.
            Poll::Ready(Some(Err(_))) => self.hasher = None,
            Poll::Pending => {}
        }
        polled
    }
}

/// The digest of a retry's whole body, read and dropped chunk by chunk.
pub(super) async fn digest_of(mut payload: Payload) -> Result<[u8; 32], PayloadError> {
    let mut hasher = Sha256::new();
    while let Some(chunk) = payload.next().await {
        hasher.update(&chunk?);
    }
    Ok(hasher.finalize().into())
}
