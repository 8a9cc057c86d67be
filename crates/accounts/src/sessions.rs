//! Sessions: logging in (throttled, constant-time for unknown addresses), opening a
//! session in a transaction, logging out everywhere at once.

use crate::error::AccountsError;
use crate::input::Email;
use crate::password_hash::Verified;
use crate::repo::{self, AuditEvent};
use crate::service::Accounts;
use crate::token::{self, SESSION_PREFIX};
use chrono::{DateTime, Utc};
use keel_http::Reply;
use keel_persistence::AsyncConnection as _;
use uuid::Uuid;

/// A new session's secret, shown once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Accounts {
    /// Checks email and password. Unknown email and wrong password take the same time
    /// (a dummy hash is verified) and give the same error; an unverified account gets
    /// `EmailNotVerified` only after a correct password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        organization_id: Option<Uuid>,
        ip: Option<&str>,
        reply: &Reply<SessionToken>,
    ) -> Result<SessionToken, AccountsError> {
        let email = Email::parse("email", email).map_err(|_| AccountsError::InvalidCredentials)?;
        // Counted before any hashing: a throttled attempt costs no argon2 work.
        let burst = match self.throttle.attempt(email.as_str(), ip).await {
            Ok(burst) => burst,
            Err(wait) => {
                return Err(AccountsError::Throttled {
                    retry_after_secs: wait.as_secs_f64().ceil() as u64,
                });
            }
        };
        let user = {
            let mut conn = self.pool.get().await?;
            repo::user_by_email(&mut conn, email.as_str()).await?
        };
        let verified = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        if burst && let Some(user) = &user {
            self.audit_failed_burst(user.id, ip).await;
        }
        let Some(user) = user.filter(|_| verified != Verified::No) else {
            metrics::counter!("keel_logins_total", "outcome" => "failed").increment(1);
            return Err(AccountsError::InvalidCredentials);
        };
        if user.email_verified_at.is_none() {
            return Err(AccountsError::EmailNotVerified);
        }
        let ip = ip.map(str::to_owned);
        let session = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                if let Verified::YesRehashed(new_hash) = verified {
                    repo::set_password_hash(conn, user.id, &new_hash).await?;
                }
                let org_id = match organization_id {
                    // An explicit choice must be one of the user's organizations.
                    Some(org) if repo::user_org_ids(conn, user.id).await?.contains(&org) => org,
                    Some(_) => {
                        return Err(AccountsError::invalid(
                            "organization_id",
                            "you are not a member of this organization",
                        ));
                    }
                    None => {
                        repo::primary_membership(conn, user.id)
                            .await?
                            .ok_or(AccountsError::InvalidCredentials)?
                            .0
                    }
                };
                let session = self.open_session(conn, user.id, org_id).await?;
                repo::audit(
                    conn,
                    AuditEvent {
                        org_id: Some(org_id),
                        actor_user_id: Some(user.id),
                        actor_api_key_id: None,
                        action: "login.succeeded",
                        target_id: Some(user.id),
                        ip: ip.as_deref(),
                        details: serde_json::json!({}),
                    },
                )
                .await?;
                reply.record(conn, &session).await?;
                Ok::<_, AccountsError>(session)
            })
            .await?;
        self.throttle.succeeded(email.as_str()).await;
        metrics::counter!("keel_logins_total", "outcome" => "succeeded").increment(1);
        Ok(session)
    }

    /// Records, in each of the user's organizations, that logins to the account started
    /// being throttled. Best effort: the login answer does not depend on it.
    async fn audit_failed_burst(&self, user_id: Uuid, ip: Option<&str>) {
        let result = async {
            let mut conn = self.pool.get().await?;
            conn.transaction(async |conn| {
                for org in repo::user_org_ids(conn, user_id).await? {
                    repo::audit(
                        conn,
                        AuditEvent {
                            org_id: Some(org),
                            actor_user_id: None,
                            actor_api_key_id: None,
                            action: "login.failed_burst",
                            target_id: Some(user_id),
                            ip,
                            details: serde_json::json!({}),
                        },
                    )
                    .await?;
                }
                Ok::<_, AccountsError>(())
            })
            .await
        };
        if let Err(e) = result.await {
            tracing::warn!(error = %e, "failed-login burst not audited");
        }
    }

    /// Password hashes this process has computed (what login throttling saves).
    pub fn hashes_computed(&self) -> u64 {
        self.hasher.computed()
    }

    pub(crate) async fn open_session(
        &self,
        conn: &mut keel_persistence::AsyncPgConnection,
        user_id: Uuid,
        org_id: Uuid,
    ) -> Result<SessionToken, AccountsError> {
        let secret = token::generate(SESSION_PREFIX);
        let lifetime = chrono::Duration::from_std(self.settings.accounts.session_absolute())
            .unwrap_or(chrono::Duration::hours(12));
        let expires_at = Utc::now() + lifetime;
        repo::insert_session(
            conn,
            Uuid::now_v7(),
            &secret.hash,
            user_id,
            org_id,
            expires_at,
        )
        .await?;
        Ok(SessionToken {
            token: secret.token,
            expires_at,
        })
    }

    /// Revokes one session at once, everywhere: the row, then every process's cache.
    pub async fn logout(&self, session_id: Uuid) -> Result<(), AccountsError> {
        let hash = {
            let mut conn = self.pool.get().await?;
            repo::revoke_session(&mut conn, session_id).await?
        };
        if let Some(hash) = hash {
            self.sessions.invalidate(&hex::encode(&hash)).await;
        }
        Ok(())
    }
}
