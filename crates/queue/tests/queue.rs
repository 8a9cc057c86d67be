//! The durable-job guarantees against real PostgreSQL and Redis: each test has its own
//! database (cloned from the migrated template) and its own Redis key prefix. Tests that
//! need a second worker process re-run this test binary as a child (`child_worker`).

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use chrono::Utc;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use keel_cache::Cache;
use keel_config::Settings;
use keel_persistence::AsyncConnection as _;
use keel_persistence::testing::TestDatabase;
use keel_persistence::{DbError, DbPool};
use keel_queue::{DeadFilter, Enqueued, Job, JobContext, JobError, Queue, Registry, Workers};
use keel_testing::wait_until;
use serde::{Deserialize, Serialize};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

// ---------------------------------------------------------------- test jobs

/// Records its run in `test_effects`, keyed by job id: the idempotent side effect.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Touch {
    key: String,
}
impl Job for Touch {
    const NAME: &'static str = "test.touch";
}

/// Fails on every attempt unless told otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flaky;
impl Job for Flaky {
    const NAME: &'static str = "test.flaky";
    const MAX_ATTEMPTS: Option<u32> = Some(3);
}

/// Takes a while; short timeout so a lost lease expires quickly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slow {
    millis: u64,
}
impl Job for Slow {
    const NAME: &'static str = "test.slow";
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(2));
}

/// Scheduled every second.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tick;
impl Job for Tick {
    const NAME: &'static str = "test.tick";
}

// ---------------------------------------------------------------- harness

struct Harness {
    db: TestDatabase,
    settings: Arc<Settings>,
    pool: DbPool,
    cache: Cache,
    queue: Queue,
}

async fn harness(overrides: &[(&str, &str)]) -> Harness {
    keel_telemetry::init_for_tests();
    let db = TestDatabase::new().await.expect("test database");
    let loader = keel_config::testing::loader(db.url()).with_vars(overrides);
    let settings = Arc::new(keel_config::Loader::load(&loader).expect("settings"));
    from_settings(db, settings).await
}

