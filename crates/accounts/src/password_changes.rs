//! Password reset (by email link) and password change (signed in). Both end every other
//! session of the user at once and tell the owner by email. The reset link itself is sent
//! by a job, so that a reset request cannot tell whether an address has an account.

use crate::error::AccountsError;
use crate::input::{self, Email};
use crate::jobs::SendPasswordReset;
use crate::mailer::AccountEmail;
use crate::password_hash::Verified;
use crate::repo::{self, AuditEvent, NewToken, TokenKind};
use crate::service::{Accounts, ONE_TIME_TOKEN_TTL};
use crate::token::{self, ONE_TIME_PREFIX};
use chrono::Utc;
use keel_http::{Caller, Reply, UserCaller};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{DbError, DbResult};
use keel_queue::Enqueued;
use uuid::Uuid;

impl Accounts {
    /// Asks for a reset link for `email`. A malformed address is refused (422), as at
    /// signup; for a well-formed one the answer is the same, after the same statements,
    /// whether or not it has an account: the request only enqueues [`SendPasswordReset`]
    /// and records its answer, and the job looks the account up
    /// ([`Accounts::send_password_reset`]). Looking it up here made the answer slower for
    /// a known address (a token and an email written) than for an unknown one (one
    /// SELECT): a timing oracle telling who has an account.
    pub async fn request_password_reset(
        &self,
        email: &str,
        reply: &Reply<()>,
    ) -> Result<(), AccountsError> {
        let job = SendPasswordReset {
            email: Email::parse("email", email)?,
        };
        let enqueued = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let enqueued = self.queue.enqueue(conn, &job).await?;
                reply.record(conn, &()).await?;
                Ok::<_, AccountsError>(enqueued)
            })
            .await?;
        self.queue.ring([enqueued]).await;
        tracing::info!(
            email.domain = job.email.domain(),
            "password reset requested"
        );
        Ok(())
    }

    /// The work of job `job_id` ([`SendPasswordReset`]): if `email` has an account, a
    /// reset token and the reset email, in one transaction; otherwise nothing. The token
    /// row has the job's id, so a job run again after it committed sends nothing more.
    pub async fn send_password_reset(&self, job_id: Uuid, email: &Email) -> DbResult<()> {
        let secret = token::generate(ONE_TIME_PREFIX);
        let link = self.link("/reset-password", &secret.token);
        let sent: Option<Enqueued> = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let Some(user) = repo::user_by_email(conn, email.as_str()).await? else {
                    tracing::debug!(email.domain = email.domain(), "no account: no reset link");
                    return Ok::<_, DbError>(None);
                };
                let token = NewToken {
                    id: job_id,
                    ..NewToken::for_user(
                        TokenKind::PasswordReset,
                        &secret.hash,
                        user.id,
                        Utc::now() + ONE_TIME_TOKEN_TTL,
                    )
                };
                if !repo::insert_token(conn, token).await? {
                    tracing::debug!("reset link already sent by an earlier run");
                    return Ok(None);
                }
                let mail = AccountEmail::PasswordReset {
                    to: user.email,
                    name: user.name,
                    link,
                };
                self.mailer.enqueue(conn, mail).await.map(Some)
            })
            .await?;
        if let Some(sent) = sent {
            self.queue.ring([sent]).await;
            tracing::info!(email.domain = email.domain(), "password reset link sent");
        }
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
