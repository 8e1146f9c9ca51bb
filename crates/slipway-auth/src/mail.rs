//! Outgoing mail through an outbox: requests only enqueue (one insert); a background loop
//! delivers over SMTP and retries with backoff, so slow or absent mail servers neither
//! fail requests nor lose messages.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use slipway_db::Db;

use crate::AuthError;

#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `smtp://host:port` (plain, for local relays and test sinks), `smtp://...?tls=required`
    /// (STARTTLS) or `smtps://...`, with optional `user:password@`. None: mail stays queued.
    pub smtp_url: Option<String>,
    pub from: String,
}

pub async fn enqueue(db: &Db, recipient: &str, subject: &str, body: &str) -> Result<(), AuthError> {
    let id = uuid::Uuid::new_v4().to_string();
    Ok(db.enqueue_mail(&id, recipient, subject, body).await?)
}

/// Delivers due messages once; returns how many were sent.
pub async fn deliver_due(db: &Db, settings: &MailSettings) -> Result<usize, AuthError> {
    let Some(url) = &settings.smtp_url else { return Ok(0) };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| AuthError::Invalid(format!("SMTP URL: {e}")))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let from: Mailbox = settings.from.parse().map_err(|e| AuthError::Invalid(format!("mail from address: {e}")))?;
    let mut sent = 0;
    for message in db.due_mail(50).await? {
        let outcome = async {
            let to: Mailbox = message.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
            let email = Message::builder()
                .from(from.clone())
                .to(to)
                .subject(&message.subject)
                .body(message.body.clone())
                .map_err(|e| e.to_string())?;
            transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
        }
        .await;
        // Exponential backoff up to an hour between attempts.
        let backoff = 1000 * 2i64.pow(message.attempts.min(12) as u32).min(3600);
        let retry_at = slipway_db::now_ms() + backoff;
        match &outcome {
            Ok(()) => sent += 1,
            Err(e) => tracing::warn!(error = %e, outbox = %message.id, "mail delivery failed; will retry"),
        }
        db.mail_attempted(&message.id, outcome.err().as_deref(), retry_at).await?;
    }
    Ok(sent)
}
