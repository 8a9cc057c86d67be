//! The database's pressure: the pool across replicas, acquire time and timeouts, the
//! slowest statements, connections by state, the longest transaction, and the queue
//! table's dead rows.

use super::{Params, recent, render};
use crate::Console;
use crate::database;
use crate::error::OpsError;
use crate::operator::Operator;
use crate::stats::{self, Combine};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;

/// Keel's own view of a statement (by name), when `pg_stat_statements` is not there.
#[derive(Debug, Serialize)]
struct Named {
    statement: String,
    calls: f64,
    mean: Option<f64>,
    total: f64,
}

#[get("/ops/database")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let minutes = params.minutes();
    let (recent, warning) = recent(&console, minutes).await;
    let pool = |name| {
        stats::gauge_now(&recent.gauges, name, Combine::Sum, |_| Some(()))
            .remove(&())
            .unwrap_or(0.0)
    };
    let acquire = stats::histograms(
        &recent.minutes,
        "keel_db_pool_acquire_seconds",
        |_| Some(()),
    )
    .remove(&())
    .unwrap_or_default();
    let m = &recent.minutes;
    let statements = stats::histograms(m, "keel_db_statement_seconds", |e| {
        Some(e.label("statement").to_owned())
    });
    let mut named: Vec<Named> = statements
        .into_iter()
        .map(|(statement, h)| Named {
            statement,
            calls: h.count,
            mean: h.mean(),
            total: h.sum,
        })
        .collect();
    named.sort_by(|a, b| b.total.total_cmp(&a.total));
    named.truncate(15);

    let mut conn = console.inner.pool.get().await?;
    let slowest = database::slowest_statements(&mut conn).await;
    let connections = database::connections(&mut conn).await?;
    let longest = database::longest_transaction(&mut conn).await?;
    let queue_table = database::queue_table(&mut conn).await?;
    drop(conn);
    let hint = queue_table.as_ref().and_then(|t| t.hint());
    let (slowest, slowest_unavailable) = match slowest {
        Ok(rows) => (rows, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let data = data! {
        in_use => pool("keel_db_pool_in_use"),
        open => pool("keel_db_pool_size"),
        max => pool("keel_db_pool_max_size"),
        waiting => pool("keel_db_pool_waiting"),
        acquire_p50 => acquire.quantile(0.5),
        acquire_p99 => acquire.quantile(0.99),
        acquire_timeouts => stats::total(m, "keel_db_pool_timeouts_total", |_| true),
        statement_timeouts => stats::total(m, "keel_db_statement_timeouts_total", |_| true),
        rollbacks => stats::total(m, "keel_db_transaction_rollbacks_total", |_| true),
        named,
        slowest,
        slowest_unavailable,
        connections,
        longest,
        queue_table,
        hint,
        window => minutes,
        replicas => recent.replicas,
        warning,
    };
    render(
        &console,
        &operator,
        "database",
        "database.html",
        data,
        &params,
    )
}
