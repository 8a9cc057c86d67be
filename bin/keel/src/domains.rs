//! The domain services, built once per process and wired to each other through the
//! traits each domain declares (accounts never depends on notifications: it asks for an
//! `AccountMailer`, implemented here with the notifications email channel).

use crate::platform::Platform;
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_accounts::{AccountEmail, AccountMailer, Accounts};
use keel_events::{Actor, Audience, AuditRecord};
use keel_exports::Exports;
use keel_http::Role;
use keel_notifications::{Directory, Mailer, Notifications, Recipient, Template};
use keel_persistence::{AsyncPgConnection, DbResult};
use keel_queue::Enqueued;
use keel_uploads::Uploads;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// The areas of the API-key scopes the mounted domains define (`<area>:read|write`).
pub const SCOPE_AREAS: [&str; 4] = [
    keel_accounts::SCOPE_AREA,
    keel_notifications::SCOPE_AREA,
    keel_uploads::SCOPE_AREA,
    keel_exports::SCOPE_AREA,
];

#[derive(Clone, Debug)]
pub struct Domains {
    pub accounts: Accounts,
    pub mailer: Mailer,
    pub notifications: Notifications,
    pub uploads: Uploads,
    pub exports: Exports,
}

impl Domains {
    pub fn new(platform: &Platform) -> anyhow::Result<Self> {
        let settings = &platform.settings;
        let mailer = Mailer::new(&settings.mail, platform.queue.clone())?;
        let notifications = Notifications::new(
            settings.clone(),
            platform.pool.clone(),
            &platform.cache,
            platform.queue.clone(),
            mailer.clone(),
            Arc::new(People),
        )?;
        let accounts = Accounts::new(
            settings.clone(),
            platform.pool.clone(),
            &platform.cache,
            platform.redis.clone(),
            platform.queue.clone(),
            Arc::new(AccountEmails(mailer.clone())),
            Arc::new(notifications.clone()),
        )?
        .with_scope_areas(&SCOPE_AREAS);
        let uploads = Uploads::new(
            settings.clone(),
            platform.pool.clone(),
            &platform.cache,
            platform.queue.clone(),
            platform.storage.clone(),
            Arc::new(notifications.clone()),
            keel_uploads::ai::AiProcessor::from_settings(&settings.ai)?,
        );
        let exports = Exports::new(
            settings.clone(),
            keel_exports::Services {
                pool: platform.pool.clone(),
                replica: platform.replica.clone(),
                queue: platform.queue.clone(),
                storage: platform.storage.clone(),
                publisher: Arc::new(notifications.clone()),
                audit: Arc::new(AuditTrail),
            },
            crate::sources::all(),
        );
        Ok(Self {
            accounts,
            mailer,
            notifications,
            uploads,
            exports,
        })
    }
}

/// Accounts' emails through the notifications email channel.
#[derive(Debug)]
struct AccountEmails(Mailer);

impl AccountMailer for AccountEmails {
    fn enqueue<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        email: AccountEmail,
    ) -> BoxFuture<'a, DbResult<Enqueued>> {
        let (to, template, vars) = match email {
            AccountEmail::VerifyEmail { to, name, link } => (
                to,
                Template::VerifyEmail,
                json!({ "name": name, "link": link }),
            ),
            AccountEmail::SignupAttempt {
                to,
                name,
                reset_link,
            } => (
                to,
                Template::SignupAttempt,
                json!({ "name": name, "reset_link": reset_link }),
            ),
            AccountEmail::PasswordReset { to, name, link } => (
                to,
                Template::PasswordReset,
                json!({ "name": name, "link": link }),
            ),
            AccountEmail::PasswordChanged { to, name } => {
                (to, Template::PasswordChanged, json!({ "name": name }))
            }
            AccountEmail::Invitation {
                to,
                inviter_name,
                organization_name,
                role,
                link,
            } => (
                to,
                Template::Invitation,
                json!({ "inviter_name": inviter_name, "organization_name": organization_name, "role": role, "link": link }),
            ),
        };
        async move { self.0.enqueue(conn, &to, template, vars).await }.boxed()
    }
}

/// Notifications' recipients, from accounts' memberships.
#[derive(Debug)]
struct People;

impl Directory for People {
    fn recipients<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        org_id: Uuid,
        audience: &'a Audience,
    ) -> BoxFuture<'a, DbResult<Vec<Recipient>>> {
        async move {
            let (roles, only): (&[Role], Option<&[Uuid]>) = match audience {
                Audience::Nobody => return Ok(Vec::new()),
                Audience::Users(ids) => (&[], Some(ids)),
                Audience::Admins => (&[Role::Owner, Role::Admin], None),
                Audience::Members => (&[], None),
            };
            let people = keel_accounts::repo::people(conn, org_id, roles, only).await?;
            Ok(people
                .into_iter()
                .map(|(user_id, email, name)| Recipient {
                    user_id,
                    email,
                    name,
                })
                .collect())
        }
        .boxed()
    }
}

/// Domains' audit entries, in accounts' audit trail (`GET /orgs/{org_id}/audit-events`).
#[derive(Debug)]
struct AuditTrail;

impl keel_events::AuditTrail for AuditTrail {
    fn record<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        record: AuditRecord,
    ) -> BoxFuture<'a, DbResult<()>> {
        let (actor_user_id, actor_api_key_id) = match record.actor {
            Actor::User(id) => (Some(id), None),
            Actor::ApiKey(id) => (None, Some(id)),
        };
        let event = keel_accounts::repo::AuditEvent {
            org_id: Some(record.org_id),
            actor_user_id,
            actor_api_key_id,
            action: record.action,
            target_id: record.target_id,
            ip: None,
            details: record.details,
        };
        keel_accounts::repo::audit(conn, event).boxed()
    }
}
