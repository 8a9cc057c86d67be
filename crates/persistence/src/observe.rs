//! Every statement timed: each pooled connection reports its statements to [`Observer`],
//! which records `keel_db_statement_seconds{statement}` under a low-cardinality name (the
//! verb and the first table: `select accounts_users`, `update queue_jobs`), counts
//! statement timeouts (`keel_db_statement_timeouts_total{statement}`) and rollbacks
//! (`keel_db_transaction_rollbacks_total`), and logs a statement slower than
//! `telemetry.slow_query_ms` as a warning with its SQL — never its bound values, which
//! may be secrets — and the trace id of the request or job it ran for.

use diesel::connection::{Instrumentation, InstrumentationEvent};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The threshold in microseconds; 0: off.
static SLOW_QUERY_MICROS: AtomicU64 = AtomicU64::new(0);

/// Statements slower than `threshold` are logged (`None`: none is). Process-wide: the
/// binary sets it once at start-up from `telemetry.slow_query_ms`.
pub fn log_slow_queries(threshold: Option<Duration>) {
    let micros = threshold.map_or(0, |t| {
        u64::try_from(t.as_micros()).unwrap_or(u64::MAX).max(1)
    });
    SLOW_QUERY_MICROS.store(micros, Ordering::Relaxed);
}

/// One connection's observer. On a pooled connection statements run one at a time; on a
/// shared read connection ([`crate::DbPool::read`]) they are pipelined and answered in the
/// order they were sent, so their start times queue up and each answer takes the oldest.
/// A read abandoned mid-flight (its client went away) leaves its start behind and makes
/// later timings on that connection a little long; the queue is bounded, so not for long.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    started: VecDeque<Instant>,
    pipelined: bool,
}

/// How many unanswered starts a pipelined connection's observer remembers.
const MAX_IN_FLIGHT: usize = 256;

impl Observer {
    pub(crate) fn pipelined() -> Self {
        Self {
            started: VecDeque::new(),
            pipelined: true,
        }
    }
}

impl Instrumentation for Observer {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                if !self.pipelined || self.started.len() >= MAX_IN_FLIGHT {
                    self.started.pop_front();
                }
                self.started.push_back(Instant::now());
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let Some(started) = self.started.pop_front() else {
                    return;
                };
                let elapsed = started.elapsed();
                let sql = sql_of(query);
                finished(&sql, elapsed, error.map(ToString::to_string));
            }
            _ => {}
        }
    }
}

/// What diesel writes before the bound values when it displays a query.
const BINDS: &str = " -- binds: ";

/// The statement's SQL without its bound values. diesel displays a query as
/// `{sql} -- binds: [...]`: formatting stops at the marker, so the values (large, and
/// possibly secret) are neither formatted nor kept.
fn sql_of(query: &dyn diesel::connection::DebugQuery) -> String {
    struct UntilBinds(String);
    impl std::fmt::Write for UntilBinds {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.push_str(s);
            match self.0.find(BINDS) {
                Some(at) => {
                    self.0.truncate(at);
                    Err(std::fmt::Error)
                }
                None => Ok(()),
            }
        }
    }
    let mut sql = UntilBinds(String::new());
    // An "error" is the stop at the marker.
    let _ = std::fmt::Write::write_fmt(&mut sql, format_args!("{query}"));
    sql.0
}

fn finished(sql: &str, elapsed: Duration, error: Option<String>) {
    let name = statement_name(sql);
    if name == "rollback" {
        metrics::counter!("keel_db_transaction_rollbacks_total").increment(1);
    }
    if error
        .as_deref()
        .is_some_and(|e| e.contains("statement timeout"))
    {
        metrics::counter!("keel_db_statement_timeouts_total", "statement" => name.clone())
            .increment(1);
    }
    let slow = SLOW_QUERY_MICROS.load(Ordering::Relaxed);
    if slow > 0 && elapsed >= Duration::from_micros(slow) {
        let trace_id = keel_telemetry::propagation::from_span(&tracing::Span::current())
            .and_then(|cx| cx.traceparent.split('-').nth(1).map(str::to_owned))
            .unwrap_or_default();
        tracing::warn!(
            db.statement = %name,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            trace_id,
            db.query.text = sql,
            "slow query"
        );
    }
    metrics::histogram!("keel_db_statement_seconds", "statement" => name)
        .record(elapsed.as_secs_f64());
}

/// `verb table`: the statement's first word and the first table it names (after
/// `FROM`, `INTO`, `UPDATE`), lowercased and unquoted; the verb alone when there is
/// none (`begin`, `commit`, `select 1`).
pub(crate) fn statement_name(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(400).collect();
    let Some(verb) = words.first().map(|w| w.to_ascii_lowercase()) else {
        return "empty".to_owned();
    };
    let table = match verb.as_str() {
        "update" => words.get(1),
        "insert" | "delete" | "select" | "with" => words
            .iter()
            .position(|w| w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("into"))
            .and_then(|i| words.get(i + 1)),
        _ => None,
    };
    match table {
        Some(table) => {
            let table = table
                .split('.')
                .next()
                .unwrap_or_default()
                .trim_matches(|c: char| c == '"' || c == '(' || c == ')' || c == ',');
            format!("{verb} {}", table.to_ascii_lowercase())
        }
        None => verb,
    }
}

#[cfg(test)]
mod tests {
    use super::{sql_of, statement_name};

    #[test]
    fn bound_values_are_never_formatted() {
        let query = diesel::sql_query("SELECT $1").bind::<diesel::sql_types::Text, _>("a secret");
        let debug = diesel::debug_query::<diesel::pg::Pg, _>(&query);
        assert_eq!(sql_of(&debug), "SELECT $1");
    }

    #[test]
    fn names_are_the_verb_and_the_first_table() {
        for (sql, name) in [
            (
                r#"SELECT "accounts_users"."id" FROM "accounts_users" WHERE "accounts_users"."id" = $1"#,
                "select accounts_users",
            ),
            (
                r#"INSERT INTO "exports" ("id") VALUES ($1)"#,
                "insert exports",
            ),
            (
                "UPDATE queue_jobs SET state = 'dead' WHERE id = $1",
                "update queue_jobs",
            ),
            (
                r#"DELETE FROM "uploads" WHERE "uploads"."id" = $1"#,
                "delete uploads",
            ),
            ("ROLLBACK", "rollback"),
            ("SELECT pg_advisory_xact_lock($1)", "select"),
        ] {
            assert_eq!(statement_name(sql), name, "{sql}");
        }
    }
}
