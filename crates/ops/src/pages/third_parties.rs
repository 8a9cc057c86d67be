//! Third parties: every webhook receiver host and the AI provider, with attempts,
//! failures by kind, latency and breaker state.

use super::{Params, ratio, recent, render};
use crate::Console;
use crate::error::OpsError;
use crate::operator::Operator;
use crate::stats::{self, Combine};
use crate::windows::Recent;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Party {
    name: String,
    attempts: f64,
    failures: f64,
    failure_rate: Option<f64>,
    /// `kind count` pairs, most frequent first.
    failure_kinds: Vec<(String, f64)>,
    p50: Option<f64>,
    p99: Option<f64>,
    breaker_open: bool,
}

/// The parties of one family of metrics (`keel_webhook_*` by `host`, `keel_ai_*` by
/// `provider`).
fn parties(recent: &Recent, prefix: &str, label: &str) -> Vec<Party> {
    let m = &recent.minutes;
    let by = |e: &crate::windows::Entry| Some(e.label(label).to_owned());
    let attempts = stats::totals(m, &format!("{prefix}_attempts_total"), by);
    let failures = stats::totals(m, &format!("{prefix}_failures_total"), |e| {
        Some((e.label(label).to_owned(), e.label("kind").to_owned()))
    });
    let latency = stats::histograms(m, &format!("{prefix}_latency_seconds"), by);
    let breakers = stats::gauge_now(
        &recent.gauges,
        &format!("{prefix}_breaker_open"),
        Combine::Max,
        by,
    );
    let mut names: Vec<String> = attempts.keys().chain(breakers.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let mut kinds: Vec<(String, f64)> = failures
                .iter()
                .filter(|((n, _), v)| *n == name && **v > 0.0)
                .map(|((_, kind), v)| (kind.clone(), *v))
                .collect();
            kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
            let attempts = attempts.get(&name).copied().unwrap_or(0.0);
            let failed = kinds.iter().fold(0.0, |sum, (_, v)| sum + v);
            let h = latency.get(&name);
            Party {
                attempts,
                failures: failed,
                failure_rate: ratio(failed, attempts),
                failure_kinds: kinds,
                p50: h.and_then(|h| h.quantile(0.5)),
                p99: h.and_then(|h| h.quantile(0.99)),
                breaker_open: breakers.get(&name).is_some_and(|v| *v >= 1.0),
                name,
            }
        })
        .collect()
}

#[get("/ops/third-parties")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let (recent, warning) = recent(&console, params.minutes()).await;
    let mut webhooks = parties(&recent, "keel_webhook", "host");
    webhooks.sort_by(|a, b| b.failures.total_cmp(&a.failures));
    let ai = parties(&recent, "keel_ai", "provider");
    let data = data! {
        webhooks,
        ai,
        window => params.minutes(),
        replicas => recent.replicas,
        warning,
    };
    render(
        &console,
        &operator,
        "third_parties",
        "third_parties.html",
        data,
        &params,
    )
}
