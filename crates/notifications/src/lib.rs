//! Notifications: how every domain tells people and systems that something happened.
//!
//! - **Events.** Domains publish [`keel_events::Event`]s through the
//!   [`keel_events::Publisher`] trait, which [`Notifications`] implements: inside the
//!   publisher's transaction it records the event and a `notifications.fan_out` job.
//! - **Fan-out** ([`fanout`]): per recipient and the recipient's preferences, an in-app
//!   notification and/or an email; per subscribed endpoint of the organization, a webhook
//!   delivery. Each is keyed so a job that runs twice delivers nothing twice.
//! - **In-app** ([`inbox`]): list, unread count (cached), mark read.
//! - **Email**: rendered templates sent by the durable `notifications.send_email` job
//!   through the configured transport (`.eml` files or SMTP); notification emails carry a
//!   signed unsubscribe link that works without logging in.
//! - **Webhooks** ([`webhooks`]): signed JSON POSTs with retries, a circuit breaker per
//!   endpoint, disabling after repeated failures, an SSRF guard and a delivery log.
//!
//! Who belongs to an organization comes from the [`Directory`] trait, which the binary
//! implements over accounts: this crate reads no other domain's tables.
//!
//! Metrics: `keel_emails_sent_total{template, transport}`,
//! `keel_email_failures_total{template, kind}`, `keel_events_published_total`,
//! `keel_webhook_attempts_total{host, outcome}`, `keel_webhook_failures_total{host, kind}`,
//! `keel_webhook_latency_seconds{host}`, `keel_webhook_breaker_open{host}`,
//! `keel_webhook_endpoints_disabled_total`. Logs and spans name the recipient's domain
//! only (`email.to_domain`): addresses are personal data.

mod directory;
mod error;
pub mod exported;
pub mod fanout;
pub mod http;
pub mod inbox;
pub mod jobs;
mod mailer;
mod message;
pub mod preferences;
mod repo;
pub mod retention;
mod service;
mod template;
mod transport;
mod unsubscribe;
pub mod webhooks;

/// The area of the notifications domain's API-key scopes: `notifications:read`,
/// `notifications:write` (webhooks).
pub const SCOPE_AREA: &str = "notifications";

pub use directory::{Directory, Recipient};
pub use error::{MailError, NotificationsError};
pub use mailer::Mailer;
pub use message::EmailMessage;
pub use service::Notifications;
pub use template::Template;
