//! The safety net under the doorbells: re-rings jobs whose doorbell was lost (Redis
//! restarted empty, a push failed, a caller forgot to ring) or whose worker died with the
//! lease, buries jobs whose worker died on their last attempt, and purges old finished
//! rows. One instance at a time across all processes: each pass runs under a
//! transaction-scoped advisory lock, so a pass that cannot take it skips.

use crate::doorbell::{Doorbells, Ring};
use crate::repo;
use chrono::Utc;
use keel_config::QueueSettings;
use keel_persistence::AsyncConnection as _;
use keel_persistence::{DbError, DbPool};
use std::sync::Arc;
use tokio::sync::watch;

/// Rows re-rung per pass; the next pass takes the rest.
const BATCH: i64 = 500;
/// Purge old rows and vacuum Redis every this many passes.
const HOUSEKEEPING_EVERY: u64 = 60;

pub(crate) struct Reconciler {
    pub pool: DbPool,
    pub doorbells: Arc<Doorbells>,
    pub settings: QueueSettings,
    /// Job kinds whose apalis queues this process vacuums.
    pub kinds: Vec<&'static str>,
}

/// What one pass did (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// False when another process held the lock and this pass did nothing.
    pub ran: bool,
    pub rung: usize,
    pub buried: usize,
}

impl Reconciler {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.settings.reconcile_interval());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut passes: u64 = 0;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            passes += 1;
            match self.pass().await {
                Ok(report) if report.rung + report.buried > 0 => {
                    tracing::info!(
                        rung = report.rung,
                        buried = report.buried,
                        "reconciler pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
            }
            if passes.is_multiple_of(HOUSEKEEPING_EVERY) {
                self.housekeeping().await;
            }
        }
    }

    pub async fn pass(&self) -> Result<PassReport, DbError> {
        let redeliver_ms = self.settings.redeliver_after().as_millis() as i64;
        let found = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                if !repo::try_reconciler_lock(conn).await? {
                    return Ok::<_, DbError>(None);
                }
                let buried = repo::bury_exhausted_leases(conn).await?;
                let due = repo::take_due(conn, redeliver_ms, BATCH).await?;
                Ok(Some((buried, due)))
            })
            .await?;
        let Some((buried, due)) = found else {
            return Ok(PassReport::default());
        };
        // What says the safety net is alive: the last pass that ran, in any process.
        metrics::gauge!("keel_queue_reconciler_last_pass_timestamp_seconds")
            .set(Utc::now().timestamp() as f64);
        for row in &buried {
            metrics::counter!("keel_jobs_dead_total", "kind" => row.kind.clone()).increment(1);
            tracing::error!(job.kind = %row.kind, "job dead: its worker was lost on the last attempt");
        }
        let now = Utc::now();
        let rings: Vec<Ring> = due
            .iter()
            .map(|row| {
                let reason = if row.lease_expired {
                    "lease_expired"
                } else {
                    "doorbell_lost"
                };
                metrics::counter!("keel_queue_redeliveries_total", "reason" => reason).increment(1);
                Ring {
                    kind: row.kind.clone(),
                    job_id: row.id,
                    run_at: now,
                }
            })
            .collect();
        // Rung after commit: a worker claiming at once must see the row's new state.
        self.doorbells.ring(&rings).await;
        Ok(PassReport {
            ran: true,
            rung: rings.len(),
            buried: buried.len(),
        })
    }

    async fn housekeeping(&self) {
        match self.doorbells.vacuum(&self.kinds).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "handled doorbells vacuumed from Redis"),
            Err(e) => tracing::debug!(error = %e, "doorbell vacuum failed"),
        }
        self.purge().await;
    }

    async fn purge(&self) {
        let hours = self.settings.retain_succeeded_hours as i64;
        let purged = async {
            let mut conn = self.pool.get().await?;
            repo::purge_succeeded(&mut conn, hours, 10_000).await
        }
        .await;
        match purged {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old succeeded jobs deleted"),
            Err(e) => tracing::warn!(error = %e, "purging old jobs failed"),
        }
    }
}
