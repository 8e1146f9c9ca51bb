//! Mail leaves here: the SMTP transport that slipway-auth's outbox delivers through
//! (`slipway_auth::MailTransport`), configured by `[mail]`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use slipway_auth::MailTransport;

/// How long one message may take to send before it counts as failed (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    /// `url` is `smtp://host:port` (plain, for local relays and test sinks),
    /// `smtp://...?tls=required` (STARTTLS) or `smtps://...`, with optional
    /// `user:password@`; `from` is the sender, e.g. `Slipway <slipway@example.com>`.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).context("mail.smtp_url")?.timeout(Some(SMTP_TIMEOUT)).build();
        let from = from.parse().context("mail.from")?;
        Ok(Smtp { transport, from })
    }
}

impl MailTransport for Smtp {
    fn send<'a>(
        &'a self,
        recipient: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let to: Mailbox = recipient.parse().map_err(|e| format!("recipient: {e}"))?;
            let email =
                Message::builder().from(self.from.clone()).to(to).subject(subject).body(body.to_owned()).map_err(|e| e.to_string())?;
            self.transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Smtp;

    #[test]
    fn bad_settings_are_refused_before_any_mail_is_sent() {
        assert!(Smtp::new("smtp://127.0.0.1:2525", "Slipway <slipway@example.com>").is_ok());
        assert!(Smtp::new("ftp://127.0.0.1", "Slipway <slipway@example.com>").is_err());
        assert!(Smtp::new("smtp://127.0.0.1:2525", "not an address").is_err());
    }
}
