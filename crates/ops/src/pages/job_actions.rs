//! What the jobs pages' forms do: retry or discard one dead job or all that match a
//! filter, pause or resume a job kind. Each checks the form's CSRF token, acts, writes
//! the audit log and redirects back (post/redirect/get) naming what it did.

use super::back;
use super::jobs::filter_of;
use crate::Console;
use crate::audit::{self, Action};
use crate::error::OpsError;
use crate::operator::Operator;
use actix_web::{HttpResponse, post, web};
use keel_queue::DeadFilter;
use serde::Deserialize;
use uuid::Uuid;

/// The most dead jobs one "all matching" action touches; repeat it for more.
const BULK_LIMIT: i64 = 10_000;
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

/// What a form does to dead jobs (the last segment of its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dead {
    Retry,
    Discard,
}

impl Dead {
    fn parse(segment: &str) -> Result<Self, OpsError> {
        match segment {
            "retry" => Ok(Dead::Retry),
            "discard" => Ok(Dead::Discard),
            _ => Err(OpsError::NotFound("no such action")),
        }
    }

    /// Does it to the dead jobs matching `filter` (only `only`, when given); how many.
    async fn apply(
        self,
        console: &Console,
        filter: &DeadFilter,
        only: Option<Uuid>,
    ) -> Result<usize, OpsError> {
        let queue = &console.inner.queue;
        Ok(match (self, only) {
            (Dead::Retry, Some(id)) => usize::from(queue.retry_dead(id).await?),
            (Dead::Retry, None) => queue.retry_matching(filter, BULK_LIMIT).await?,
            (Dead::Discard, only) => queue.discard_dead(filter, only, BULK_LIMIT).await?,
        })
    }

    /// The redirect's `done=` word when something changed.
    fn done(self) -> &'static str {
        match self {
            Dead::Retry => "retried",
            Dead::Discard => "discarded",
        }
    }
}

/// Writes what `operator` is about to do to the audit log, before it is done (an action
/// whose line cannot be written is not taken), then does it and adds its count to the line.
async fn audited<F>(
    console: &Console,
    operator: &Operator,
    action: Action,
    target: Option<&str>,
    detail: serde_json::Value,
    act: F,
) -> Result<usize, OpsError>
where
    F: std::future::Future<Output = Result<usize, OpsError>>,
{
    let pool = &console.inner.pool;
    let line = audit::record(pool, &operator.actor, action, target, detail).await?;
    let changed = act.await?;
    audit::outcome(pool, line, serde_json::json!({"changed": changed})).await;
    Ok(changed)
}

/// The jobs page's address with a filter (and what was done), for redirects.
fn jobs_url(filter: &DeadFilter, done: &str, n: usize) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("done", done)
        .append_pair("n", &n.to_string());
    for (name, value) in [("kind", &filter.kind), ("error", &filter.error)] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    format!("/ops/jobs?{}#dead", query.finish())
}

#[post("/ops/jobs/{id}/{action}")]
pub async fn one(
    console: web::Data<Console>,
    operator: Operator,
    path: web::Path<(Uuid, String)>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let (id, action) = path.into_inner();
    let action = Dead::parse(&action)?;
    let filter = filter_of(form.kind.as_deref(), form.error.as_deref())?;
    let audit = match action {
        Dead::Retry => Action::RetriedJob,
        Dead::Discard => Action::DiscardedJob,
    };
    let target = id.to_string();
    let any = DeadFilter::default();
    let act = action.apply(&console, &any, Some(id));
    let n = audited(
        &console,
        &operator,
        audit,
        Some(&target),
        serde_json::json!({}),
        act,
    )
    .await?;
    let done = if n > 0 { action.done() } else { "unchanged" };
    Ok(back(&match action {
        // A retried job is still there: back to its page, to watch it run.
        Dead::Retry => format!("/ops/jobs/{id}?done={done}&n={n}"),
        Dead::Discard => jobs_url(&filter, done, n),
    }))
}

#[post("/ops/jobs/dead/{action}")]
pub async fn matching(
    console: web::Data<Console>,
    operator: Operator,
    action: web::Path<String>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let action = Dead::parse(&action)?;
    let filter = filter_of(form.kind.as_deref(), form.error.as_deref())?;
    // One click must not touch every dead job by accident.
    if filter == DeadFilter::default() && form.everything.as_deref() != Some("yes") {
        return Err(OpsError::BadRequest(
            "narrow the dead jobs by kind or error first, or tick \"every dead job\"".to_owned(),
        ));
    }
    let audit = match action {
        Dead::Retry => Action::RetriedDead,
        Dead::Discard => Action::DiscardedDead,
    };
    let detail = serde_json::json!({"kind": filter.kind, "error": filter.error});
    let act = action.apply(&console, &filter, None);
    let n = audited(
        &console,
        &operator,
        audit,
        filter.kind.as_deref(),
        detail,
        act,
    )
    .await?;
    Ok(back(&jobs_url(&filter, action.done(), n)))
}

/// A job kind as a form names it, checked as the queue checks its own.
fn valid_kind(kind: &str) -> Result<&str, OpsError> {
    if keel_queue::is_kind_name(kind) && kind.len() <= 100 {
        Ok(kind)
    } else {
        Err(OpsError::BadRequest(format!(
            "{kind:?} is not a job kind (domain.verb_noun)"
        )))
    }
}

#[post("/ops/kinds/{kind}/{action}")]
pub async fn kind_switch(
    console: web::Data<Console>,
    operator: Operator,
    path: web::Path<(String, String)>,
    form: web::Form<Form>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    let (kind, action) = path.into_inner();
    let kind = valid_kind(&kind)?;
    let queue = &console.inner.queue;
    let pause = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(OpsError::NotFound("no such action")),
    };
    let by = format!("ops session {}", operator.session.id);
    let act = async {
        let changed = if pause {
            queue.pause(kind, &by).await?
        } else {
            queue.resume(kind).await?
        };
        Ok(usize::from(changed))
    };
    let (audit, done) = if pause {
        (Action::PausedKind, "paused")
    } else {
        (Action::ResumedKind, "resumed")
    };
    let changed = audited(
        &console,
        &operator,
        audit,
        Some(kind),
        serde_json::json!({}),
        act,
    )
    .await?;
    let done = if changed > 0 { done } else { "unchanged" };
    // A valid kind needs no escaping in a query.
    Ok(back(&format!("/ops/jobs?done={done}&subject={kind}")))
}
