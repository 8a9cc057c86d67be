//! The queue: every job kind with its backlog (SQL), run time and failure rate (the
//! windows) and whether it is paused; dead jobs filtered by kind and error, retried or
//! discarded one at a time or all that match; one job's detail.

use super::{Params, back, ratio, recent, render};
use crate::Console;
use crate::audit::{self, Action};
use crate::error::OpsError;
use crate::operator::Operator;
use crate::redact::redact;
use crate::stats;
use actix_web::{HttpResponse, get, post, web};
use keel_queue::{DeadFilter, JobState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The most dead jobs one "all matching" action touches; repeat it for more.
const BULK_LIMIT: i64 = 10_000;
/// Dead jobs listed on the page.
const LISTED: i64 = 50;

/// One job kind's line.
#[derive(Debug, Default, Serialize)]
struct KindRow {
    kind: String,
    ready: i64,
    scheduled: i64,
    running: i64,
    dead: i64,
    oldest_ready_age_seconds: f64,
    started: f64,
    failure_rate: Option<f64>,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    paused: bool,
}

/// A filter as the form sends it: empty fields mean "any".
fn filter_of(kind: Option<&str>, error: Option<&str>) -> DeadFilter {
    let some = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    DeadFilter {
        kind: some(kind),
        error: some(error),
    }
}

/// The jobs page's address with a filter (and what was done), for redirects.
fn jobs_url(filter: &DeadFilter, done: &str, n: usize) -> String {
    let mut url = format!("/ops/jobs?done={done}&n={n}");
    for (name, value) in [("kind", &filter.kind), ("error", &filter.error)] {
        if let Some(value) = value {
            url.push_str(&format!("&{name}={}", encode(value)));
        }
    }
    url.push_str("#dead");
    url
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[get("/ops/jobs")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let queue = &console.inner.queue;
    let filter = filter_of(params.kind.as_deref(), params.error.as_deref());
    let (recent, warning) = recent(&console, 60).await;
    let mut kinds: BTreeMap<String, KindRow> = BTreeMap::new();
    for c in queue.counts().await? {
        kinds.insert(
            c.kind.clone(),
            KindRow {
                kind: c.kind,
                ready: c.ready,
                scheduled: c.scheduled,
                running: c.running,
                dead: c.dead,
                oldest_ready_age_seconds: c.oldest_ready_age_seconds,
                ..KindRow::default()
            },
        );
    }
    let by_kind = |name| stats::totals(&recent.minutes, name, |e| Some(e.label("kind").to_owned()));
    let started = by_kind("keel_jobs_started_total");
    let failed = by_kind("keel_jobs_failed_total");
    let dead = by_kind("keel_jobs_dead_total");
    let durations = stats::histograms(&recent.minutes, "keel_job_duration_seconds", |e| {
        Some(e.label("kind").to_owned())
    });
    let paused = queue.paused_kinds().await?;
    let names: Vec<String> = started
        .keys()
        .chain(paused.iter().map(|p| &p.kind))
        .cloned()
        .collect();
    for name in names {
        kinds.entry(name.clone()).or_insert_with(|| KindRow {
            kind: name,
            ..KindRow::default()
        });
    }
    for row in kinds.values_mut() {
        let get = |m: &BTreeMap<String, f64>| m.get(&row.kind).copied().unwrap_or(0.0);
        row.started = get(&started);
        row.failure_rate = ratio(get(&failed) + get(&dead), row.started);
        if let Some(h) = durations.get(&row.kind) {
            (row.p50, row.p95, row.p99) = (h.quantile(0.5), h.quantile(0.95), h.quantile(0.99));
        }
        row.paused = paused.iter().any(|p| p.kind == row.kind);
    }
    let dead_jobs = queue.dead_matching(&filter, LISTED, None).await?;
    let data = data! {
        kinds => kinds.into_values().collect::<Vec<_>>(),
        paused,
        dead => dead_jobs,
        filter_kind => filter.kind,
        filter_error => filter.error,
        listed => LISTED,
        replicas => recent.replicas,
        warning,
    };
    render(&console, &operator, "jobs", "jobs.html", data, &params)
}

#[get("/ops/jobs/{id}")]
pub async fn detail(
    console: web::Data<Console>,
    operator: Operator,
    id: web::Path<String>,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| OpsError::NotFound("no job has that id"))?;
    let job = console
        .inner
        .queue
        .detail(id)
        .await?
        .ok_or(OpsError::NotFound(
            "no job has that id (finished jobs are deleted after a while)",
        ))?;
    let payload = serde_json::to_string_pretty(&redact(&job.payload)).unwrap_or_default();
    let data = data! {
        trace_id => job.trace_id(),
        dead => job.state == JobState::Dead,
        payload,
        job,
    };
    render(&console, &operator, "jobs", "job.html", data, &params)
}

#[derive(Debug, Deserialize)]
pub struct Form {
    csrf: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// `yes`: an "all matching" action with no filter really means every dead job.
    #[serde(default)]
    everything: Option<String>,
}

#[post("/ops/jobs/{id}/retry")]
pub async fn retry_one(
    console: web::Data<Console>,
    operator: Operator,
    id: web::Path<Uuid>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let retried = console.inner.queue.retry_dead(*id).await?;
    let target = id.to_string();
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::RetriedJob,
        Some(&target),
        serde_json::json!({"retried": retried}),
    )
    .await?;
    let done = if retried { "retried&n=1" } else { "unchanged" };
    Ok(back(&format!("/ops/jobs/{id}?done={done}")))
}

