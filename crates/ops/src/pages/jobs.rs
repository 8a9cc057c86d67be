//! The queue's pages: every job kind with its backlog (SQL), run time and failure rate
//! (the windows) and whether it is paused; dead jobs filtered by kind and error; one
//! job's detail. What the forms on them do is in `job_actions`.

use super::{Params, ratio, recent, render};
use crate::Console;
use crate::error::OpsError;
use crate::operator::Operator;
use crate::redact::redact;
use crate::stats;
use actix_web::{HttpResponse, get, web};
use keel_queue::{DeadFilter, JobState};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

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

/// A filter as the form sends it: empty fields mean "any". Control characters are
/// refused (Postgres would refuse a NUL, and no job kind or error text needs one).
pub(super) fn filter_of(kind: Option<&str>, error: Option<&str>) -> Result<DeadFilter, OpsError> {
    let some = |v: Option<&str>| -> Result<Option<String>, OpsError> {
        let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if v.chars().any(char::is_control) || v.len() > 200 {
            return Err(OpsError::BadRequest(
                "a filter is at most 200 characters of text, without control characters".to_owned(),
            ));
        }
        Ok(Some(v.to_owned()))
    };
    Ok(DeadFilter {
        kind: some(kind)?,
        error: some(error)?,
    })
}

#[get("/ops/jobs")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let queue = &console.inner.queue;
    let filter = filter_of(params.kind.as_deref(), params.error.as_deref())?;
    // The windows from Redis and the three queue reads, at once: every refresh runs them.
    let ((recent, warning), found) = tokio::join!(recent(&console, 60), async {
        tokio::try_join!(
            queue.counts(),
            queue.paused_kinds(),
            queue.dead_matching(&filter, LISTED, None)
        )
    });
    let (counts, paused, dead_jobs) = found?;
    let mut kinds: BTreeMap<String, KindRow> = BTreeMap::new();
    for c in counts {
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
        dead => job.status.state == JobState::Dead,
        payload,
        job,
    };
    render(&console, &operator, "jobs", "job.html", data, &params)
}