async fn from_settings(db: TestDatabase, settings: Arc<Settings>) -> Harness {
    use diesel_async::RunQueryDsl;
    let pool = DbPool::new(&settings.database).expect("pool");
    let redis = keel_cache::redis_pool(&settings.redis).expect("redis pool");
    let cache = Cache::new(&settings.cache, &settings.redis, redis).expect("cache");
    let queue = Queue::new(&settings, pool.clone()).expect("queue");
    let mut conn = pool.get().await.expect("conn");
    sql_query(
        "CREATE TABLE IF NOT EXISTS test_effects (job_id uuid PRIMARY KEY, key text NOT NULL, \
         attempt int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    )
    .execute(&mut conn)
    .await
    .expect("effects table");
    Harness {
        db,
        settings,
        pool,
        cache,
        queue,
    }
}

impl Harness {
    fn workers(&self, registry: Registry) -> Workers {
        Workers::start(
            self.settings.clone(),
            self.queue.clone(),
            self.cache.clone(),
            registry,
        )
    }

    /// Workers whose `Touch` handler counts its runs in the returned counter.
    fn touch_workers(&self, delay: Duration) -> (Workers, Arc<AtomicU32>) {
        let runs = Arc::new(AtomicU32::new(0));
        (self.workers(touch_registry(runs.clone(), delay)), runs)
    }

    async fn enqueue<J: Job>(&self, job: &J) -> Uuid {
        self.queue.enqueue_now(job).await.expect("enqueue")
    }

    async fn effects(&self) -> Vec<Effect> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.pool.get().await.expect("conn");
        sql_query("SELECT job_id, key, attempt::bigint AS attempt FROM test_effects ORDER BY at")
            .load(&mut conn)
            .await
            .expect("effects")
    }

    async fn state(&self, id: Uuid) -> (String, i32) {
        let s = self
            .queue
            .status(id)
            .await
            .expect("status")
            .expect("job exists");
        (s.state.to_string(), s.attempts)
    }

    async fn wait_state(&self, id: Uuid, state: &str, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            let (now, attempts) = self.state(id).await;
            if now == state {
                return attempts;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not reach {state} within {within:?}; it is {now} after {attempts} attempts"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[derive(QueryableByName, Debug)]
struct Effect {
    #[diesel(sql_type = SqlUuid)]
    job_id: Uuid,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    attempt: i64,
}

/// Writes the effect once per job, whatever the number of runs.
async fn record_effect(ctx: &JobContext, key: &str) -> Result<(), JobError> {
    use diesel_async::RunQueryDsl;
    let mut conn = ctx.pool.get().await?;
    sql_query("INSERT INTO test_effects (job_id, key, attempt) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind::<SqlUuid, _>(ctx.job_id)
        .bind::<Text, _>(key)
        .bind::<diesel::sql_types::Integer, _>(ctx.attempt as i32)
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
    Ok(())
}

/// A registry whose `Touch` handler counts its runs.
fn touch_registry(runs: Arc<AtomicU32>, delay: Duration) -> Registry {
    let mut registry = Registry::new();
    registry
        .register(move |ctx: JobContext, job: Touch| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                record_effect(&ctx, &job.key).await
            }
        })
        .expect("register");
    registry
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_runs() {
    let h = harness(&[]).await;
    let (workers, runs) = h.touch_workers(Duration::ZERO);

    // Even a doorbell rung for the rolled-back row (a caller bug) must not run anything.
    let leaked: Arc<Mutex<Option<Enqueued>>> = Arc::default();
    let result: Result<(), DbError> = h
        .pool
        .get()
        .await
        .expect("connection")
        .transaction(async |conn| {
            let e = h
                .queue
                .enqueue(
                    conn,
                    &Touch {
                        key: "rolled-back".into(),
                    },
                )
                .await?;
            *leaked.lock().expect("lock") = Some(e);
            Err(DbError::NotFound) // anything that makes the request fail
        })
        .await;
    assert!(result.is_err());
    let leaked = leaked
        .lock()
        .expect("lock")
        .take()
        .expect("enqueued inside");
    let ghost = leaked.id;
    h.queue.ring([leaked]).await;

    let committed = h
        .enqueue(&Touch {
            key: "committed".into(),
        })
        .await;
    h.wait_state(committed, "succeeded", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert!(
        h.queue.status(ghost).await.expect("status").is_none(),
        "the rolled-back row exists"
    );
    let effects = h.effects().await;
    assert_eq!(
        effects.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["committed"]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_job_runs_exactly_once() {
    let h = harness(&[]).await;
    let (workers, runs) = h.touch_workers(Duration::ZERO);
    let id = h.enqueue(&Touch { key: "once".into() }).await;
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(attempts, 1);
    // Longer than the redelivery window: the reconciler must not run it again.
    tokio::time::sleep(h.settings.queue.redeliver_after() + Duration::from_millis(800)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(h.effects().await.len(), 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_failing_twice_then_succeeding_ends_done_after_three_attempts_with_growing_gaps()
{
    let h = harness(&[("KEEL__QUEUE__BACKOFF_BASE_MS", "300")]).await;
    let tries: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut registry = Registry::new();
    let seen = tries.clone();
    registry
        .register(move |ctx: JobContext, _: Flaky| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(Instant::now());
                if ctx.attempt < 3 {
                    return Err(JobError::retry(anyhow::anyhow!("receiver unavailable")));
                }
                record_effect(&ctx, "flaky").await
            }
        })
        .expect("register");
    let workers = h.workers(registry);
    let id = h.enqueue(&Flaky).await;
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(15)).await;
    assert_eq!(attempts, 3);
    let tries = tries.lock().expect("lock").clone();
    assert_eq!(tries.len(), 3);
    let (gap1, gap2) = (tries[1] - tries[0], tries[2] - tries[1]);
    assert!(
        gap1 >= Duration::from_millis(225),
        "first backoff too short: {gap1:?}"
    );
    assert!(gap2 > gap1, "backoff did not grow: {gap1:?} then {gap2:?}");
    let status = h.queue.status(id).await.expect("status").expect("exists");
    assert_eq!(status.last_error.as_deref(), Some("receiver unavailable"));
    assert_eq!(h.effects().await.len(), 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deferred_job_waits_and_gets_its_attempt_back() {
    let h = harness(&[]).await;
    let runs: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut registry = Registry::new();
    let seen = runs.clone();
    registry
        .register(move |ctx: JobContext, _: Flaky| {
            let seen = seen.clone();
            async move {
                let run = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(Instant::now());
                    seen.len()
                };
                // More deferrals than Flaky's 3 attempts: only given-back attempts get
                // this far.
                if run <= 4 {
                    return Err(JobError::Defer(
                        Duration::from_millis(200),
                        "not yet".to_owned(),
                    ));
                }
                record_effect(&ctx, "deferred").await
            }
        })
        .expect("register");
    let workers = h.workers(registry);
    let id = h.enqueue(&Flaky).await;
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(15)).await;
    assert_eq!(attempts, 1, "deferrals use up no attempt");
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 5);
    for pair in runs.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(190),
            "ran again before the deferral: {:?}",
            pair[1] - pair[0]
        );
    }
    assert_eq!(h.effects().await.len(), 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_that_always_fails_ends_dead_and_can_be_retried() {
    let h = harness(&[("KEEL__QUEUE__BACKOFF_BASE_MS", "50")]).await;
    let healed = Arc::new(AtomicBool::new(false));
    let mut registry = Registry::new();
    let flag = healed.clone();
    registry
        .register(move |ctx: JobContext, _: Flaky| {
            let flag = flag.clone();
            async move {
                if !flag.load(Ordering::SeqCst) {
                    return Err(JobError::retry(anyhow::anyhow!("still broken")));
                }
                record_effect(&ctx, "healed").await
            }
        })
        .expect("register");
    let workers = h.workers(registry);
    let id = h.enqueue(&Flaky).await;
    let attempts = h.wait_state(id, "dead", Duration::from_secs(10)).await;
    assert_eq!(attempts, 3, "Flaky allows 3 attempts");

    let dead = h.queue.dead_jobs(10, None).await.expect("dead list");
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    assert_eq!(dead[0].last_error.as_deref(), Some("still broken"));
    let counts = h.queue.counts().await.expect("counts");
    let flaky = counts
        .iter()
        .find(|c| c.kind == "test.flaky")
        .expect("kind counted");
    assert_eq!((flaky.dead, flaky.ready, flaky.running), (1, 0, 0));

    healed.store(true, Ordering::SeqCst);
    assert!(h.queue.retry_dead(id).await.expect("retry"));
    assert!(
        !h.queue.retry_dead(id).await.expect("second retry"),
        "only dead jobs are retried"
    );
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(attempts, 1, "a retried job starts a fresh set of attempts");
    assert_eq!(h.effects().await.len(), 1);
    assert!(
        !h.queue
            .retry_dead(Uuid::now_v7())
            .await
            .expect("unknown id")
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_that_exceeds_its_timeout_is_retried() {
    let h = harness(&[("KEEL__QUEUE__BACKOFF_BASE_MS", "50")]).await;
    let mut registry = Registry::new();
    registry
        .register(|ctx: JobContext, job: Slow| async move {
            if ctx.attempt == 1 {
                tokio::time::sleep(Duration::from_millis(job.millis)).await;
            }
            record_effect(&ctx, "slow").await
        })
        .expect("register");
    let workers = h.workers(registry);
    let id = h.enqueue(&Slow { millis: 10_000 }).await;
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(attempts, 2);
    let effects = h.effects().await;
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].attempt, 2);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_job_delivered_twice_concurrently_has_its_effect_once() {
    let h = harness(&[]).await;
    let (workers, runs) = h.touch_workers(Duration::from_millis(300));
    let enqueued = {
        let mut conn = h.pool.get().await.expect("conn");
        h.queue
            .enqueue(&mut conn, &Touch { key: "dup".into() })
            .await
            .expect("enqueue")
    };
    let id = enqueued.id;
    tokio::join!(h.queue.ring([enqueued.clone()]), h.queue.ring([enqueued]));
    h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran twice");
    let effects = h.effects().await;
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].job_id, id);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_pending_when_redis_is_wiped_still_complete_through_the_reconciler() {
    let h = harness(&[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            h.enqueue(&Touch {
                key: format!("wiped-{i}"),
            })
            .await,
        );
    }
    // As if Redis restarted empty: every doorbell is gone.
    let removed = wipe_redis_prefix(&h.settings).await;
    assert!(removed > 0, "doorbells were pushed before the wipe");

    let (workers, runs) = h.touch_workers(Duration::ZERO);
    for id in &ids {
        h.wait_state(*id, "succeeded", Duration::from_secs(15))
            .await;
    }
    assert_eq!(h.effects().await.len(), 5);
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn handled_doorbells_are_vacuumed_from_redis() {
    let h = harness(&[]).await;
    let (workers, runs) = h.touch_workers(Duration::ZERO);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            h.enqueue(&Touch {
                key: format!("v{i}"),
            })
            .await,
        );
    }
    for id in &ids {
        h.wait_state(*id, "succeeded", Duration::from_secs(10))
            .await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 20);
    workers.shutdown().await;
    let before = redis_keys(&h.settings).await;
    let removed = h
        .queue
        .vacuum_doorbells(&[Touch::NAME])
        .await
        .expect("vacuum");
    let after = redis_keys(&h.settings).await;
    assert!(removed >= 20, "removed {removed}; keys {before:?}");
    assert!(
        after.len() + 20 <= before.len(),
        "before {before:?}\nafter {after:?}"
    );
    assert!(!after.iter().any(|k| k.ends_with(":done")), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_is_replaced_after_its_lease_expires() {
    let h = harness(&[]).await;
    let id = h.enqueue(&Slow { millis: 60_000 }).await;
    let mut child = spawn_child_worker(&h, "slow");
    // The child claims the job and hangs in it.
    let claimed = wait_until(Duration::from_secs(30), || async {
        h.state(id).await == ("running".into(), 1)
    })
    .await;
    assert!(
        claimed,
        "child never claimed the job: {:?}",
        h.state(id).await
    );
    child.kill().expect("SIGKILL the child"); // std's kill is SIGKILL on Unix
    child.wait().expect("reap");

    let mut registry = Registry::new();
    registry
        .register(|ctx: JobContext, _: Slow| async move { record_effect(&ctx, "recovered").await })
        .expect("register");
    let workers = h.workers(registry);
    // Lease = 2 s timeout + 2 s margin; then the reconciler re-rings it.
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(20)).await;
    assert_eq!(attempts, 2, "the lost attempt counts");
    let effects = h.effects().await;
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].attempt, 2);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_job_with_two_worker_processes_runs_once_per_tick() {
    use diesel_async::RunQueryDsl;
    let h = harness(&[]).await;
    let mut child = spawn_child_worker(&h, "cron");
    let workers = h.workers(tick_registry());
    tokio::time::sleep(Duration::from_millis(4500)).await;
    workers.shutdown().await;
    child.kill().expect("stop child");
    child.wait().expect("reap");
    // Let the last tick's job finish in whichever process had it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    #[derive(QueryableByName, Debug)]
    struct TickRow {
        #[diesel(sql_type = Text)]
        unique_key: String,
        #[diesel(sql_type = BigInt)]
        runs: i64,
    }
    let mut conn = h.pool.get().await.expect("conn");
    let ticks: Vec<TickRow> = sql_query(
        "SELECT j.unique_key, count(e.job_id) AS runs FROM queue_jobs j \
         LEFT JOIN test_effects e ON e.job_id = j.id WHERE j.kind = 'test.tick' \
         GROUP BY j.unique_key ORDER BY j.unique_key",
    )
    .load(&mut conn)
    .await
    .expect("ticks");
    assert!(
        (3..=6).contains(&ticks.len()),
        "expected ~4 ticks in 4.5 s: {ticks:?}"
    );
    let completed: Vec<_> = ticks.iter().filter(|t| t.runs > 0).collect();
    assert!(completed.len() >= 3, "{ticks:?}");
    assert!(
        ticks
            .iter()
            .all(|t| t.runs <= 1 && t.unique_key.starts_with("cron:")),
        "a tick ran twice: {ticks:?}"
    );
    // Both processes scheduled every tick, so each tick had two enqueue attempts and
    // exactly one row.
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_span_continues_the_enqueuing_trace() {
    let h = harness(&[]).await;
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let mut registry = Registry::new();
    let slot = seen.clone();
    registry
        .register(move |ctx: JobContext, job: Touch| {
            let slot = slot.clone();
            async move {
                *slot.lock().expect("lock") = keel_telemetry::propagation::current_trace_id();
                record_effect(&ctx, &job.key).await
            }
        })
        .expect("register");
    let workers = h.workers(registry);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let request_span = tracing::info_span!("incoming request");
    keel_telemetry::propagation::set_parent(
        &request_span,
        &keel_telemetry::propagation::TraceContext {
            traceparent: format!("00-{trace_id}-00f067aa0ba902b7-01"),
            tracestate: None,
        },
    );
    let id = {
        let _entered = request_span.enter();
        h.queue
            .enqueue_now(&Touch {
                key: "traced".into(),
            })
            .await
            .expect("enqueue")
    };
    h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(seen.lock().expect("lock").as_deref(), Some(trace_id));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_a_short_job_finish_and_releases_a_long_one() {
    let h = harness(&[("KEEL__QUEUE__SHUTDOWN_GRACE_SECS", "1")]).await;
    let mut registry = Registry::new();
    registry
        .register(|ctx: JobContext, job: Slow| async move {
            tokio::time::sleep(Duration::from_millis(job.millis)).await;
            record_effect(&ctx, &job.millis.to_string()).await
        })
        .expect("register");
    let workers = h.workers(registry);
    let short = h.enqueue(&Slow { millis: 300 }).await;
    let long = h.enqueue(&Slow { millis: 1_800 }).await; // within its 2 s timeout, beyond the grace
    h.wait_state(long, "running", Duration::from_secs(10)).await;
    workers.shutdown().await;
    assert_eq!(h.state(short).await, ("succeeded".into(), 1));
    assert_eq!(
        h.state(long).await,
        ("pending".into(), 0),
        "the long job's lease was released uncounted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_one_reconciler_runs_at_a_time() {
    use diesel_async::RunQueryDsl;
    let h = harness(&[]).await;
    let queue = h.queue.clone();
    let pool = h.pool.clone();
    // Hold the reconciler's lock in an open transaction, then try a pass.
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        pool.get()
            .await?
            .transaction(async |conn| {
                sql_query("SELECT pg_advisory_xact_lock(7738703051156185966)")
                    .execute(conn)
                    .await?;
                let _ = locked_tx.send(());
                let _ = release_rx.await;
                Ok::<_, DbError>(())
            })
            .await
    });
    locked_rx.await.expect("lock taken");
    let blocked = queue.reconcile_now().await.expect("pass");
    assert!(
        !blocked.ran,
        "a second reconciler ran while the lock was held"
    );
    let _ = release_tx.send(());
    holder.await.expect("join").expect("holder tx");
    let free = queue.reconcile_now().await.expect("pass");
    assert!(free.ran);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_an_unknown_job_is_none_and_counts_show_the_backlog() {
    let h = harness(&[]).await;
    assert!(
        h.queue
            .status(Uuid::now_v7())
            .await
            .expect("status")
            .is_none()
    );
    let mut conn = h.pool.get().await.expect("conn");
    let later = h
        .queue
        .enqueue_with(
            &mut conn,
            &Touch {
                key: "later".into(),
            },
            keel_queue::EnqueueOptions {
                delay: Some(Duration::from_secs(3600)),
                unique_key: None,
            },
        )
        .await
        .expect("enqueue")
        .expect("inserted");
    let _now = h
        .queue
        .enqueue(&mut conn, &Touch { key: "now".into() })
        .await
        .expect("enqueue");
    let dup_key = Some("only-once".to_owned());
    let first = h
        .queue
        .enqueue_with(
            &mut conn,
            &Touch { key: "k".into() },
            keel_queue::EnqueueOptions {
                delay: None,
                unique_key: dup_key.clone(),
            },
        )
        .await
        .expect("first");
    let second = h
        .queue
        .enqueue_with(
            &mut conn,
            &Touch { key: "k".into() },
            keel_queue::EnqueueOptions {
                delay: None,
                unique_key: dup_key,
            },
        )
        .await
        .expect("second");
    assert!(
        first.is_some() && second.is_none(),
        "a unique key admits one job"
    );
    drop(conn);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counts = h.queue.counts().await.expect("counts");
    let touch = counts
        .iter()
        .find(|c| c.kind == "test.touch")
        .expect("counted");
    assert_eq!(
        (touch.ready, touch.scheduled, touch.running, touch.dead),
        (2, 1, 0, 0)
    );
    assert!(touch.oldest_ready_age_seconds > 0.0);
    let status = h
        .queue
        .status(later.id)
        .await
        .expect("status")
        .expect("exists");
    assert!(status.run_at > Utc::now() + chrono::Duration::minutes(59));
}

// ---------------------------------------------------------------- child worker process

fn tick_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(|ctx: JobContext, _: Tick| async move { record_effect(&ctx, "tick").await })
        .expect("register");
    registry
        .periodic::<Tick, _>("* * * * * *", || Tick)
        .expect("schedule");
    registry
}

fn spawn_child_worker(h: &Harness, mode: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_worker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KEEL_QUEUE_CHILD_DB", h.db.url())
        .env("KEEL_QUEUE_CHILD_PREFIX", &h.settings.redis.key_prefix)
        .env("KEEL_QUEUE_CHILD_MODE", mode)
        .spawn()
        .expect("spawn child worker")
}

/// Not a test of its own: the body of the second worker process that other tests start.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run as a child process by other tests"]
async fn child_worker() {
    let (Ok(db), Ok(prefix), Ok(mode)) = (
        std::env::var("KEEL_QUEUE_CHILD_DB"),
        std::env::var("KEEL_QUEUE_CHILD_PREFIX"),
        std::env::var("KEEL_QUEUE_CHILD_MODE"),
    ) else {
        return;
    };
    let loader = keel_config::testing::loader(&db).with_var("KEEL__REDIS__KEY_PREFIX", prefix);
    let settings = keel_config::Loader::load(&loader).expect("settings");
    let pool = DbPool::new(&settings.database).expect("pool");
    let redis = keel_cache::redis_pool(&settings.redis).expect("redis");
    let cache = Cache::new(&settings.cache, &settings.redis, redis).expect("cache");
    let queue = Queue::new(&settings, pool).expect("queue");
    let registry = match mode.as_str() {
        "slow" => {
            let mut r = Registry::new();
            r.register(|_: JobContext, job: Slow| async move {
                tokio::time::sleep(Duration::from_millis(job.millis)).await;
                Ok(())
            })
            .expect("register");
            r
        }
        _ => tick_registry(),
    };
    let _workers = Workers::start(Arc::new(settings), queue, cache, registry);
    // Killed by the parent long before this.
    tokio::time::sleep(Duration::from_secs(60)).await;
}

async fn redis_conn(settings: &Settings) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(settings.redis.url.expose().as_str()).expect("client");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

/// Every Redis key under the test's prefix.
async fn redis_keys(settings: &Settings) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("{}:*", settings.redis.key_prefix))
        .query_async(&mut redis_conn(settings).await)
        .await
        .expect("keys")
}

async fn wipe_redis_prefix(settings: &Settings) -> usize {
    let keys = redis_keys(settings).await;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut redis_conn(settings).await)
            .await
            .expect("del");
    }
    keys.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_kind_waits_untouched_and_runs_when_resumed() {
    let h = harness(&[("KEEL__QUEUE__REDELIVER_AFTER_SECS", "1")]).await;
    assert!(
        h.queue
            .pause("test.touch", "ops:test")
            .await
            .expect("pause")
    );
    assert!(
        !h.queue
            .pause("test.touch", "ops:test")
            .await
            .expect("again"),
        "pausing twice changes nothing"
    );
    let paused = h.queue.paused_kinds().await.expect("paused");
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].paused_by, "ops:test");

    let (workers, runs) = h.touch_workers(Duration::ZERO);
    let id = h
        .enqueue(&Touch {
            key: "paused".into(),
        })
        .await;
    // Its doorbell reaches the worker, which does not claim it; the reconciler (every
    // pass, with lost doorbells after 1 s) does not ring it again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = h.queue.reconcile_now().await.expect("pass");
    assert_eq!(report.rung, 0, "a paused kind is not re-rung");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(h.state(id).await, ("pending".into(), 0));

    assert!(h.queue.resume("test.touch").await.expect("resume"));
    assert!(!h.queue.resume("test.touch").await.expect("not paused"));
    // The workers' reconciler rings it at its next pass.
    h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_jobs_are_found_retried_and_discarded_by_kind_and_error() {
    let h = harness(&[]).await;
    // Dead rows written directly: three errors over two kinds.
    let mut ids = Vec::new();
    for (kind, error) in [
        ("test.touch", "connect: refused (100% of_tries)"),
        ("test.touch", "timeout after 10 s"),
        ("test.flaky", "connect: refused"),
    ] {
        let id = Uuid::now_v7();
        let mut conn = h.pool.get().await.expect("conn");
        use diesel_async::RunQueryDsl;
        sql_query(
            "INSERT INTO queue_jobs (id, kind, payload, state, attempts, max_attempts, timeout_ms, \
             last_error, finished_at) VALUES ($1, $2, '{\"key\": \"k\"}', 'dead', 3, 3, 1000, $3, now())",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(kind)
        .bind::<Text, _>(error)
        .execute(&mut conn)
        .await
        .expect("dead row");
        ids.push(id);
    }
    let matching = |kind: Option<&str>, error: Option<&str>| DeadFilter {
        kind: kind.map(str::to_owned),
        error: error.map(str::to_owned),
    };
    let found = |filter: DeadFilter| {
        let queue = h.queue.clone();
        async move {
            let mut ids: Vec<Uuid> = queue
                .dead_matching(&filter, 10, None)
                .await
                .expect("dead")
                .into_iter()
                .map(|j| j.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(found(matching(None, None)).await.len(), 3);
    assert_eq!(found(matching(Some("test.touch"), None)).await, ids[..2]);
    assert_eq!(
        found(matching(None, Some("CONNECT"))).await,
        [ids[0], ids[2]]
    );
    // The error text is matched literally: `%` and `_` are not wildcards.
    assert_eq!(found(matching(None, Some("100% of_"))).await, [ids[0]]);
    assert!(found(matching(None, Some("1_0%"))).await.is_empty());

    let detail = h.queue.detail(ids[1]).await.expect("detail").expect("job");
    assert_eq!(detail.payload["key"], "k");
    assert_eq!(
        detail.status.last_error.as_deref(),
        Some("timeout after 10 s")
    );

    // Retry all that match, with a worker running them.
    let (workers, runs) = h.touch_workers(Duration::ZERO);
    let retried = h
        .queue
        .retry_matching(&matching(Some("test.touch"), Some("connect")), 100)
        .await
        .expect("retry");
    assert_eq!(retried, 1);
    h.wait_state(ids[0], "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Discard one, then all that remain of a kind; a job that is not dead survives.
    let discarded = h
        .queue
        .discard_dead(&DeadFilter::default(), Some(ids[0]), 100)
        .await
        .expect("discard");
    assert_eq!(discarded, 0, "a succeeded job is not discarded");
    let discarded = h
        .queue
        .discard_dead(&DeadFilter::default(), Some(ids[1]), 100)
        .await
        .expect("discard");
    assert_eq!(discarded, 1);
    assert!(h.queue.status(ids[1]).await.expect("status").is_none());
    let discarded = h
        .queue
        .discard_dead(&matching(Some("test.flaky"), None), None, 100)
        .await
        .expect("discard");
    assert_eq!(discarded, 1);
    assert!(found(matching(None, None)).await.is_empty());
    workers.shutdown().await;
}
