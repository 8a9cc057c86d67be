//! Every route template with its rate, error rates and latency percentiles, sortable;
//! the slowest first.

use super::{Params, ratio, recent, render};
use crate::Console;
use crate::error::OpsError;
use crate::operator::Operator;
use crate::stats;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
struct Row {
    method: String,
    route: String,
    requests: f64,
    per_second: f64,
    server_errors: Option<f64>,
    client_errors: Option<f64>,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

/// What the table is ordered by (descending, but for the route).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Sort {
    #[default]
    P99,
    P50,
    Rate,
    Errors,
    Route,
}

impl Sort {
    fn from_param(param: Option<&str>) -> Self {
        match param {
            Some("p50") => Sort::P50,
            Some("rate") => Sort::Rate,
            Some("errors") => Sort::Errors,
            Some("route") => Sort::Route,
            _ => Sort::P99,
        }
    }
}

#[get("/ops/endpoints")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let minutes = params.minutes();
    let sort = Sort::from_param(params.sort.as_deref());
    let (recent, warning) = recent(&console, minutes).await;
    let key = |e: &crate::windows::Entry| {
        Some((e.label("method").to_owned(), e.label("route").to_owned()))
    };
    let counts = stats::totals(&recent.minutes, "keel_http_requests_total", |e| {
        Some((
            e.label("method").to_owned(),
            e.label("route").to_owned(),
            e.label("status").chars().next().unwrap_or('?'),
        ))
    });
    let mut by_route: BTreeMap<(String, String), [f64; 3]> = BTreeMap::new();
    for ((method, route, class), n) in counts {
        let row = by_route.entry((method, route)).or_default();
        row[0] += n;
        match class {
            '5' => row[1] += n,
            '4' => row[2] += n,
            _ => {}
        }
    }
    let latency = stats::histograms(&recent.minutes, "keel_http_request_duration_seconds", key);
    let mut rows: Vec<Row> = by_route
        .into_iter()
        .map(|((method, route), [all, server, client])| {
            let h = latency.get(&(method.clone(), route.clone()));
            Row {
                per_second: all / recent.seconds,
                requests: all,
                server_errors: ratio(server, all),
                client_errors: ratio(client, all),
                p50: h.and_then(|h| h.quantile(0.5)),
                p95: h.and_then(|h| h.quantile(0.95)),
                p99: h.and_then(|h| h.quantile(0.99)),
                method,
                route,
            }
        })
        .collect();
    let desc = |v: Option<f64>| std::cmp::Reverse(v.map(|v| (v * 1e9) as i64));
    match sort {
        Sort::P99 => rows.sort_by_key(|r| desc(r.p99)),
        Sort::P50 => rows.sort_by_key(|r| desc(r.p50)),
        Sort::Rate => rows.sort_by_key(|r| desc(Some(r.requests))),
        Sort::Errors => rows.sort_by_key(|r| desc(r.server_errors)),
        Sort::Route => rows.sort_by(|a, b| (&a.route, &a.method).cmp(&(&b.route, &b.method))),
    }
    let data = data! {
        rows,
        sort,
        window => minutes,
        replicas => recent.replicas,
        warning,
    };
    render(
        &console,
        &operator,
        "endpoints",
        "endpoints.html",
        data,
        &params,
    )
}
