//! Notifications: for now, transactional email.
//!
//! Domains never send email from a request. They call [`Mailer::enqueue`] inside their
//! transaction; it renders the message once (so a wrong call fails where it is made)
//! and writes a durable `notifications.send_email` job. A worker renders it again and
//! sends it through the configured transport — `.eml` files in `mail.dir` by default,
//! an SMTP relay when `mail.transport = "smtp"` — retrying while the relay is down.
//!
//! Templates (HTML + text + subject, `templates/`) are compiled into the binary and
//! rendered with strict undefined: a missing variable is an error, never a blank.
//!
//! Other domains reach this crate through a trait they declare (e.g. an `AccountMailer`
//! in accounts), implemented by the binary over [`Mailer`]; the binary also calls
//! [`jobs::register`] on the worker registry.
//!
//! Metrics: `keel_emails_sent_total{template, transport}`,
//! `keel_email_failures_total{template, kind = "transient" | "permanent"}`. Logs and
//! spans name the recipient's domain only (`email.to_domain`): addresses are personal
//! data.

mod error;
pub mod jobs;
mod mailer;
mod message;
mod template;
mod transport;

pub use error::MailError;
pub use mailer::Mailer;
pub use message::EmailMessage;
pub use template::Template;
