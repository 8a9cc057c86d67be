//! `notifications.deliver_webhook`: one attempt to deliver one delivery row.
//!
//! - Success (2xx): the row is delivered; the endpoint's failure streak and breaker reset.
//! - Network error, timeout, 5xx, 429: retried with exponential backoff and jitter
//!   (`webhooks.backoff_*`), or after the receiver's `Retry-After` when that is longer.
//! - Other 4xx, a redirect, a blocked address: failed at once (retrying sends the same
//!   request to the same answer).
//! - Every failure extends the endpoint's streak. At `webhooks.breaker_threshold` the
//!   breaker opens: deliveries wait `breaker_cooldown_secs` without calling the receiver
//!   (and without using up attempts), then a single probe decides. At
//!   `webhooks.disable_after_failures` the endpoint is disabled and the organization's
//!   admins are told (in-app and email) through a `webhook.disabled` event.

use crate::repo::deliveries::{self, AttemptOutcome, Target};
use crate::repo::endpoints;
use crate::service::Notifications;
use crate::webhooks::deliveries::DeliveryStatus;
use crate::webhooks::send::{Attempt, Verdict};
use crate::webhooks::{observe, signing};
use chrono::{DateTime, Utc};
use keel_events::{Audience, Event};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbError, DbResult};
use keel_queue::{Job, JobContext, JobError, backoff};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deliver {
    pub delivery_id: Uuid,
}

impl Job for Deliver {
    const NAME: &'static str = "notifications.deliver_webhook";
    /// With the default 1 s base the attempts spread over about two hours (1 s doubling,
    /// capped at an hour): long enough to ride out a deploy or an outage of the receiver.
    const MAX_ATTEMPTS: Option<u32> = Some(12);
    /// Above any sensible `webhooks.timeout_ms`, plus the bookkeeping.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(120));
}

impl Notifications {
    pub(crate) async fn deliver(
        &self,
        ctx: &JobContext,
        delivery_id: Uuid,
    ) -> Result<(), JobError> {
        let settings = &self.inner.settings.webhooks;
        let mut conn = self.inner.pool.get().await?;
        let Some(target) = deliveries::target(&mut conn, delivery_id).await? else {
            // The endpoint (and with it the delivery) was deleted.
            return Ok(());
        };
        ctx.record_org(target.org_id);
        if target.status == DeliveryStatus::Delivered {
            return Ok(());
        }
        if !target.enabled {
            deliveries::finish(
                &mut conn,
                delivery_id,
                DeliveryStatus::Failed,
                None,
                "the endpoint is disabled",
            )
            .await?;
            return Ok(());
        }
        let now = Utc::now();
        let threshold = i32::try_from(settings.breaker_threshold).unwrap_or(i32::MAX);
        if let Admission::Wait(until) = admit(
            &mut conn,
            target.endpoint_id,
            threshold,
            settings.breaker_cooldown(),
        )
        .await?
        {
            // Wake the waiting deliveries at random points a little after the cooldown
            // ends (0.375 to 0.5 of a cooldown later), not all in the same instant: the
            // single probe goes first and the rest find its verdict.
            let wait = (until - now).to_std().unwrap_or_default();
            let after = settings
                .breaker_cooldown()
                .mul_f64(rand::rng().random_range(0.375..=0.5));
            return Err(JobError::Defer(
                wait + after,
                "circuit breaker open".to_owned(),
            ));
        }
        drop(conn);

        let attempt = self.send(&target, delivery_id, ctx.attempt, now).await;
        let host = observe::host_label(&target.url);
        observe::record_attempt(&host, &attempt);
        // One connection at a time: `failed` takes its own (a transaction), so the
        // failure arms take theirs only after it; holding one while waiting for another
        // can exhaust the pool when every delivery fails at once.
        match &attempt.verdict {
            Verdict::Delivered => {
                let mut conn = self.inner.pool.get().await?;
                record_attempt(&mut conn, delivery_id, &attempt, DeliveryStatus::Delivered).await?;
                // Written only when there is a streak to end (a healthy endpoint costs no
                // write), judged by the row as it is now, not as this job loaded it.
                endpoints::end_streak(&mut conn, target.endpoint_id).await?;
                observe::breaker_gauge(&host, false);
                Ok(())
            }
            Verdict::Retry { retry_after, .. } => {
                let (still_enabled, streak) =
                    self.failed(target.endpoint_id, target.org_id).await?;
                observe::breaker_gauge(&host, streak >= threshold);
                let give_up = ctx.is_last_attempt() || !still_enabled;
                let status = if give_up {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Pending
                };
                let mut conn = self.inner.pool.get().await?;
                record_attempt(&mut conn, delivery_id, &attempt, status).await?;
                if give_up {
                    return Ok(());
                }
                let ours =
                    backoff::delay(ctx.attempt, settings.backoff_base(), settings.backoff_max());
                let wait = retry_after.map_or(ours, |theirs| theirs.max(ours));
                Err(JobError::retry_after(
                    wait,
                    anyhow::anyhow!(attempt.error.clone().unwrap_or_default()),
                ))
            }
            Verdict::Fail { .. } => {
                let (_, streak) = self.failed(target.endpoint_id, target.org_id).await?;
                observe::breaker_gauge(&host, streak >= threshold);
                let mut conn = self.inner.pool.get().await?;
                record_attempt(&mut conn, delivery_id, &attempt, DeliveryStatus::Failed).await?;
                Ok(())
            }
        }
    }

