//! The authenticator behind `keel_http::Authenticated`: bearer token → caller.
//!
//! Every authenticated request goes through here, so the steady state must not touch the
//! database: sessions are looked up through the two-tier cache (unknown tokens are
//! cached as `None` too). A revocation invalidates the entry in every process; an L1
//! entry can outlive it by at most `cache.l1_ttl_ms`. Activity (`last_seen_at`, for the
//! idle timeout) is written at most once a minute per session and process.

use crate::error::AccountsError;
use crate::repo::{self, SessionAuth};
use crate::service::{Accounts, unwrap_shared};
use crate::token::{self, SESSION_PREFIX};
use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_http::{ApiError, Authenticator, Caller};

/// Activity is recorded when the cached `last_seen_at` is older than this.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

impl Authenticator for Accounts {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, ApiError>> {
        async move {
            if token.starts_with(SESSION_PREFIX) {
                return self.session_caller(token).await.map_err(ApiError::from);
            }
            Err(ApiError::unauthorized("invalid or expired credentials"))
        }
        .boxed()
    }
}

impl Accounts {
    async fn session_caller(&self, token: &str) -> Result<Caller, AccountsError> {
        let hash = token::hash(token);
        let key = token::hex(&hash);
        let pool = self.pool.clone();
        let lookup = hash.clone();
        let auth: Option<SessionAuth> = self
            .sessions
            .get_or_load(&key, || async move {
                let mut conn = pool.get().await?;
                repo::session_auth(&mut conn, &lookup).await
            })
            .await
            .map_err(unwrap_shared)?;
        let Some(auth) = auth.filter(|a| token::constant_time_eq(&a.token_hash, &hash)) else {
            return Err(AccountsError::InvalidCredentials);
        };
        let now = Utc::now();
        let idle = chrono::Duration::from_std(self.settings.accounts.session_idle())
            .unwrap_or(chrono::Duration::minutes(30));
        if auth.expires_at <= now || auth.last_seen_at + idle <= now {
            return Err(AccountsError::InvalidCredentials);
        }
        if now - auth.last_seen_at > TOUCH_EVERY {
            let touched = {
                let mut conn = self.pool.get().await?;
                repo::touch_session(&mut conn, auth.session_id, now - idle).await?
            };
            // Either way the cached entry is stale: reload it next time.
            self.sessions.invalidate(&key).await;
            if touched.is_none() {
                return Err(AccountsError::InvalidCredentials);
            }
        }
        Ok(Caller {
            user_id: Some(auth.user_id),
            api_key_id: None,
            session_id: Some(auth.session_id),
            org_id: Some(auth.org_id),
            role: Some(auth.role),
            scopes: Vec::new(),
        })
    }
}
