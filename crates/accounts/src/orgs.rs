//! Organizations, members and roles, invitations, and the audit trail.
//!
//! Rules: only owners and admins manage members; only owners make or unmake owners; the
//! last owner can be neither demoted nor removed. A removed member's sessions in the
//! organization are revoked at once; a changed role is visible at once (cache entries of
//! the member's sessions are invalidated).

use crate::access;
use crate::error::AccountsError;
use crate::mailer::AccountEmail;
use crate::repo::{self, AuditEntry, AuditEvent, Member, NewToken, OrgInfo, TokenKind};
use crate::service::{Accounts, profile_key};
use crate::token::{self, ONE_TIME_PREFIX};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_events::{Audience, Event};
use keel_http::{Caller, Page, Paginated, Reply, Role};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbResult};
use uuid::Uuid;

/// The keyset every organization list is ordered by: creation time, then id.
pub(crate) type ListKey = (DateTime<Utc>, Uuid);

/// How long an invitation link works.
const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

impl Accounts {
    pub async fn organization(
        &self,
        caller: &Caller,
        org_id: Uuid,
    ) -> Result<OrgInfo, AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_read(caller)?;
        let mut conn = self.pool.get().await?;
        repo::org_info(&mut conn, org_id)
            .await?
            .ok_or(AccountsError::NotFound)
    }

    pub async fn rename_organization(
        &self,
        caller: &Caller,
        org_id: Uuid,
        name: &str,
    ) -> Result<OrgInfo, AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_manage(caller)?;
        let name = crate::input::name("name", name)?;
        let org = {
            let mut conn = self.pool.get().await?;
            repo::rename_org(&mut conn, org_id, &name).await?
        };
        self.orgs.invalidate(&org_id.to_string()).await;
        if let Some(user_id) = caller.user_id() {
            self.profiles
                .invalidate(&profile_key(user_id, org_id))
                .await;
        }
        Ok(org)
    }

    pub async fn members(
        &self,
        caller: &Caller,
        org_id: Uuid,
        page: Page<ListKey>,
    ) -> Result<Paginated<Member>, AccountsError> {
        self.org_page(
            caller,
            org_id,
            page,
            access::can_read,
            |c, org, limit, after| repo::list_members(c, org, limit, after).boxed(),
            |m: &Member| (m.joined_at, m.user_id),
        )
        .await
    }

    /// Changes a member's role.
    pub async fn change_role(
        &self,
        caller: &Caller,
        org_id: Uuid,
        user_id: Uuid,
        new_role: Role,
    ) -> Result<(), AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_manage(caller)?;
        let owner_caller = caller.is_owner();
        let hashes = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let (owners, current) = repo::lock_roles(conn, org_id, user_id).await?;
                let current = current.ok_or(AccountsError::NotFound)?;
                if (current == Role::Owner || new_role == Role::Owner) && !owner_caller {
                    return Err(AccountsError::Forbidden);
                }
                if current == Role::Owner && new_role != Role::Owner && owners <= 1 {
                    return Err(AccountsError::Conflict(
                        "the last owner cannot be demoted; make someone else owner first",
                    ));
                }
                repo::set_role(conn, org_id, user_id, new_role).await?;
                repo::audit(
                    conn,
                    AuditEvent::by(
                        caller,
                        org_id,
                        "member.role_changed",
                        Some(user_id),
                        serde_json::json!({ "from": current, "to": new_role }),
                    ),
                )
                .await?;
                Ok::<_, AccountsError>(repo::session_hashes_in_org(conn, org_id, user_id).await?)
            })
            .await?;
        self.forget_member(org_id, user_id, &hashes).await;
        Ok(())
    }

    /// Removes a member; their sessions in this organization stop working at once.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        org_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_manage(caller)?;
        let owner_caller = caller.is_owner();
        let hashes = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let (owners, current) = repo::lock_roles(conn, org_id, user_id).await?;
                let current = current.ok_or(AccountsError::NotFound)?;
                if current == Role::Owner && !owner_caller {
                    return Err(AccountsError::Forbidden);
                }
                if current == Role::Owner && owners <= 1 {
                    return Err(AccountsError::Conflict("the last owner cannot be removed"));
                }
                repo::delete_membership(conn, org_id, user_id).await?;
                let hashes = repo::revoke_sessions_in_org(conn, org_id, user_id).await?;
                repo::audit(
                    conn,
                    AuditEvent::by(
                        caller,
                        org_id,
                        "member.removed",
                        Some(user_id),
                        serde_json::json!({ "role": current }),
                    ),
                )
                .await?;
                Ok::<_, AccountsError>(hashes)
            })
            .await?;
        self.forget_member(org_id, user_id, &hashes).await;
        Ok(())
    }

    async fn forget_member(&self, org_id: Uuid, user_id: Uuid, session_hashes: &[Vec<u8>]) {
        for hash in session_hashes {
            self.sessions.invalidate(&hex::encode(hash)).await;
        }
        self.profiles
            .invalidate(&profile_key(user_id, org_id))
            .await;
    }

    /// Invites someone by email; the invitation link works for 7 days, once.
    pub async fn invite(
        &self,
        caller: &Caller,
        org_id: Uuid,
        email: &str,
        new_role: Role,
        reply: &Reply<()>,
    ) -> Result<(), AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_manage(caller)?;
        let email = crate::input::Email::parse("email", email)?;
        if new_role == Role::Owner && !caller.is_owner() {
            return Err(AccountsError::Forbidden);
        }
        let secret = token::generate(ONE_TIME_PREFIX);
        let link = format!(
            "{}/accept-invitation?token={}",
            self.settings.mail.public_url.trim_end_matches('/'),
            secret.token
        );
        let actor = (caller.user_id(), caller.api_key_id());
        let enqueued = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let org = repo::org_info(conn, org_id)
                    .await?
                    .ok_or(AccountsError::NotFound)?;
                let inviter_name = match actor.0 {
                    Some(user) => repo::user_by_id(conn, user).await?.name,
                    None => format!("{} (API)", org.name),
                };
                repo::insert_token(
                    conn,
                    NewToken {
                        id: Uuid::now_v7(),
                        kind: TokenKind::Invitation,
                        hash: &secret.hash,
                        user_id: None,
                        org_id: Some(org_id),
                        email: Some(email.as_str()),
                        role: Some(new_role),
                        invited_by: actor.0,
                        expires_at: Utc::now() + INVITATION_TTL,
                    },
                )
                .await?;
                repo::audit(
                    conn,
                    AuditEvent::by(
                        caller,
                        org_id,
                        "member.invited",
                        None,
                        serde_json::json!({ "email_domain": email.domain(), "role": new_role }),
                    ),
                )
                .await?;
                let event = Event {
                    event_type: "member.invited".to_owned(),
                    org_id,
                    audience: Audience::Admins,
                    title: format!("{inviter_name} invited {} to {}", email.as_str(), org.name),
                    body: format!(
                        "The invitation is for the {new_role} role and stays valid for {} days.",
                        INVITATION_TTL.num_days()
                    ),
                    link: None,
                    data: serde_json::json!({
                        "email": email.as_str(), "role": new_role, "invited_by_user_id": actor.0,
                        "invited_by_api_key_id": actor.1,
                    }),
                };
                let published = self.events.publish(conn, event).await?;
                let mail = AccountEmail::Invitation {
                    to: email.as_str().to_owned(),
                    inviter_name,
                    organization_name: org.name,
                    role: new_role.to_string(),
                    link,
                };
                let mail = self.mailer.enqueue(conn, mail).await?;
                reply.record(conn, &()).await?;
                Ok::<_, AccountsError>([mail, published])
            })
            .await?;
        self.queue.ring(enqueued).await;
        Ok(())
    }

    /// Accepts an invitation for the signed-in user, whose (verified) address must be the
    /// one invited. Returns the organization joined.
    pub async fn accept_invitation(
        &self,
        caller: &Caller,
        token_text: &str,
        reply: &Reply<OrgInfo>,
    ) -> Result<OrgInfo, AccountsError> {
        let user_id = caller.user_id().ok_or(AccountsError::Forbidden)?;
        let hash = token::hash(token_text.trim());
        let org = self
            .pool
            .get().await?.transaction(async |conn| {
                    let row = repo::take_token(conn, TokenKind::Invitation, &hash).await?.ok_or(AccountsError::InvalidToken)?;
                    let user = repo::user_by_id(conn, user_id).await?;
                    let (Some(org_id), Some(email), Some(new_role)) = (row.org_id, row.email, row.role) else {
                        return Err(AccountsError::InvalidToken);
                    };
                    if user.email != email || user.email_verified_at.is_none() {
                        // Same answer as a bad token: the link is not for this account.
                        return Err(AccountsError::InvalidToken);
                    }
                    repo::insert_membership(conn, org_id, user_id, new_role).await.map_err(|e| match e {
                        keel_persistence::DbError::Conflict { .. } => AccountsError::Conflict("already a member"),
                        other => other.into(),
                    })?;
                    repo::audit(conn, AuditEvent {
                        org_id: Some(org_id), actor_user_id: Some(user_id), actor_api_key_id: None,
                        action: "member.joined", target_id: Some(user_id), ip: None,
                        details: serde_json::json!({ "role": new_role, "invited_by": row.invited_by }),
                    })
                    .await?;
                    let org = repo::org_info(conn, org_id).await?.ok_or(AccountsError::NotFound)?;
                    reply.record(conn, &org).await?;
                    Ok(org)
                })
            .await?;
        Ok(org)
    }

    pub async fn audit_events(
        &self,
        caller: &Caller,
        org_id: Uuid,
        page: Page<ListKey>,
    ) -> Result<Paginated<AuditEntry>, AccountsError> {
        self.org_page(
            caller,
            org_id,
            page,
            access::can_manage,
            |c, org, limit, after| repo::list_audit(c, org, limit, after).boxed(),
            |e: &AuditEntry| (e.created_at, e.id),
        )
        .await
    }

    /// One page of an organization's list (members, API keys, audit trail): the tenancy
    /// check, the permission the list needs (`allowed`), then `list` on the keyset.
    pub(crate) async fn org_page<T, L>(
        &self,
        caller: &Caller,
        org_id: Uuid,
        page: Page<ListKey>,
        allowed: fn(&Caller) -> Result<(), AccountsError>,
        list: L,
        key_of: fn(&T) -> ListKey,
    ) -> Result<Paginated<T>, AccountsError>
    where
        L: for<'c> Fn(
            &'c AsyncPgConnection,
            Uuid,
            i64,
            Option<ListKey>,
        ) -> BoxFuture<'c, DbResult<Vec<T>>>,
    {
        let org_id = access::same_org(caller, org_id)?;
        allowed(caller)?;
        let (limit, after) = (page.fetch_limit(), page.after);
        let rows = self
            .pool
            .read(|conn| list(conn, org_id, limit, after))
            .await?;
        Ok(Paginated::from_rows(rows, &page, key_of))
    }
}
