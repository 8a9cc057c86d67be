//! Password reset (by email link) and password change (signed in). Both end every other
//! session of the user at once and tell the owner by email.

use crate::error::AccountsError;
use crate::input::{self, Email};
use crate::mailer::AccountEmail;
use crate::password_hash::Verified;
use crate::repo::{self, AuditEvent, NewToken, TokenKind};
use crate::service::Accounts;
use crate::token::{self, ONE_TIME_PREFIX};
use chrono::Utc;
use keel_http::{Caller, Reply, UserCaller};
use keel_persistence::AsyncConnection as _;
use keel_queue::Enqueued;

/// How long a reset link works.
const RESET_TTL: chrono::Duration = chrono::Duration::hours(1);

impl Accounts {
    /// Sends a reset link if the address has an account; answers the same either way.
    pub async fn request_password_reset(
        &self,
        email: &str,
        reply: &Reply<()>,
    ) -> Result<(), AccountsError> {
        // A malformed address is refused (422), as at signup; a well-formed one gets the
        // same answer whether or not it has an account.
        let email = Email::parse("email", email)?;
        let secret = token::generate(ONE_TIME_PREFIX);
        let link = format!(
            "{}/reset-password?token={}",
            self.settings.mail.public_url.trim_end_matches('/'),
            secret.token
        );
        let enqueued: Option<Enqueued> = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let Some(user) = repo::user_by_email(conn, email.as_str()).await? else {
                    return Ok::<_, AccountsError>(None);
                };
                repo::insert_token(
                    conn,
                    NewToken::for_user(
                        TokenKind::PasswordReset,
                        &secret.hash,
                        user.id,
                        Utc::now() + RESET_TTL,
                    ),
                )
                .await?;
                let mail = AccountEmail::PasswordReset {
                    to: user.email,
                    name: user.name,
                    link,
                };
                let mail = self.mailer.enqueue(conn, mail).await?;
                reply.record(conn, &()).await?;
                Ok(Some(mail))
            })
            .await?;
        if let Some(enqueued) = enqueued {
            self.queue.ring([enqueued]).await;
        }
        tracing::info!(email.domain = email.domain(), "password reset requested");
        Ok(())
    }

    /// Sets a new password with a reset token; every session of the user ends.
    pub async fn confirm_password_reset(
        &self,
        token_text: &str,
        new_password: &str,
        reply: &Reply<()>,
    ) -> Result<(), AccountsError> {
        let password = input::new_password("new_password", new_password)?;
        let hash = self.hasher.hash(&password).await?;
        let token_hash = token::hash(token_text.trim());
        let (enqueued, revoked) = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let row = repo::take_token(conn, TokenKind::PasswordReset, &token_hash)
                    .await?
                    .ok_or(AccountsError::InvalidToken)?;
                let user_id = row.user_id.ok_or(AccountsError::InvalidToken)?;
                let user = repo::user_by_id(conn, user_id).await?;
                // Proving control of the address also verifies it.
                repo::mark_email_verified(conn, user_id).await?;
                self.store_password(conn, user, &hash, None, "password.reset", reply)
                    .await
            })
            .await?;
        self.after_password_change(enqueued, &revoked).await;
        Ok(())
    }

    /// Changes the signed-in user's password; their other sessions end, this one stays.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &str,
        new_password: &str,
        reply: &Reply<()>,
    ) -> Result<(), AccountsError> {
        let Some(&UserCaller {
            user_id,
            session_id,
            ..
        }) = caller.user()
        else {
            return Err(AccountsError::Forbidden);
        };
        let password = input::new_password("new_password", new_password)?;
        let user = {
            let mut conn = self.pool.get().await?;
            repo::user_by_id(&mut conn, user_id).await?
        };
        if self
            .hasher
            .verify(current, Some(&user.password_hash))
            .await?
            == Verified::No
        {
            return Err(AccountsError::invalid(
                "current_password",
                "is not your current password",
            ));
        }
        let hash = self.hasher.hash(&password).await?;
        let (enqueued, revoked) = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                self.store_password(
                    conn,
                    user,
                    &hash,
                    Some(session_id),
                    "password.changed",
                    reply,
                )
                .await
            })
            .await?;
        self.after_password_change(enqueued, &revoked).await;
        Ok(())
    }

    /// The part of a reset and a change that is the same: store the hash, end the user's
    /// sessions (but `keep`), record the change in the trail of each of their
    /// organizations, enqueue the security notice, and record the request's answer.
    /// Returns the email job and the revoked sessions' token hashes.
    async fn store_password(
        &self,
        conn: &mut keel_persistence::AsyncPgConnection,
        user: repo::UserRow,
        hash: &str,
        keep: Option<uuid::Uuid>,
        action: &'static str,
        reply: &Reply<()>,
    ) -> Result<(Enqueued, Vec<Vec<u8>>), AccountsError> {
        repo::set_password_hash(conn, user.id, hash).await?;
        let revoked = repo::revoke_user_sessions(conn, user.id, keep).await?;
        for org in repo::user_org_ids(conn, user.id).await? {
            repo::audit(
                conn,
                AuditEvent {
                    org_id: Some(org),
                    actor_user_id: Some(user.id),
                    actor_api_key_id: None,
                    action,
                    target_id: Some(user.id),
                    ip: None,
                    details: serde_json::json!({}),
                },
            )
            .await?;
        }
        let mail = AccountEmail::PasswordChanged {
            to: user.email,
            name: user.name,
        };
        let enqueued = self.mailer.enqueue(conn, mail).await?;
        reply.record(conn, &()).await?;
        Ok((enqueued, revoked))
    }

    async fn after_password_change(&self, enqueued: Enqueued, revoked: &[Vec<u8>]) {
        self.queue.ring([enqueued]).await;
        for hash in revoked {
            self.sessions.invalidate(&hex::encode(hash)).await;
        }
    }
}
