//! The authenticator behind `keel_http::Authenticated`: bearer token → caller.
//!
//! Every authenticated request goes through here, so the steady state must not touch the
//! database: sessions are looked up through the two-tier cache (unknown tokens are
//! cached as `None` too). A revocation invalidates the entry in every process; an L1
//! entry can outlive it by at most `cache.l1_ttl_ms`. Activity (`last_seen_at`, for the
//! idle timeout) is written at most once a minute per session and process, and the new
//! time replaces the cached entry (`Namespace::replace`): a write that grants nothing
//! needs no invalidation across processes, nor a reload of the row it just wrote.

use crate::error::AccountsError;
use crate::repo::{self, KeyAuth, SessionAuth};
use crate::service::Accounts;
use crate::token::{self, API_KEY_PREFIX, SESSION_PREFIX};
use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_http::{ApiError, Authenticator, Caller, KeyCaller, UserCaller};

/// Activity is recorded when the cached `last_seen_at` is older than this.
const TOUCH_EVERY_SECS: i64 = 60;
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(TOUCH_EVERY_SECS);
/// The same interval, for the claims cache's time to live.
pub(crate) const TOUCH_EVERY_STD: std::time::Duration =
    std::time::Duration::from_secs(TOUCH_EVERY_SECS as u64);

impl Authenticator for Accounts {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, ApiError>> {
        async move {
            let caller = if token.starts_with(SESSION_PREFIX) {
                self.session_caller(token).await
            } else if token.starts_with(API_KEY_PREFIX) {
                self.key_caller(token).await
            } else {
                Err(AccountsError::InvalidCredentials)
            };
            caller.map_err(|e| match e {
                AccountsError::InvalidCredentials => {
                    ApiError::unauthorized("invalid or expired credentials")
                }
                other => other.into(),
            })
        }
        .boxed()
    }
}

impl Accounts {
    /// True for one caller per id and minute in this process: the requests that all see
    /// the same stale cache entry write the activity once, not once each.
    async fn claim_touch(&self, id: uuid::Uuid) -> bool {
        self.touches.entry(id).or_insert(()).await.is_fresh()
    }

    async fn session_caller(&self, token: &str) -> Result<Caller, AccountsError> {
        let hash = token::hash(token);
        let key = hex::encode(&hash);
        let pool = self.pool.clone();
        let lookup = hash.clone();
        let auth: Option<SessionAuth> = self
            .sessions
            .get_or_load(&key, || async move {
                let mut conn = pool.get().await?;
                repo::session_auth(&mut conn, &lookup).await
            })
            .await?;
        let Some(auth) = auth.filter(|a| token::constant_time_eq(&a.token_hash, &hash)) else {
            return Err(AccountsError::InvalidCredentials);
        };
        let now = Utc::now();
        let idle = chrono::Duration::from_std(self.settings.accounts.session_idle())
            .unwrap_or(chrono::Duration::minutes(30));
        if auth.expires_at <= now || auth.last_seen_at + idle <= now {
            return Err(AccountsError::InvalidCredentials);
        }
        if now - auth.last_seen_at > TOUCH_EVERY && self.claim_touch(auth.session_id).await {
            let touched = {
                let mut conn = self.pool.get().await?;
                repo::touch_session(&mut conn, auth.session_id, now - idle).await?
            };
            let Some(last_seen_at) = touched else {
                // Revoked or idle in the database: the cached entry is wrong everywhere.
                self.sessions.invalidate(&key).await;
                return Err(AccountsError::InvalidCredentials);
            };
            let seen = SessionAuth {
                last_seen_at,
                ..auth.clone()
            };
            self.sessions.replace(&key, Some(seen)).await;
        }
        Ok(Caller::User(UserCaller {
            user_id: auth.user_id,
            session_id: auth.session_id,
            org_id: auth.org_id,
            role: auth.role,
        }))
    }

    async fn key_caller(&self, token: &str) -> Result<Caller, AccountsError> {
        let hash = token::hash(token);
        let key = hex::encode(&hash);
        let pool = self.pool.clone();
        let lookup = hash.clone();
        let auth: Option<KeyAuth> = self
            .keys
            .get_or_load(&key, || async move {
                let mut conn = pool.get().await?;
                repo::key_auth(&mut conn, &lookup).await
            })
            .await?;
        let Some(auth) = auth.filter(|a| token::constant_time_eq(&a.secret_hash, &hash)) else {
            return Err(AccountsError::InvalidCredentials);
        };
        let now = Utc::now();
        if auth.expires_at.is_some_and(|at| at <= now) {
            return Err(AccountsError::InvalidCredentials);
        }
        // "Last used" for the key list, written at most once a minute per key and process.
        if auth.last_used_at.is_none_or(|at| now - at > TOUCH_EVERY)
            && self.claim_touch(auth.key_id).await
        {
            let mut conn = self.pool.get().await?;
            repo::touch_api_key(&mut conn, auth.key_id).await?;
            drop(conn);
            let used = KeyAuth {
                last_used_at: Some(now),
                ..auth.clone()
            };
            self.keys.replace(&key, Some(used)).await;
        }
        Ok(Caller::ApiKey(KeyCaller {
            key_id: auth.key_id,
            org_id: auth.org_id,
            scopes: auth.scopes,
        }))
    }
}
