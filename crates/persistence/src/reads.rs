//! Connections shared by concurrent one-statement reads, each read pipelined behind the
//! others on the wire.
//!
//! A pooled connection serves one request at a time: a request that reads one page takes
//! it, sends its statement, waits a network round trip and Postgres's answer, and gives it
//! back. On a small machine that makes the uncached read path latency-bound — Postgres and
//! the server both idle between round trips. diesel-async can send a statement on a
//! *shared* `&AsyncPgConnection` while earlier ones are still in flight (PostgreSQL's
//! extended-protocol pipelining), so concurrent requests' reads go out back to back on
//! one socket and their answers come back in order: no checkout, no wait for a free
//! connection, one prepared statement per connection instead of one per pooled
//! connection.
//!
//! Only for a single statement outside any transaction whose result a request can do
//! without a lock: keyset pages of lists. The statements on one shared connection run one
//! after the other in Postgres, so a slow one delays those behind it; these reads are
//! index range scans of one page, and `statement_timeout` still bounds each.

use crate::error::{DbError, DbResult};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::future::BoxFuture;
use keel_config::DatabaseSettings;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The shared connections, one slot per thread that reads (an actix worker each), so a
/// request's statement is written by the runtime that drives its connection.
pub(crate) struct SharedReads {
    url: String,
    statement_timeout_ms: u64,
    connect_timeout: Duration,
    slots: Box<[Slot]>,
    /// Set by [`SharedReads::close`]: no read starts after it.
    closed: AtomicBool,
}

/// One shared connection, opened on first use and replaced once a read on it finds it
/// closed. The mutex is held only to open it, never across a read.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    conn: Option<Arc<AsyncPgConnection>>,
    /// After a failed connect, reads fail at once until then instead of each waiting for
    /// a connect of its own in turn: a database that is down costs one connect timeout a
    /// second, not one per queued read.
    retry_at: Option<Instant>,
}

/// How long reads fail fast after a shared connection could not be opened.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl SharedReads {
    pub(crate) fn new(settings: &DatabaseSettings, url: &str) -> Option<Self> {
        (settings.read_connections > 0).then(|| Self {
            url: url.to_owned(),
            statement_timeout_ms: settings.statement_timeout_ms,
            connect_timeout: settings.connect_timeout(),
            slots: (0..settings.read_connections)
                .map(|_| Slot::default())
                .collect(),
            closed: AtomicBool::new(false),
        })
    }

    /// Drops the shared connections (reads in flight keep theirs until they finish) and
    /// refuses later reads, as a closed pool refuses checkouts.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for slot in &self.slots {
            if let Ok(mut held) = slot.state.try_lock() {
                held.conn = None;
            }
        }
    }

    /// Runs `read` on this thread's shared connection. A read that fails because the
    /// connection was closed (a Postgres restart, a terminated backend) is run once more
    /// on a new one: it changed nothing, so the caller never sees the broken socket.
    pub(crate) async fn run<T, F>(&self, read: F) -> DbResult<T>
    where
        F: for<'c> Fn(&'c AsyncPgConnection) -> BoxFuture<'c, DbResult<T>>,
    {
        if AtomicBool::load(&self.closed, Ordering::Acquire) {
            return Err(DbError::Unavailable("the pool is closed".to_owned()));
        }
        let slot = &self.slots[thread_slot() % self.slots.len()];
        let conn = self.open(slot).await?;
        match read(&conn).await {
            // The first statement of a terminated backend gets the server's FATAL
            // message (an unclassified error), the next ones a closed socket: either way
            // a round trip on the connection tells whether it is still there.
            Err(DbError::Unavailable(_) | DbError::Query(_)) if !alive(&conn).await => {
                Self::forget(slot, &conn).await;
                metrics::counter!("keel_db_shared_reads_reconnects_total").increment(1);
                let conn = self.open(slot).await?;
                read(&conn).await
            }
            result => result,
        }
    }

    async fn open(&self, slot: &Slot) -> DbResult<Arc<AsyncPgConnection>> {
        let mut held = slot.state.lock().await;
        if let Some(conn) = held.conn.as_ref() {
            return Ok(Arc::clone(conn));
        }
        if held.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(DbError::Unavailable(
                "the database could not be reached a moment ago".to_owned(),
            ));
        }
        let connected = tokio::time::timeout(self.connect_timeout, self.connect())
            .await
            .unwrap_or_else(|_| Err(DbError::Unavailable("connecting timed out".to_owned())));
        match connected {
            Ok(conn) => {
                let conn = Arc::new(conn);
                held.conn = Some(Arc::clone(&conn));
                held.retry_at = None;
                Ok(conn)
            }
            Err(e) => {
                held.retry_at = Some(Instant::now() + RETRY_AFTER);
                Err(e)
            }
        }
    }

    async fn connect(&self) -> DbResult<AsyncPgConnection> {
        connect(
            &self.url,
            self.statement_timeout_ms,
            crate::observe::Observer::pipelined(),
        )
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// Drops the slot's connection if it is still `broken` (a concurrent read may have
    /// replaced it already).
    async fn forget(slot: &Slot, broken: &Arc<AsyncPgConnection>) {
        let mut held = slot.state.lock().await;
        if held.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            held.conn = None;
        }
    }
}

/// Whether `conn` still answers.
async fn alive(conn: &AsyncPgConnection) -> bool {
    diesel::sql_query("SELECT 1")
        .execute(&mut &*conn)
        .await
        .is_ok()
}

/// Opens a Keel connection: `observer` times its statements, a runaway statement is
/// cancelled by the server (`statement_timeout`), and it is recognisable in
/// `pg_stat_activity` (`application_name`). Pooled and shared connections alike.
pub(crate) async fn connect(
    url: &str,
    statement_timeout_ms: u64,
    observer: crate::observe::Observer,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.set_instrumentation(observer);
    diesel::sql_query(
        "SELECT set_config('statement_timeout', $1, false), set_config('application_name', 'keel', false)",
    )
    .bind::<Text, _>(format!("{statement_timeout_ms}ms"))
    .execute(&mut conn)
    .await
    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// A small number per thread, handed out in the order threads first read: the actix
/// workers of one process get different slots.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|slot| *slot)
}
