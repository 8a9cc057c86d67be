//! The pool, migrations, error mapping and transactions against a real PostgreSQL, each
//! test in its own database cloned from the migrated template.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::FutureExt;
use keel_config::{DatabaseSettings, Secret};
use keel_persistence::AsyncConnection as _;
use keel_persistence::schema::queue_jobs;
use keel_persistence::testing::TestDatabase;
use keel_persistence::{DbError, DbPool, pending_migrations};
use std::time::{Duration, Instant};

fn settings(url: &str, pool_size: usize) -> DatabaseSettings {
    shared_reads(url, pool_size, 2)
}

fn shared_reads(url: &str, pool_size: usize, read_connections: usize) -> DatabaseSettings {
    DatabaseSettings {
        url: Secret::new(url.to_owned()),
        pool_size,
        acquire_timeout_ms: 200,
        connect_timeout_ms: 2000,
        statement_timeout_ms: 300,
        replica_url: Secret::default(),
        verify_on_checkout: false,
        read_connections,
    }
}

async fn setup(pool_size: usize) -> (TestDatabase, DbPool) {
    let db = TestDatabase::new().await.expect("test database");
    let pool = DbPool::new(&settings(db.url(), pool_size)).expect("pool");
    (db, pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_database_is_fully_migrated() {
    let (_db, pool) = setup(2).await;
    let mut conn = pool.get().await.expect("connection");
    let pending = pending_migrations(&mut conn).await.expect("readable");
    assert!(pending.is_empty(), "pending: {pending:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_databases_are_isolated_and_dropped() {
    let first = TestDatabase::new().await.expect("db");
    let second = TestDatabase::new().await.expect("db");
    assert_ne!(first.name(), second.name());
    let name = first.name().to_owned();
    drop(first);
    let pool = DbPool::new(&settings(second.url(), 1)).expect("pool");
    let mut conn = pool.get().await.expect("conn");
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: N = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result(&mut conn)
        .await
        .expect("query");
    assert_eq!(left.n, 0, "dropped database still exists");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_matches_the_migrated_database() {
    let (_db, pool) = setup(1).await;
    let mut conn = pool.get().await.expect("conn");
    // Every column diesel knows must exist with a loadable type, in every table.
    use keel_persistence::schema::*;
    macro_rules! check {
        ($($table:ident),+) => {$(
            let rows = $table::table.select($table::all_columns).limit(0).execute(&mut conn).await;
            assert!(rows.is_ok(), "{}: {rows:?}", stringify!($table));
        )+};
    }
    check!(
        queue_jobs,
        accounts_users,
        accounts_organizations,
        accounts_memberships,
        accounts_sessions,
        accounts_api_keys,
        accounts_tokens,
        accounts_audit_events,
        http_idempotency_keys,
        notifications_events,
        notifications_inbox,
        notifications_preferences,
        notifications_webhook_endpoints,
        notifications_webhook_deliveries,
        uploads,
        uploads_usage,
        exports,
        exports_requests,
        queue_paused_kinds,
        ops_audit
    );
}

/// `schema.rs` is generated (`just schema`), never written by hand: what `diesel
/// print-schema` makes of the migrated database, with `diesel.toml`'s patch, must be
/// exactly the committed file. A migration without a regenerated schema fails here.
#[tokio::test(flavor = "multi_thread")]
async fn schema_rs_is_what_diesel_generates_from_the_migrations() {
    let (db, _pool) = setup(1).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = std::process::Command::new("diesel")
        .current_dir(&root)
        .args([
            "print-schema",
            "--config-file",
            "diesel.toml",
            "--database-url",
        ])
        .arg(db.url())
        .output()
        .expect("the diesel CLI (`just tools` installs it)");
    assert!(
        output.status.success(),
        "diesel print-schema: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed =
        std::fs::read_to_string(root.join("crates/persistence/src/schema.rs")).expect("schema.rs");
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "crates/persistence/src/schema.rs is stale: run `just schema`"
    );
}

async fn insert_job(
    conn: &mut diesel_async::AsyncPgConnection,
    kind: &str,
    unique_key: Option<&str>,
) -> Result<usize, DbError> {
    diesel::sql_query(
        "INSERT INTO queue_jobs (id, kind, payload, max_attempts, timeout_ms, unique_key) \
         VALUES (gen_random_uuid(), $1, '{}', 1, 1000, $2)",
    )
    .bind::<diesel::sql_types::Text, _>(kind)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(unique_key)
    .execute(conn)
    .await
    .map_err(DbError::from)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unique_violation_is_a_conflict_naming_the_constraint() {
    let (_db, pool) = setup(1).await;
    let mut conn = pool.get().await.expect("conn");
    insert_job(&mut conn, "test.thing", Some("k"))
        .await
        .expect("first");
    let err = insert_job(&mut conn, "test.thing", Some("k"))
        .await
        .expect_err("dup");
    match err {
        DbError::Conflict { constraint } => {
            assert_eq!(constraint.as_deref(), Some("queue_jobs_kind_unique_key"))
        }
        other => panic!("expected conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_violation_is_a_constraint_error() {
    let (_db, pool) = setup(1).await;
    let mut conn = pool.get().await.expect("conn");
    let err = insert_job(&mut conn, "NotAJobName", None)
        .await
        .expect_err("bad kind");
    assert!(matches!(err, DbError::Constraint { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_row_is_not_found() {
    let (_db, pool) = setup(1).await;
    let mut conn = pool.get().await.expect("conn");
    let err = queue_jobs::table
        .select(queue_jobs::kind)
        .filter(queue_jobs::kind.eq("none.such"))
        .first::<String>(&mut conn)
        .await
        .map_err(DbError::from)
        .expect_err("empty table");
    assert!(matches!(err, DbError::NotFound), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_transaction_leaves_no_row() {
    let (_db, pool) = setup(1).await;
    let result: Result<(), DbError> = pool
        .get()
        .await
        .expect("conn")
        .transaction(async |conn| {
            insert_job(conn, "test.thing", Some("a")).await?;
            insert_job(conn, "test.thing", Some("a")).await?; // conflict: rolls back both
            Ok(())
        })
        .await;
    assert!(
        matches!(result, Err(DbError::Conflict { .. })),
        "{result:?}"
    );
    let mut conn = pool.get().await.expect("conn");
    let count: i64 = queue_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 0);
    drop(conn); // the pool has one connection; the next transaction needs it

    let ok: Result<(), DbError> = pool
        .get()
        .await
        .expect("conn")
        .transaction(async |conn| insert_job(conn, "test.thing", None).await.map(|_| ()))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let mut conn = pool.get().await.expect("conn");
    let count: i64 = queue_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_fails_fast_with_busy() {
    let (_db, pool) = setup(1).await;
    let _held = pool.get().await.expect("the only connection");
    let started = Instant::now();
    let Err(err) = pool.get().await else {
        panic!("pool is exhausted")
    };
    assert!(matches!(err, DbError::Busy), "{err:?}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let status = pool.status();
    assert_eq!((status.max_size, status.in_use), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_statement_is_cancelled_by_the_server_and_counted() {
    keel_telemetry::init_for_tests();
    let (_db, pool) = setup(1).await;
    let mut conn = pool.get().await.expect("conn");
    let err = diesel::sql_query("SELECT pg_sleep(5) AS runaway_statement")
        .execute(&mut conn)
        .await
        .map_err(DbError::from)
        .expect_err("statement_timeout is 300 ms");
    assert!(matches!(err, DbError::Timeout), "{err:?}");
    // Timed and counted under its statement name (every statement is named by its verb
    // and first table; this one has none).
    let metrics = keel_telemetry::metrics::render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keel_db_statement_timeouts_total{statement=\"select\"}")),
        "{metrics}"
    );
    assert!(metrics.contains("keel_db_statement_seconds"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_unavailable_not_a_panic() {
    let mut s = settings("postgres://postgres@127.0.0.1:1/keel", 1);
    s.connect_timeout_ms = 500;
    let pool = DbPool::new(&s).expect("pool builds lazily");
    let Err(err) = pool.get().await else {
        panic!("nothing listens on port 1")
    };
    assert!(matches!(err, DbError::Unavailable(_)), "{err:?}");
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// The server process behind `conn`.
async fn backend_pid(conn: &mut keel_persistence::AsyncPgConnection) -> i32 {
    let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(conn)
        .await
        .expect("pid");
    row.pid
}

/// Ends the server process `pid` from another session, as a Postgres restart or an
/// operator would, and gives the client side a moment to see its socket close.
async fn terminate(db: &TestDatabase, pid: i32) {
    let other = DbPool::new(&settings(db.url(), 1)).expect("pool");
    let mut killer = other.get().await.expect("conn");
    diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
        .execute(&mut killer)
        .await
        .expect("terminate");
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Checkouts are not verified by a query (a round trip per request), yet a connection
/// the server closed while it sat in the pool is replaced, not handed out.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_the_server_closed_is_replaced_at_checkout_without_a_check_query() {
    let (db, pool) = setup(1).await;
    let first = {
        let mut conn = pool.get().await.expect("conn");
        backend_pid(&mut conn).await
    };
    terminate(&db, first).await;
    let mut conn = pool.get().await.expect("a fresh connection");
    let second = backend_pid(&mut conn).await;
    assert_ne!(
        first, second,
        "the closed connection was not handed out again"
    );
}

/// The server process behind a shared read connection, read through [`DbPool::read`].
async fn read_pid(pool: &DbPool) -> Result<i32, DbError> {
    pool.read(|conn| {
        async move {
            let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
                .get_result(&mut &*conn)
                .await?;
            Ok(row.pid)
        }
        .boxed()
    })
    .await
}

/// Concurrent reads go out on one shared connection (pipelined), not one pooled
/// connection each: they succeed while the pool is exhausted, and all on the same backend,
/// which has the session settings of every Keel connection. A closed pool reads no more.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reads_are_pipelined_on_one_shared_connection() {
    let db = TestDatabase::new().await.expect("test database");
    let pool = DbPool::new(&shared_reads(db.url(), 1, 1)).expect("pool");
    let mut held = pool.get().await.expect("the only pooled connection");
    let pooled = backend_pid(&mut held).await;
    let pids = futures::future::try_join_all((0..50).map(|_| read_pid(&pool)))
        .await
        .expect("reads while the pool is exhausted");
    assert!(pids.iter().all(|pid| *pid == pids[0]), "{pids:?}");
    assert_ne!(pids[0], pooled, "a read took the pooled connection");
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let timeout = pool
        .read(|conn| {
            async move {
                let row: Setting =
                    diesel::sql_query("SELECT current_setting('statement_timeout') AS value")
                        .get_result(&mut &*conn)
                        .await?;
                Ok(row.value)
            }
            .boxed()
        })
        .await
        .expect("setting");
    assert_eq!(timeout, "300ms");
    drop(held);
    pool.close();
    assert!(matches!(
        read_pid(&pool).await,
        Err(DbError::Unavailable(_))
    ));
}

/// A read whose shared connection the server closed is run again on a new one: the
/// caller gets its rows, not the broken socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_on_a_shared_connection_the_server_closed_is_retried_on_a_new_one() {
    let db = TestDatabase::new().await.expect("test database");
    let pool = DbPool::new(&shared_reads(db.url(), 1, 1)).expect("pool");
    let first = read_pid(&pool).await.expect("first read");
    terminate(&db, first).await;
    let second = read_pid(&pool)
        .await
        .expect("the read after the backend ended");
    assert_ne!(first, second);
    assert_eq!(read_pid(&pool).await.expect("and the next"), second);
}

/// With `database.read_connections = 0` reads take a pooled connection like any other.
#[tokio::test(flavor = "multi_thread")]
async fn with_no_shared_connections_reads_use_the_pool() {
    let db = TestDatabase::new().await.expect("test database");
    let pool = DbPool::new(&shared_reads(db.url(), 1, 0)).expect("pool");
    let pooled = {
        let mut conn = pool.get().await.expect("conn");
        backend_pid(&mut conn).await
    };
    assert_eq!(read_pid(&pool).await.expect("read"), pooled);
    let _held = pool.get().await.expect("the only pooled connection");
    assert!(matches!(read_pid(&pool).await, Err(DbError::Busy)));
}

/// With a database that does not answer, a read fails as unavailable after one connect
/// timeout, and the reads right after it fail at once instead of each waiting out a
/// connect of its own.
#[tokio::test(flavor = "multi_thread")]
async fn reads_fail_fast_while_the_database_does_not_answer() {
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = silent.local_addr().expect("addr").port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let pool = DbPool::new(&shared_reads(&url, 1, 1)).expect("pool");
    assert!(matches!(
        read_pid(&pool).await,
        Err(DbError::Unavailable(_))
    ));
    let started = Instant::now();
    for _ in 0..5 {
        assert!(matches!(
            read_pid(&pool).await,
            Err(DbError::Unavailable(_))
        ));
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}
