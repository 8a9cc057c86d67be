//! General rate limits: per credential (the `Authorization` header) and per client IP,
//! in fixed windows, with `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
//! on every response and `429` + `Retry-After` beyond the limit.
//!
//! Counted in memory, per process: a shared counter would cost a Redis round trip on every
//! request (several times the cost of a cached request). The limit therefore applies per
//! instance; with N instances behind a balancer a client gets at most N times the limit.
//! Login throttling, where the exact shared count matters, lives in Redis (accounts).

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Above this many tracked keys in a shard, finished windows are dropped.
const SHARD_SOFT_CAP: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// The limiter, registered as app data (`web::Data<RateLimiter>`); without it the
/// middleware lets everything through.
#[derive(Debug)]
pub struct RateLimiter {
    per_credential: u32,
    per_ip: u32,
    window: Duration,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<u64, Window>>>,
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
    /// A limit of 0 turns that kind of limit off.
    pub fn new(per_credential: u32, per_ip: u32, window: Duration) -> Self {
        Self {
            per_credential,
            per_ip,
            window,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Counts one request for `credential` (when present) or else `ip`.
    pub fn check(&self, credential: Option<&str>, ip: Option<&str>) -> Option<Quota> {
        let (kind, subject, limit) = match (credential, ip) {
            (Some(c), _) if self.per_credential > 0 => ("c", c, self.per_credential),
            (None, Some(ip)) if self.per_ip > 0 => ("i", ip, self.per_ip),
            _ => return None,
        };
        let key = self.hasher.hash_one((kind, subject));
        let shard = &self.shards[(key as usize) % SHARDS];
        let now = Instant::now();
        let mut map = shard.lock().ok()?;
        if map.len() > SHARD_SOFT_CAP {
            let window = self.window;
            map.retain(|_, w| now.duration_since(w.started) < window);
        }
        let w = map.entry(key).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(w.started) >= self.window {
            *w = Window {
                started: now,
                count: 0,
            };
        }
        let allowed = w.count < limit;
        if allowed {
            w.count += 1;
        }
        Some(Quota {
            limit,
            remaining: limit - w.count,
            reset: self.window.saturating_sub(now.duration_since(w.started)),
            allowed,
        })
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let quota = req
        .app_data::<web::Data<RateLimiter>>()
        .and_then(|limiter| {
            let credential = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            // The IP counts only for requests without credentials.
            let ip = credential
                .is_none()
                .then(|| req.peer_addr().map(|a| a.ip().to_string()))
                .flatten();
            limiter.check(credential, ip.as_deref())
        });
    let Some(quota) = quota else {
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

    #[test]
    fn limits_per_key_and_window() {
        let limiter = RateLimiter::new(3, 2, Duration::from_millis(200));
        for remaining in [2, 1, 0] {
            let q = limiter.check(Some("Bearer a"), Some("1.2.3.4")).unwrap();
            assert!(q.allowed);
            assert_eq!(q.remaining, remaining);
        }
        assert!(!limiter.check(Some("Bearer a"), None).unwrap().allowed);
        assert!(
            limiter.check(Some("Bearer b"), None).unwrap().allowed,
            "another credential has its own"
        );
        assert!(
            limiter.check(None, Some("1.2.3.4")).unwrap().allowed,
            "anonymous callers count per IP"
        );
        std::thread::sleep(Duration::from_millis(220));
        assert!(
            limiter.check(Some("Bearer a"), None).unwrap().allowed,
            "a new window"
        );
        assert!(
            RateLimiter::new(0, 0, Duration::from_secs(1))
                .check(Some("x"), Some("y"))
                .is_none()
        );
    }
}
