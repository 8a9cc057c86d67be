//! The `notifications.send_email` job and its registration.

use crate::message::recipient_domain;
use crate::{MailError, Mailer, Template};
use keel_queue::{Job, JobContext, JobError, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use tracing::Instrument;

/// Render `template` with `vars` and send it to `to`.
///
/// The payload carries the variables rather than the rendered text, so a fixed template
/// applies to emails still queued, and the template name as a string so a job naming a
/// template this version no longer has fails with a clear, permanent error.
#[derive(Clone, Serialize, Deserialize)]
pub struct SendEmail {
    pub to: String,
    pub template: String,
    pub vars: serde_json::Value,
    /// The producer's key when enqueued with [`Mailer::enqueue_once`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl fmt::Debug for SendEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendEmail")
            .field("to", &format_args!("…@{}", recipient_domain(&self.to)))
            .field("template", &self.template)
            .field("idempotency_key", &self.idempotency_key)
            .finish_non_exhaustive()
    }
}

impl Job for SendEmail {
    const NAME: &'static str = "notifications.send_email";
    /// With the default 1 s backoff base the attempts spread over about half an hour
    /// (1 + 2 + … + 1024 s, less jitter): long enough to ride out a relay restart or
    /// greylisting, short enough that a stuck email is dead and visible the same hour.
    const MAX_ATTEMPTS: Option<u32> = Some(12);
    /// Connect, TLS, and a few SMTP round trips, each bounded by `mail.smtp_timeout_ms`.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(60));
}

/// Attaches the email job's handler to the worker registry.
pub fn register(registry: &mut Registry, mailer: Mailer) -> Result<(), RegistryError> {
    registry.register(move |ctx: JobContext, job: SendEmail| {
        let mailer = mailer.clone();
        async move { deliver(&mailer, &ctx, job).await }
    })?;
    Ok(())
}

/// Renders and sends one job's email, keyed by the job id (Message-ID, file name):
/// delivery is at least once, and a repeat is recognisably the same message.
async fn deliver(mailer: &Mailer, ctx: &JobContext, job: SendEmail) -> Result<(), JobError> {
    let template = job.template.parse::<Template>();
    // A bounded label set: a name from a bad payload must not create a time series.
    let label = template.as_ref().map_or("unknown", |t| t.as_str());
    let transport = mailer.transport_name();
    let span = tracing::info_span!(
        "email.send",
        job.id = %ctx.job_id,
        email.template = %job.template,
        email.to_domain = recipient_domain(&job.to),
        email.transport = transport,
        email.outcome = tracing::field::Empty,
    );
    let result = async {
        let msg = mailer.render(&job.to, template?, &job.vars)?;
        mailer.send_now(ctx.job_id, &msg).await
    }
    .instrument(span.clone())
    .await;
    match result {
        Ok(()) => {
            span.record("email.outcome", "sent");
            span.in_scope(|| tracing::info!("email sent"));
            metrics::counter!("keel_emails_sent_total", "template" => label, "transport" => transport)
                .increment(1);
            Ok(())
        }
        Err(error) => {
            span.record("email.outcome", error.kind());
            metrics::counter!("keel_email_failures_total", "template" => label, "kind" => error.kind())
                .increment(1);
            Err(to_job_error(error))
        }
    }
}

fn to_job_error(error: MailError) -> JobError {
    if error.is_transient() {
        JobError::retry(error)
    } else {
        JobError::permanent(error)
    }
}

/// Attaches the event fan-out and webhook delivery handlers to the worker registry.
pub fn register_events(
    registry: &mut Registry,
    notifications: crate::Notifications,
) -> Result<(), RegistryError> {
    // At 0 from the start, so `increase()` sees the first endpoint disabled.
    metrics::counter!("keel_webhook_endpoints_disabled_total").increment(0);
    let n = notifications.clone();
    let purger = notifications.clone();
    registry.register(move |ctx: JobContext, job: crate::fanout::FanOut| {
        let n = n.clone();
        async move { n.fan_out(&ctx, job.event_id).await }
    })?;
    registry.register(
        move |ctx: JobContext, job: crate::webhooks::deliver::Deliver| {
            let n = notifications.clone();
            async move { n.deliver(&ctx, job.delivery_id).await }
        },
    )?;
    registry.register(move |_ctx: JobContext, _: crate::retention::Purge| {
        let n = purger.clone();
        async move {
            let purged = n.purge_expired().await.map_err(JobError::retry)?;
            tracing::info!(
                events = purged.events,
                notifications = purged.notifications,
                deliveries = purged.deliveries,
                "old notifications purged"
            );
            Ok(())
        }
    })?;
    // Daily, at a quiet minute; every worker process runs the schedule, one tick runs once.
    registry.periodic::<crate::retention::Purge, _>("0 41 3 * * *", || crate::retention::Purge)?;
    Ok(())
}