#[post("/ops/jobs/{id}/discard")]
pub async fn discard_one(
    console: web::Data<Console>,
    operator: Operator,
    id: web::Path<Uuid>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let n = console
        .inner
        .queue
        .discard_dead(&DeadFilter::default(), Some(*id), 1)
        .await?;
    let target = id.to_string();
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::DiscardedJob,
        Some(&target),
        serde_json::json!({"discarded": n}),
    )
    .await?;
    let filter = filter_of(form.kind.as_deref(), form.error.as_deref());
    Ok(back(&jobs_url(
        &filter,
        if n > 0 { "discarded" } else { "unchanged" },
        n,
    )))
}

/// The filter of an "all matching" form, refused when empty unless `everything` says
/// so: one click must not touch every dead job by accident.
fn bulk_filter(form: &Form) -> Result<DeadFilter, OpsError> {
    let filter = filter_of(form.kind.as_deref(), form.error.as_deref());
    if filter == DeadFilter::default() && form.everything.as_deref() != Some("yes") {
        return Err(OpsError::BadRequest(
            "narrow the dead jobs by kind or error first, or tick \"every dead job\"".to_owned(),
        ));
    }
    Ok(filter)
}

#[post("/ops/jobs/dead/retry")]
pub async fn retry_matching(
    console: web::Data<Console>,
    operator: Operator,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let filter = bulk_filter(&form)?;
    let n = console
        .inner
        .queue
        .retry_matching(&filter, BULK_LIMIT)
        .await?;
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::RetriedDead,
        filter.kind.as_deref(),
        serde_json::json!({"kind": filter.kind, "error": filter.error, "retried": n}),
    )
    .await?;
    Ok(back(&jobs_url(&filter, "retried", n)))
}

#[post("/ops/jobs/dead/discard")]
pub async fn discard_matching(
    console: web::Data<Console>,
    operator: Operator,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let filter = bulk_filter(&form)?;
    let n = console
        .inner
        .queue
        .discard_dead(&filter, None, BULK_LIMIT)
        .await?;
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::DiscardedDead,
        filter.kind.as_deref(),
        serde_json::json!({"kind": filter.kind, "error": filter.error, "discarded": n}),
    )
    .await?;
    Ok(back(&jobs_url(&filter, "discarded", n)))
}

/// A job kind as a form names it: `domain.verb_noun`, nothing else.
fn valid_kind(kind: &str) -> Result<&str, OpsError> {
    let ok = kind.split_once('.').is_some_and(|(a, b)| {
        let part = |p: &str| {
            p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        part(a) && part(b)
    });
    if ok && kind.len() <= 100 {
        Ok(kind)
    } else {
        Err(OpsError::BadRequest(format!(
            "{kind:?} is not a job kind (domain.verb_noun)"
        )))
    }
}

#[post("/ops/kinds/{kind}/pause")]
pub async fn pause(
    console: web::Data<Console>,
    operator: Operator,
    kind: web::Path<String>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let kind = valid_kind(&kind)?;
    let by = format!("ops session {}", operator.session.id);
    let paused = console.inner.queue.pause(kind, &by).await?;
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::PausedKind,
        Some(kind),
        serde_json::json!({"changed": paused}),
    )
    .await?;
    let done = if paused { "paused" } else { "unchanged" };
    Ok(back(&format!(
        "/ops/jobs?done={done}&subject={}",
        encode(kind)
    )))
}

#[post("/ops/kinds/{kind}/resume")]
pub async fn resume(
    console: web::Data<Console>,
    operator: Operator,
    kind: web::Path<String>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let kind = valid_kind(&kind)?;
    let resumed = console.inner.queue.resume(kind).await?;
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::ResumedKind,
        Some(kind),
        serde_json::json!({"changed": resumed}),
    )
    .await?;
    let done = if resumed { "resumed" } else { "unchanged" };
    Ok(back(&format!(
        "/ops/jobs?done={done}&subject={}",
        encode(kind)
    )))
}
