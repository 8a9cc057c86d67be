//! Liveness and readiness.

use crate::platform::Platform;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The process is up and its HTTP server answers. Checks nothing else on purpose: an
/// orchestrator restarts a process whose liveness fails, and a database outage is no
/// reason to restart every replica.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "The process is up", body = LiveBody)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(LiveBody { status: "live" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LiveBody {
    status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadyBody {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// One entry per dependency: `postgres`, `migrations`, `redis`.
    checks: BTreeMap<&'static str, Check>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    ok: bool,
    latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Once true it stays true: migrations are never unapplied under a running process.
static MIGRATIONS_CURRENT: AtomicBool = AtomicBool::new(false);

/// Ready to take traffic: Postgres answers, its schema has every migration this binary
/// embeds, and Redis answers. 503 (with the failing check named) otherwise.
#[utoipa::path(tag = "operations",
    responses(
        (status = 200, description = "Every dependency is reachable", body = ReadyBody),
        (status = 503, description = "At least one dependency is not", body = ReadyBody)))]
#[get("/health/ready")]
pub async fn ready(platform: web::Data<Platform>) -> HttpResponse {
    let limit =
        platform.settings.database.acquire_timeout() + platform.settings.redis.timeout() * 2;
    let (postgres, redis) = tokio::join!(
        timed(limit, check_postgres(&platform)),
        timed(limit, async {
            platform.cache.ping().await.map_err(|e| e.to_string())
        }),
    );
    let mut checks = BTreeMap::new();
    let (postgres, migrations) = match postgres {
        Ok((migrations, postgres)) => (postgres, migrations),
        Err(check) => (
            check,
            Check {
                ok: false,
                latency_ms: 0,
                error: Some("postgres unreachable".into()),
            },
        ),
    };
    checks.insert("postgres", postgres);
    checks.insert("migrations", migrations);
    checks.insert("redis", redis.map(|((), c)| c).unwrap_or_else(|c| c));
    let ok = checks.values().all(|c| c.ok);
    let body = ReadyBody {
        status: if ok { "ready" } else { "not_ready" },
        checks,
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Pings Postgres and, until they are known current, compares applied migrations.
async fn check_postgres(platform: &Platform) -> Result<Check, String> {
    let mut conn = platform.pool.get().await.map_err(|e| e.to_string())?;
    if MIGRATIONS_CURRENT.load(Ordering::Relaxed) {
        return Ok(Check {
            ok: true,
            latency_ms: 0,
            error: None,
        });
    }
    let pending = keel_persistence::pending_migrations(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if pending.is_empty() {
        MIGRATIONS_CURRENT.store(true, Ordering::Relaxed);
        return Ok(Check {
            ok: true,
            latency_ms: 0,
            error: None,
        });
    }
    Ok(Check {
        ok: false,
        latency_ms: 0,
        error: Some(format!(
            "{} pending migration(s): run `keel migrate`",
            pending.len()
        )),
    })
}

/// Runs a check with a deadline, measuring it. `Ok((value, check))` when it succeeded.
async fn timed<T>(
    limit: Duration,
    check: impl Future<Output = Result<T, String>>,
) -> Result<(T, Check), Check> {
    let started = Instant::now();
    let result = tokio::time::timeout(limit, check).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Ok(value)) => Ok((
            value,
            Check {
                ok: true,
                latency_ms,
                error: None,
            },
        )),
        Ok(Err(error)) => Err(Check {
            ok: false,
            latency_ms,
            error: Some(error),
        }),
        Err(_) => Err(Check {
            ok: false,
            latency_ms,
            error: Some(format!("no answer within {limit:?}")),
        }),
    }
}
