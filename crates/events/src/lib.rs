//! Domain events: how a domain tells the rest of Keel that something happened
//! (`export.completed`, `member.invited`, ...).
//!
//! A domain depends on this crate only, never on the crate that acts on its events: it
//! holds an `Arc<dyn Publisher>` that the binary wires to notifications. Publishing
//! writes on the caller's connection — inside its transaction — so an event exists if
//! and only if the change it describes commits. What happens next (in-app
//! notifications, emails, webhooks) runs later, in jobs, never in the request.
//!
//! The audit trail is the same kind of contract: [`AuditTrail`] records who did what,
//! on the caller's connection, wherever the trail is kept.

use futures::future::BoxFuture;
use keel_persistence::{AsyncPgConnection, DbResult};
use keel_queue::Enqueued;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Something that happened in one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `"domain.past_tense"`, e.g. `"export.completed"`: what webhooks subscribe to and
    /// what preferences are set for. Stable: receivers match on it.
    pub event_type: String,
    /// The organization (tenant) it happened in; it is never shown to another one.
    pub org_id: Uuid,
    /// Which people are told (in-app and by email); webhooks get every event their
    /// endpoint subscribes to, whoever the audience is.
    pub audience: Audience,
    /// One line for people: the in-app title and the email subject.
    pub title: String,
    /// A sentence or two for people.
    pub body: String,
    /// Where in the product to look, if anywhere.
    pub link: Option<String>,
    /// The machine-readable payload, sent as-is to webhooks (`data`). No secrets.
    pub data: serde_json::Value,
}

/// Who among the organization's members is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "user_ids", rename_all = "snake_case")]
pub enum Audience {
    /// These users, as far as they are members of the organization.
    Users(Vec<Uuid>),
    /// Owners and admins.
    Admins,
    /// Every member.
    Members,
    /// No person: for events that only machines (webhooks) care about.
    Nobody,
}

/// Where domains publish events. Implemented by notifications; wired by the binary.
pub trait Publisher: Send + Sync + std::fmt::Debug + 'static {
    /// Records `event` on `conn` (call it inside the transaction of the change) and
    /// queues its fan-out. Ring the returned doorbell after the commit
    /// (`Queue::ring`); if nobody does, the reconciler starts the job a little later.
    fn publish<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: Event,
    ) -> BoxFuture<'a, DbResult<Enqueued>>;
}

/// Who did something worth an audit entry: a person (session) or an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    User(Uuid),
    ApiKey(Uuid),
}

/// One entry of an organization's audit trail (`GET /orgs/{org_id}/audit-events`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub org_id: Uuid,
    pub actor: Actor,
    /// `"domain.verb"`, e.g. `"export.requested"`: stable, filtered on by auditors.
    pub action: &'static str,
    /// The object acted on (the export, the upload).
    pub target_id: Option<Uuid>,
    /// What else an auditor needs to read the entry. No secrets.
    pub details: serde_json::Value,
}

/// Where domains write audit entries. Implemented over accounts' audit trail; wired by
/// the binary. Like [`Publisher::publish`], it writes on the caller's connection, so the
/// entry commits with the change it records.
pub trait AuditTrail: Send + Sync + std::fmt::Debug + 'static {
    fn record<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        record: AuditRecord,
    ) -> BoxFuture<'a, DbResult<()>>;
}
