//! The producer-facing handle: render, enqueue in the caller's transaction, send.

use crate::MailError;
use crate::jobs::SendEmail;
use crate::message::{self, EmailMessage};
use crate::template::{Template, Templates};
use crate::transport::Transport;
use keel_config::MailSettings;
use keel_persistence::{AsyncPgConnection, DbResult};
use keel_queue::{EnqueueOptions, Enqueued, Queue};
use lettre::message::Mailbox;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Sends Keel's emails. Cheap to clone; build one at start-up and hand clones to the
/// services (through the trait each domain declares) and to [`crate::jobs::register`].
///
/// Producers never send from a request: [`Mailer::enqueue`] writes a
/// `notifications.send_email` job in their transaction, and a worker renders and sends
/// it, retrying while the relay is unavailable.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    templates: Templates,
    from: Mailbox,
    /// Right-hand side of Message-IDs: the domain of `mail.from`.
    message_domain: String,
    transport: Transport,
    queue: Queue,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.inner.from.to_string())
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Parses every template and sets up the transport of `settings.transport`. Fails on
    /// a `from` that is no address or a TLS set-up error, so a bad configuration stops
    /// start-up instead of killing every email job.
    pub fn new(settings: &MailSettings, queue: Queue) -> Result<Self, MailError> {
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| MailError::Config(format!("mail.from is not an address: {e}")))?;
        let message_domain = from.email.domain().to_owned();
        let app_name = from
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| message_domain.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                templates: Templates::new(&app_name, &settings.public_url)?,
                from,
                message_domain,
                transport: Transport::new(settings)?,
                queue,
            }),
        })
    }

    /// Renders `template` for `to`. Fails on an invalid address, on variables that are
    /// not exactly [`Template::vars`] (missing, null or unexpected), or on a render error.
    pub fn render(
        &self,
        to: &str,
        template: Template,
        vars: &serde_json::Value,
    ) -> Result<EmailMessage, MailError> {
        message::parse_mailbox(to)?;
        let rendered = self.inner.templates.render(template, vars)?;
        Ok(EmailMessage {
            to: to.to_owned(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            list_unsubscribe: vars
                .get("unsubscribe_link")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
    }

    /// Checks that `to` is a recipient the transport accepts (`a@b.c` or `Name <a@b.c>`),
    /// for callers that take it from user input and want a 422 rather than the 500 that
    /// [`Mailer::enqueue`] reports for it.
    pub fn check_address(&self, to: &str) -> Result<(), MailError> {
        message::parse_mailbox(to).map(drop)
    }

    /// Enqueues the email as a `notifications.send_email` job on `conn`, inside the
    /// caller's transaction: it is sent if and only if the caller's change commits.
    /// Ring it after commit with `queue.ring([enqueued])`.
    ///
    /// The email is rendered once here, so a wrong template call fails in the request
    /// that made it — where the bug is — rather than in a job minutes later. Such a
    /// failure (invalid address, wrong variables) is returned as an unexpected
    /// [`keel_persistence::DbError::Internal`] (500), because it is a bug in the calling code; it
    /// writes no job.
    pub async fn enqueue(
        &self,
        conn: &mut AsyncPgConnection,
        to: &str,
        template: Template,
        vars: serde_json::Value,
    ) -> DbResult<Enqueued> {
        let job = self.prepare(to, template, vars, None)?;
        self.inner.queue.enqueue(conn, &job).await
    }

    /// [`Mailer::enqueue`] at most once per `key` (e.g. `"verify:{token_id}"`): a second
    /// call with the same key enqueues nothing and returns `None`, so a retried request
    /// does not send the email twice.
    pub async fn enqueue_once(
        &self,
        conn: &mut AsyncPgConnection,
        key: &str,
        to: &str,
        template: Template,
        vars: serde_json::Value,
    ) -> DbResult<Option<Enqueued>> {
        let job = self.prepare(to, template, vars, Some(key.to_owned()))?;
        let options = EnqueueOptions {
            unique_key: Some(format!("email:{key}")),
            ..EnqueueOptions::default()
        };
        self.inner.queue.enqueue_with(conn, &job, options).await
    }

    fn prepare(
        &self,
        to: &str,
        template: Template,
        vars: serde_json::Value,
        idempotency_key: Option<String>,
    ) -> DbResult<SendEmail> {
        self.render(to, template, &vars)
            .map_err(MailError::into_db_error)?;
        tracing::debug!(
            email.template = template.as_str(),
            email.to_domain = message::recipient_domain(to),
            "email enqueued"
        );
        Ok(SendEmail {
            to: to.to_owned(),
            template: template.as_str().to_owned(),
            vars,
            idempotency_key,
        })
    }

    /// Sends `msg` now through the configured transport. `id` is the message's identity:
    /// it becomes the Message-ID (`<{id}@{domain of mail.from}>`) and, for the file
    /// transport, the file name `{mail.dir}/{id}.eml`, so sending again with the same id
    /// replaces the file, and receivers can recognise the duplicate.
    ///
    /// Used by the `notifications.send_email` job (with the job id); request handlers
    /// should enqueue instead.
    pub async fn send_now(&self, id: Uuid, msg: &EmailMessage) -> Result<(), MailError> {
        let message = message::build(&self.inner.from, &self.inner.message_domain, id, msg)?;
        self.inner.transport.send(id, message).await
    }

    /// `"file"` or `"smtp"`.
    pub fn transport_name(&self) -> &'static str {
        self.inner.transport.name()
    }
}
