//! A running request's claim on its key: shared with the handler (which may record the
//! answer in its own transaction), kept alive by a heartbeat while the handler runs, and
//! released if the request is abandoned.

use super::store::{self, Fence, Stored};
use super::streamed::StreamedBody;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use keel_persistence::DbPool;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the middleware and the handler share about one claim.
#[derive(Debug)]
pub(crate) struct ClaimState {
    pub(super) fence: Fence,
    /// Set when the handler's transaction stored the answer (committed or not yet).
    recorded: AtomicBool,
    /// The streamed body's fingerprint, on routes whose body is not buffered.
    pub(super) streamed: Option<Arc<StreamedBody>>,
}

impl ClaimState {
    pub(super) fn new(fence: Fence, streamed: Option<Arc<StreamedBody>>) -> Self {
        Self {
            fence,
            recorded: AtomicBool::new(false),
            streamed,
        }
    }

    /// The fingerprint to store with the answer in place of the one claimed with: the
    /// whole request's, once a streamed body has been read.
    pub(super) fn final_fingerprint(&self) -> Option<Vec<u8>> {
        self.streamed.as_ref()?.fingerprint()
    }

    pub(super) fn mark_recorded(&self) {
        self.recorded.store(true, Ordering::Release);
    }

    pub(super) fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }
}

/// The claim of a running request. Completing or releasing it disarms it; dropped while
/// armed (the request was cancelled: client gone, server stopping), it releases the key
/// in the background so a retry is not refused until the in-flight timeout.
pub(super) struct ClaimGuard {
    pool: DbPool,
    state: Arc<ClaimState>,
    armed: bool,
}

impl ClaimGuard {
    pub(super) fn new(pool: DbPool, state: Arc<ClaimState>) -> Self {
        Self {
            pool,
            state,
            armed: true,
        }
    }

    /// Runs `handler` while refreshing the claim's sign of life every `interval`, so no
    /// retry takes over a request that is merely slow.
    pub(super) async fn beating<F: Future>(&self, interval: Duration, handler: F) -> F::Output {
        let heartbeat = async {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(err) = store::heartbeat(&self.pool, &self.state.fence).await {
                    tracing::warn!(error = %err, "could not refresh an idempotency claim");
                }
            }
        };
        match futures::future::select(pin!(handler), pin!(heartbeat)).await {
            futures::future::Either::Left((output, _)) => output,
            // The heartbeat never ends; were it to, the handler still runs to its end.
            futures::future::Either::Right(((), handler)) => handler.await,
        }
    }

    /// The handler already stored the answer with its effect: nothing left to do.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Stores an answer that came with no effect (an error, or a handler that does not
    /// record its own). A streamed request whose body was not read to its end (refused
    /// early, or broken off) has no fingerprint to compare a retry with: its key is
    /// released instead, so a retry runs afresh rather than replaying a refusal to a
    /// body it may not share.
    pub(super) async fn complete(&mut self, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        if self.state.streamed.is_some() && self.state.final_fingerprint().is_none() {
            self.release().await;
            return;
        }
        self.armed = false;
        let answer = Stored::of(status, headers, body);
        let fingerprint = self.state.final_fingerprint();
        match store::complete(
            &self.pool,
            &self.state.fence,
            answer,
            fingerprint.as_deref(),
        )
        .await
        {
            Ok(true) => {}
            // The handler's transaction stored its answer, and the handler then answered
            // an error after the commit: the stored answer (of the committed change)
            // stands.
            Ok(false) if self.state.recorded() => {}
            // Taken over by a retry that found this attempt silent: its answer counts.
            Ok(false) => tracing::warn!("idempotency claim was taken over before it completed"),
            Err(err) => tracing::error!(error = %err, "could not store the idempotent response"),
        }
    }

    pub(super) async fn release(&mut self) {
        self.armed = false;
        release(&self.pool, &self.state.fence).await;
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        let fence = self.state.fence.clone();
        runtime.spawn(async move { release(&pool, &fence).await });
    }
}

async fn release(pool: &DbPool, fence: &Fence) {
    if let Err(err) = store::release(pool, fence).await {
        tracing::warn!(error = %err, "could not release an idempotency key");
    }
}
