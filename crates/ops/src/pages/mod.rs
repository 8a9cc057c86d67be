//! The console's routes: pages (GET, behind the sign-in), forms (POST, behind the
//! sign-in and the CSRF token, answered with a redirect back: post/redirect/get, so a
//! reload never repeats an action) and the stylesheet and script.

/// A page's data: named values, each serialized for the template
/// (`data! { rows, window => minutes }`).
macro_rules! data {
    ($($key:ident $(=> $value:expr)?),* $(,)?) => {{
        let mut map = ::std::collections::BTreeMap::<&'static str, ::minijinja::Value>::new();
        $(map.insert(stringify!($key), ::minijinja::Value::from(::minijinja::value::Serde(&data!(@value $key $(=> $value)?))));)*
        map
    }};
    (@value $key:ident) => { $key };
    (@value $key:ident => $value:expr) => { $value };
}

mod assets;
mod audit_log;
mod db;
mod endpoints;
mod job_actions;
mod jobs;
mod login;
mod overview;
mod third_parties;

use crate::Console;
use crate::error::OpsError;
use crate::operator::Operator;
use crate::windows::{Minute, Recent};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::stylesheet)
        .service(assets::script)
        .service(login::login_page)
        .service(login::sign_in)
        .service(login::sign_out)
        .service(overview::page)
        .service(endpoints::page)
        .service(jobs::page)
        .service(job_actions::matching)
        .service(job_actions::kind_switch)
        .service(jobs::detail)
        .service(job_actions::one)
        .service(third_parties::page)
        .service(db::page)
        .service(audit_log::page);
}

/// The console's security headers: its own script and styles only, never framed, never
/// cached, no referrer leaving it (`same-origin`, not `no-referrer`: with that, a
/// browser sends `Origin: null` on the console's own forms, which the origin check refuses).
fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header(("cache-control", "no-store"));
    builder
}

/// A page's query string. Every field is text and parsed here (an unknown value falls
/// back to the default rather than failing the page): `window` (5, 15 or 60 minutes),
/// `sort`, the dead-job filter `kind` and `error`, and what the last action did, named in
/// the redirect back (`done=retried&n=3`, `done=paused&subject=...`) — worded by the page,
/// so a link cannot put text of its choosing on the console.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    window: Option<String>,
    pub sort: Option<String>,
    pub kind: Option<String>,
    pub error: Option<String>,
    done: Option<String>,
    n: Option<String>,
    subject: Option<String>,
}

impl Params {
    /// The minutes a page covers: the last hour unless `window` says 5 or 15.
    pub fn minutes(&self) -> i64 {
        match self.window.as_deref() {
            Some("5") => 5,
            Some("15") => 15,
            _ => 60,
        }
    }

    fn notice(&self) -> Option<String> {
        let n: u64 = self.n.as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
        // Only a job kind's letters: the page words the notice, not the link.
        let subject: String = self
            .subject
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_'))
            .take(100)
            .collect();
        Some(match self.done.as_deref()? {
            "retried" => {
                format!("Retried {n} dead job(s): they run again with a fresh set of attempts.")
            }
            "discarded" => format!("Discarded {n} dead job(s)."),
            "paused" => format!("Paused {subject}: workers no longer claim its jobs."),
            "resumed" => format!("Resumed {subject}: its waiting jobs are rung within seconds."),
            "unchanged" => "Nothing changed: the jobs were no longer in that state.".to_owned(),
            _ => return None,
        })
    }
}

/// Renders `template` with the page's `data` inside the console's frame.
pub(crate) fn render(
    console: &Console,
    operator: &Operator,
    nav: &str,
    template: &str,
    data: impl Serialize,
    params: &Params,
) -> Result<HttpResponse, OpsError> {
    let inner = &console.inner;
    let html = inner
        .templates
        .get_template(template)?
        .render(minijinja::context! {
            nav,
            csrf => &operator.csrf,
            session => &operator.session.id,
            refresh => inner.refresh_secs,
            notice => params.notice(),
            page => minijinja::Value::from(minijinja::value::Serde(&data)),
        })?;
    Ok(secured(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// A redirect back to `to` after a form.
pub(crate) fn back(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", to))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

/// The windows of the last `minutes`, or none (and why) when Redis does not answer:
/// the SQL half of a page still shows.
pub(crate) async fn recent(console: &Console, minutes: i64) -> (Recent, Option<String>) {
    match console.inner.windows.recent(minutes).await {
        Ok(recent) => (recent, None),
        Err(e) => (
            Recent::default(),
            Some(format!(
                "Redis did not answer ({e}): rates and latencies are missing"
            )),
        ),
    }
}

/// The last `n` minutes of `minutes`.
pub(crate) fn last(minutes: &[Minute], n: usize) -> &[Minute] {
    &minutes[minutes.len().saturating_sub(n)..]
}

/// Seconds the last `n` minutes of `recent` cover (the current one is partial).
pub(crate) fn seconds(recent: &Recent, n: usize) -> f64 {
    let covered = recent.minutes.len().min(n) as f64;
    (recent.seconds - (recent.minutes.len() as f64 - covered) * 60.0).max(1.0)
}

/// `part / whole`, or `None` when there is no whole.
pub(crate) fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}
