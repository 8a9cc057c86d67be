//! Waiting for background work (jobs, cache invalidations, processes) without sleeping a
//! fixed time: poll until the condition holds, up to a limit.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it is true; false if `within` passed first.
pub async fn wait_until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`wait_until`] that fails the test, naming `what` it waited for.
pub async fn eventually<F, Fut>(what: &str, within: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        wait_until(within, check).await,
        "timed out after {within:?} waiting for {what}"
    );
}
