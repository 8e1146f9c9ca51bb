//! Outgoing mail through an outbox: requests only enqueue (one insert); a background task
//! delivers through a [`MailTransport`] and retries with backoff, so slow or absent mail
//! servers neither fail requests nor lose messages. How a message leaves (SMTP) is the
//! edge's business: the binary implements the transport.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use slipway_db::IdentityDb;

use crate::AuthError;

/// Sends one message to one recipient, from the sender the transport was set up with.
pub trait MailTransport: Send + Sync {
    /// The error says why the message did not go out, for the outbox's record and the log;
    /// the outbox tries again later.
    fn send<'a>(
        &'a self,
        recipient: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

pub async fn enqueue(db: &IdentityDb, recipient: &str, subject: &str, body: &str) -> Result<(), AuthError> {
    let id = uuid::Uuid::new_v4().to_string();
    Ok(db.enqueue_mail(&id, recipient, subject, body).await?)
}

/// How long a sender holds the messages it claimed: long enough to send a batch (each
/// message may take up to the transport's timeout), short enough that mail a dead replica claimed
/// goes out soon after.
const LEASE_MS: i64 = 10 * 60 * 1000;
/// Messages claimed at a time, and sent per round at most.
const BATCH: i64 = 10;
const PER_ROUND: usize = 50;

/// The base URL links in mail start with: the configured public URL, else the address the
/// server listens on (`https` when it speaks TLS). Never a request's Host or X-Forwarded-* headers, which the requester
/// controls: a reset link built from them would carry the victim's code to the attacker.
pub fn link_base(public_url: Option<&str>, listen: SocketAddr, tls: bool) -> String {
    match public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("{}://{listen}", if tls { "https" } else { "http" }),
    }
}

impl crate::AuthSettings {
    /// The base URL of links in mail: see [`link_base`].
    pub fn mail_link_base(&self) -> String {
        link_base(self.public_url.as_deref(), self.listen, self.listen_tls)
    }
}

/// Delivers due messages once; returns how many were sent. Each message is claimed first
/// (a lease in the outbox), so replicas delivering at the same time never send one twice.
pub async fn deliver_due(db: &IdentityDb, transport: &dyn MailTransport) -> Result<usize, AuthError> {
    let sender = uuid::Uuid::new_v4().to_string();
    let (mut sent, mut tried) = (0, 0);
    while tried < PER_ROUND {
        let claimed = db.claim_mail(&sender, db.clock().now_ms() + LEASE_MS, BATCH).await?;
        if claimed.is_empty() {
            break;
        }
        for message in claimed {
            tried += 1;
            let outcome = transport.send(&message.recipient, &message.subject, &message.body).await;
            // Exponential backoff up to an hour between attempts.
            let backoff = 1000 * 2i64.pow(message.attempts.min(12) as u32).min(3600);
            let retry_at = db.clock().now_ms() + backoff;
            match &outcome {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!(error = %e, outbox = %message.id, "mail delivery failed; will retry"),
            }
            if !db.mail_attempted(&message.id, &sender, outcome.err().as_deref(), retry_at).await? {
                tracing::warn!(outbox = %message.id, "mail lease ran out while sending; another sender may send it again");
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::link_base;

    /// Issue 14 item 3: links in mail came from the request's Host header. They come from
    /// configuration only: the public URL, else the listen address.
    #[test]
    fn links_start_at_the_public_url_else_the_listen_address() {
        let listen = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(link_base(Some("https://store.example.com/"), listen, false), "https://store.example.com");
        assert_eq!(link_base(None, listen, false), "http://127.0.0.1:5000");
        assert_eq!(link_base(None, listen, true), "https://127.0.0.1:5000");
        assert_eq!(link_base(None, "[::1]:8080".parse().unwrap(), false), "http://[::1]:8080");
    }
}