    async fn send(
        &self,
        target: &Target,
        delivery_id: Uuid,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Attempt {
        let mut secrets = vec![target.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&target.previous_secret, target.previous_secret_expires_at)
            && until > now
        {
            secrets.push(previous);
        }
        let body = target.body.as_bytes();
        let headers = [
            (
                signing::SIGNATURE_HEADER,
                signing::signature_header(&secrets, now.timestamp(), body),
            ),
            (signing::DELIVERY_ID_HEADER, delivery_id.to_string()),
            (signing::EVENT_TYPE_HEADER, target.event_type.clone()),
            ("keel-delivery-attempt", attempt.to_string()),
        ];
        self.inner
            .sender
            .post(&target.url, &headers, body.to_vec())
            .await
    }

    /// One more failure in the endpoint's streak: opens the breaker at the threshold,
    /// disables the endpoint (and tells the admins) at the limit. Returns whether the
    /// endpoint is still enabled, and the streak.
    async fn failed(&self, endpoint_id: Uuid, org_id: Uuid) -> Result<(bool, i32), JobError> {
        let settings = self.inner.settings.webhooks.clone();
        let (enabled, streak, rings) = self
            .inner
            .pool
            .get().await?.transaction(async |conn| {
                    let streak = endpoints::count_failure(
                        conn,
                        endpoint_id,
                        i32::try_from(settings.breaker_threshold).unwrap_or(i32::MAX),
                        settings.breaker_cooldown(),
                    )
                    .await?;
                    let limit = i32::try_from(settings.disable_after_failures).unwrap_or(i32::MAX);
                    if !streak.enabled || streak.consecutive_failures < limit {
                        return Ok::<_, DbError>((
                            streak.enabled,
                            streak.consecutive_failures,
                            Vec::new(),
                        ));
                    }
                    let reason = format!("{limit} failed attempts in a row");
                    endpoints::disable(conn, endpoint_id, &reason).await?;
                    let event = Event {
                        event_type: "webhook.disabled".to_owned(),
                        org_id,
                        audience: Audience::Admins,
                        title: "A webhook endpoint was disabled".to_owned(),
                        body: format!(
                            "Deliveries to the endpoint at {} failed {limit} times in a row, \
                             so it was disabled. Fix the receiver, then re-enable it.",
                            observe::host_of(&streak.url)
                        ),
                        link: None,
                        // The host only: a URL's path often carries the receiver's token,
                        // and this event may go to other endpoints.
                        data: serde_json::json!({
                            "endpoint_id": endpoint_id,
                            "host": observe::host_of(&streak.url),
                            "reason": reason,
                        }),
                    };
                    let ring = self.publish_on(conn, &event).await?;
                    tracing::warn!(webhook.endpoint_id = %endpoint_id, "webhook endpoint disabled after repeated failures");
                    metrics::counter!("keel_webhook_endpoints_disabled_total").increment(1);
                    Ok((false, streak.consecutive_failures, vec![ring]))
                })
            .await?;
        self.inner.queue.ring(rings).await;
        Ok((enabled, streak))
    }
}

enum Admission {
    Send,
    /// The breaker is open until then.
    Wait(DateTime<Utc>),
}

/// Whether this delivery may call the receiver, decided on the row as it is now (many
/// deliveries run at once): yes while the breaker is closed; when it is open, only the
/// first delivery after the cooldown, as the probe, which pushes the window on so the
/// others keep waiting for its verdict.
async fn admit(
    conn: &mut AsyncPgConnection,
    endpoint_id: Uuid,
    threshold: i32,
    cooldown: Duration,
) -> DbResult<Admission> {
    let breaker = endpoints::admit(conn, endpoint_id, threshold, cooldown).await?;
    Ok(if breaker.admitted {
        Admission::Send
    } else {
        Admission::Wait(breaker.open_until.unwrap_or_else(Utc::now))
    })
}

async fn record_attempt(
    conn: &mut AsyncPgConnection,
    delivery_id: Uuid,
    attempt: &Attempt,
    status: DeliveryStatus,
) -> DbResult<()> {
    let outcome = AttemptOutcome {
        status,
        response_status: attempt.status.map(i32::from),
        latency_ms: i32::try_from(attempt.latency.as_millis()).unwrap_or(i32::MAX),
        error: attempt.error.as_deref(),
        response_excerpt: &attempt.response_excerpt,
    };
    deliveries::record_attempt(conn, delivery_id, outcome).await
}
