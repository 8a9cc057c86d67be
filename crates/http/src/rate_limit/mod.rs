//! General rate limits on the API, across every process: per valid credential, and per
//! client address for everything else; fixed windows aligned to the clock, with
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every response and
//! `429` + `Retry-After` beyond the limit.
//!
//! What a request counts against: a bearer token is checked first (the cached check the
//! route would make anyway, done once per request, see `auth::credential_of`). Only a
//! valid credential has a budget of its own; a request without one, or with a token that
//! is not valid, counts against its client's address, so junk tokens buy nothing.
//!
//! Where it is counted: each process spends tokens it leased from Redis in slices
//! (`budget.rs`, `lease.rs`), so the steady state costs no round trip and the processes
//! together never serve more than the limit per window. The price is the other way:
//! tokens one process leased and has not spent are not available to another, so a
//! client spread over N processes may be refused after fewer requests, by at most
//! N − 1 slices of `limit / 20` (smaller as the window's budget runs out).

mod budget;
mod lease;

pub use budget::Subject;

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use budget::{Budgets, Lease, Spend};
use lease::Leases;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The limiter, registered as app data (`web::Data<RateLimiter>`); without it the
/// middleware lets everything through.
#[derive(Debug)]
pub struct RateLimiter {
    per_credential: u32,
    per_address: u32,
    window: Duration,
    budgets: Budgets,
    /// Where budgets are shared; `None`: this process counts alone.
    leases: Option<Leases>,
}

/// Where a request stands against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    pub reset: Duration,
    pub allowed: bool,
}

impl RateLimiter {
    /// A limiter of this process alone; a limit of 0 turns that kind of limit off.
    pub fn new(per_credential: u32, per_address: u32, window: Duration) -> Self {
        Self {
            per_credential,
            per_address,
            window: window.max(Duration::from_secs(1)),
            budgets: Budgets::default(),
            leases: None,
        }
    }

    /// Shares the budgets with every process using the same Redis and key prefix.
    pub fn shared(mut self, redis: deadpool_redis::Pool, key_prefix: &str) -> Self {
        self.leases = Some(Leases::new(redis, key_prefix));
        self
    }

    /// Counts one request of `subject`; `None` when its kind of limit is off.
    pub async fn check(&self, subject: Subject) -> Option<Quota> {
        let limit = match subject {
            Subject::Credential(_) => self.per_credential,
            Subject::Address(_) => self.per_address,
        };
        if limit == 0 {
            return None;
        }
        let length = self.window.as_millis() as u64;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let window = now / length;
        let reset = Duration::from_millis((window + 1) * length - now);
        let spent = match self.budgets.spend(subject, window, limit) {
            Spend::Lease { .. } => {
                let leasing = self.budgets.leasing(subject);
                let _leasing = leasing.lock().await;
                // Whoever held the lock before may have brought tokens for this request.
                match self.budgets.spend(subject, window, limit) {
                    Spend::Lease { size } => {
                        let lease = self.lease(subject, window, size, limit).await;
                        self.budgets.add_lease(subject, window, limit, lease)
                    }
                    spent => spent,
                }
            }
            spent => spent,
        };
        let remaining = match spent {
            Spend::Allowed { remaining } => Some(remaining),
            Spend::Refused | Spend::Lease { .. } => None,
        };
        Some(Quota {
            limit,
            remaining: remaining.unwrap_or(0),
            reset,
            allowed: remaining.is_some(),
        })
    }
}

impl RateLimiter {
    async fn lease(&self, subject: Subject, window: u64, size: u32, limit: u32) -> Lease {
        match &self.leases {
            Some(leases) => {
                leases
                    .lease(subject, window, self.window, size, limit)
                    .await
            }
            None => Lease::Local { size },
        }
    }
}

/// Where `req` stands, counted against its credential when valid, else its client's
/// address; `None` when no limit applies.
async fn quota(req: &ServiceRequest) -> Option<Quota> {
    let limiter = req
        .app_data::<web::Data<RateLimiter>>()
        .filter(|limiter| limiter.per_credential > 0 || limiter.per_address > 0)?;
    let subject = match crate::auth::credential_of(req.request()).await {
        Some(credential) => Subject::Credential(credential),
        None => Subject::address(crate::client_address::of(req.request())?),
    };
    limiter.check(subject).await
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(quota) = quota(&req).await else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let reset_secs = quota.reset.as_secs_f64().ceil() as u64;
    let mut res = if quota.allowed {
        next.call(req).await?.map_into_boxed_body()
    } else {
        metrics::counter!("keel_rate_limited_total").increment(1);
        let (http_req, _) = req.into_parts();
        ServiceResponse::new(
            http_req,
            ApiError::too_many_requests(reset_secs.max(1)).error_response(),
        )
    };
    let headers = res.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", u64::from(quota.limit)),
        ("ratelimit-remaining", u64::from(quota.remaining)),
        ("ratelimit-reset", reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// Against the test Redis (`KEEL_TEST_REDIS_URL`), under a key prefix of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_waits_for_one_lease_instead_of_taking_one_each() {
        let url = std::env::var("KEEL_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
        let redis = deadpool_redis::Config::from_url(url)
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .unwrap();
        let prefix = format!("keel_test_rate_limit_{}", uuid::Uuid::now_v7().simple());
        let limiter = std::sync::Arc::new(
            RateLimiter::new(0, 2000, Duration::from_secs(3600)).shared(redis.clone(), &prefix),
        );
        let addr = Subject::address(IpAddr::from([192, 0, 2, 1]));
        let burst: Vec<_> = (0..64)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.check(addr).await.unwrap().allowed })
            })
            .collect();
        for request in burst {
            assert!(request.await.unwrap());
        }
        let mut conn = redis.get().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:ratelimit:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut leased = 0;
        for key in &keys {
            let n: u64 = redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            leased += n;
            let _: () = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        // One slice of 2000 / 20 serves the 64 (two if the window turned meanwhile); a
        // lease per request would have taken the whole budget.
        assert!((100..=200).contains(&leased), "{leased} leased");
    }

    #[tokio::test]
    async fn credentials_and_addresses_have_budgets_of_their_own() {
        let limiter = RateLimiter::new(3, 2, Duration::from_secs(60));
        let key = Subject::Credential(uuid::Uuid::new_v4());
        let addr = Subject::Address(IpAddr::from([192, 0, 2, 1]));
        for remaining in [2, 1, 0] {
            let q = limiter.check(key).await.unwrap();
            assert!(q.allowed);
            assert_eq!((q.limit, q.remaining), (3, remaining));
            assert!(q.reset <= Duration::from_secs(60));
        }
        assert!(!limiter.check(key).await.unwrap().allowed);
        let q = limiter.check(addr).await.unwrap();
        assert!(q.allowed, "the address has its own budget");
        assert_eq!(q.limit, 2);
        assert!(
            RateLimiter::new(0, 0, Duration::from_secs(1))
                .check(addr)
                .await
                .is_none()
        );
    }
}
