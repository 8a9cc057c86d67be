//! Where messages go: `.eml` files (development, tests) or an SMTP relay.

use crate::MailError;
use keel_config::{MailSettings, MailTransport, SmtpTls};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub(crate) enum Transport {
    /// `{dir}/{id}.eml`, written through a temporary file and a rename so a reader never
    /// sees half a message, and a second send with the same id replaces the first.
    File { dir: PathBuf },
    /// A new connection per message: transactional email is low volume, and a fresh
    /// connection never trips over one the relay closed while idle.
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            Transport::Smtp(_) => f.write_str("Smtp"),
        }
    }
}

impl Transport {
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        match settings.transport {
            MailTransport::File => Ok(Transport::File {
                dir: PathBuf::from(&settings.dir),
            }),
            MailTransport::Smtp => smtp(settings).map(|t| Transport::Smtp(Box::new(t))),
        }
    }

    /// The `transport` label of `keel_emails_sent_total`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::File { .. } => "file",
            Transport::Smtp(_) => "smtp",
        }
    }

    pub async fn send(&self, id: Uuid, message: Message) -> Result<(), MailError> {
        match self {
            Transport::File { dir } => write_file(dir, id, &message.formatted()).await,
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(classify),
        }
    }
}

fn smtp(settings: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    type Smtp = AsyncSmtpTransport<Tokio1Executor>;
    let host = settings.smtp_host.as_str();
    let tls_setup = |e: lettre::transport::smtp::Error| MailError::Config(format!("TLS: {e}"));
    let builder = match settings.smtp_tls {
        SmtpTls::None => Smtp::builder_dangerous(host),
        SmtpTls::Starttls => Smtp::starttls_relay(host).map_err(tls_setup)?,
        SmtpTls::Tls => Smtp::relay(host).map_err(tls_setup)?,
    };
    let mut builder = builder
        .port(settings.smtp_port)
        .timeout(Some(settings.smtp_timeout()));
    if !settings.smtp_username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.smtp_username.clone(),
            settings.smtp_password.expose().clone(),
        ));
    }
    Ok(builder.build())
}

async fn write_file(dir: &Path, id: Uuid, bytes: &[u8]) -> Result<(), MailError> {
    let io = |what: &str, e: std::io::Error| {
        MailError::Transient(format!("{what} in {}: {e}", dir.display()))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io("cannot create the mail folder", e))?;
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| io("cannot write a message", e))?;
    tokio::fs::rename(&tmp, dir.join(format!("{id}.eml")))
        .await
        .map_err(|e| io("cannot rename a message", e))
}

/// A 5xx reply refuses this message for good (no such mailbox, policy): permanent.
/// Except the authentication replies (530, 534, 535, 538): they mean our credentials or
/// TLS settings are wrong, which an operator fixes — the message itself is fine, so it
/// keeps retrying meanwhile. Everything else (connection, timeout, TLS handshake, 4xx,
/// an unparseable reply) may work next time.
fn classify(err: lettre::transport::smtp::Error) -> MailError {
    let code = err.status().map(|c| c.to_string());
    let ours = matches!(code.as_deref(), Some("530" | "534" | "535" | "538"));
    if err.is_permanent() && !ours {
        MailError::Rejected(err.to_string())
    } else {
        MailError::Transient(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::Secret;

    fn settings(transport: MailTransport, tls: SmtpTls) -> MailSettings {
        MailSettings {
            transport,
            dir: ".local/mail".into(),
            from: "Keel <no-reply@keel.localhost>".into(),
            public_url: "http://127.0.0.1:8080".into(),
            smtp_host: "smtp.example.com".into(),
            smtp_port: 587,
            smtp_username: "keel".into(),
            smtp_password: Secret::new("hunter2".into()),
            smtp_tls: tls,
            smtp_timeout_ms: 1000,
        }
    }

    #[test]
    fn every_tls_mode_builds_with_the_ring_provider() {
        for tls in [SmtpTls::None, SmtpTls::Starttls, SmtpTls::Tls] {
            let t = Transport::new(&settings(MailTransport::Smtp, tls)).unwrap();
            assert_eq!(t.name(), "smtp");
        }
        let file = Transport::new(&settings(MailTransport::File, SmtpTls::None)).unwrap();
        assert_eq!(file.name(), "file");
    }
}
