//! The rendered email and its MIME form.

use crate::MailError;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use std::fmt;
use uuid::Uuid;

/// One rendered email, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// `a@example.com` or `Ada Lovelace <a@example.com>`.
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Sent as `List-Unsubscribe` with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
    /// (RFC 8058), so mail clients offer an unsubscribe button that POSTs it.
    pub list_unsubscribe: Option<String>,
}

/// Shows the recipient's domain only: `Debug` output ends up in logs, and an address is
/// personal data.
impl fmt::Debug for EmailMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailMessage")
            .field("to", &format_args!("…@{}", recipient_domain(&self.to)))
            .field("subject", &self.subject)
            .field("html", &format_args!("{} bytes", self.html.len()))
            .field("text", &format_args!("{} bytes", self.text.len()))
            .finish()
    }
}

/// Parses a recipient, without echoing it into the error.
pub(crate) fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse::<Mailbox>()
        .map_err(|e| MailError::Address(e.to_string()))
}

/// The part of an address that may be logged: its domain (`"?"` when there is none).
pub(crate) fn recipient_domain(address: &str) -> &str {
    let address = address.trim().trim_end_matches('>');
    match address.rsplit_once('@') {
        Some((_, domain)) if !domain.is_empty() => domain,
        _ => "?",
    }
}

/// The MIME message: `multipart/alternative` with the text part first (clients show the
/// last part they can render, so HTML wins where it can), and a Message-ID derived from
/// `id` so a message sent twice (a job that ran again) is recognisably the same one.
pub(crate) fn build(
    from: &Mailbox,
    message_domain: &str,
    id: Uuid,
    msg: &EmailMessage,
) -> Result<Message, MailError> {
    let mut builder = Message::builder()
        .from(from.clone())
        .to(parse_mailbox(&msg.to)?)
        .subject(msg.subject.as_str())
        .message_id(Some(format!("<{id}@{message_domain}>")));
    if let Some(url) = &msg.list_unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            msg.html.clone(),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_domain_of_a_recipient_is_shown() {
        assert_eq!(recipient_domain("ada@example.com"), "example.com");
        assert_eq!(recipient_domain("Ada <ada@example.com>"), "example.com");
        assert_eq!(recipient_domain("nobody"), "?");
        let msg = EmailMessage {
            to: "Ada <ada@example.com>".into(),
            subject: "Hi".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
            list_unsubscribe: None,
        };
        let shown = format!("{msg:?}");
        assert!(
            shown.contains("example.com") && !shown.contains("ada@"),
            "{shown}"
        );
    }
}
