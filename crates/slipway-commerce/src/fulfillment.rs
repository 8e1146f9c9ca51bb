//! The fulfillment API (bring your own license): an ISV sells its product elsewhere and
//! has Slipway grant it. Its systems create orders for customers (by account name, or by
//! email address: a new customer is invited, and the order attaches when an account
//! verifies that address), cancel them, and are told of every order's change by signed
//! webhooks delivered from a database outbox with retries.
//!
//! An order is an entitlement with the order's id for the tier's entitlement name, so the
//! registry needs nothing new: granting, expiring and revoking an order is granting,
//! expiring and revoking its entitlement, in the order's transaction (`CommerceDb`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slipway_auth::{AccountRecord, EmailVerifiedHook};
use slipway_db::{CommerceDb, DeliveryRecord, DueDelivery, NewOrder, OrderRecord, OrderWrite};
use slipway_policy::{Action, Actor, Resource, decide};
use slipway_types::ErrorKind;
use utoipa::ToSchema;

use crate::CommerceError;
use crate::signature;

/// The longest external id, product key and webhook URL accepted.
pub const MAX_EXTERNAL_ID: usize = 128;
pub const MAX_PRODUCT_KEY: usize = 1024;
pub const MAX_WEBHOOK_URL: usize = 2048;
/// Orders one list returns at most (and by default).
pub const MAX_PAGE: i64 = 100;
/// An order's expiry may be at most this far ahead: further is a mistake (seconds for
/// milliseconds), not a license.
const MAX_EXPIRY_MS: i64 = 10 * 366 * DAY_MS;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// Waits before each retry of a failed delivery; after the last, the delivery is failed.
pub const RETRY_DELAYS_MS: [i64; 5] = [60_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 12 * 3_600_000];
/// How long a sender holds the deliveries it claimed: beyond its requests' timeouts.
const LEASE_MS: i64 = 5 * 60_000;
/// Deliveries, expiries and late attachments handled per run; the rest wait for the next.
const BATCH: i64 = 100;
/// How long one delivery may take, connection included.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an endpoint's answer kept in the delivery log.
const MAX_LOGGED_ERROR: usize = 300;

/// What an order is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    #[default]
    Purchase,
    Trial,
    Beta,
}

impl OrderKind {
    fn as_str(self) -> &'static str {
        match self {
            OrderKind::Purchase => "purchase",
            OrderKind::Trial => "trial",
            OrderKind::Beta => "beta",
        }
    }
}

/// An order to create (`POST /api/fulfillment/v1/orders`). The customer is named by
/// exactly one of `account` and `email`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentOrderInput {
    /// `PUBLISHER/SLUG`: one of the caller's products.
    pub product: String,
    /// The tier's slug (a licensed tier).
    pub tier: String,
    /// The customer's Slipway account name.
    #[serde(default)]
    pub account: Option<String>,
    /// The customer's email address: invited to sign up when no account has verified it;
    /// the order attaches when one does.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub kind: OrderKind,
    /// When access ends (Unix milliseconds, in the future, at most ten years on); none:
    /// until cancelled.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// A license key shown to the customer (at most 1024 characters).
    #[serde(default)]
    pub product_key: String,
    /// The ISV's own id for the order (1 to 128 visible ASCII characters): creating an
    /// order of an external id again returns the first.
    pub external_id: String,
}

/// An order as the fulfillment API shows it and its webhooks carry it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FulfillmentOrder {
    pub id: String,
    /// `PUBLISHER/SLUG`.
    pub product: String,
    pub tier: String,
    pub kind: String,
    /// pending (waiting for the customer to sign up), active, canceled or expired.
    pub state: String,
    /// The account name the order was placed for, if by account.
    pub account: Option<String>,
    /// The address the order was placed for, if by email.
    pub email: Option<String>,
    pub external_id: String,
    pub product_key: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl From<&OrderRecord> for FulfillmentOrder {
    fn from(o: &OrderRecord) -> FulfillmentOrder {
        let mut parts = o.tier_id.splitn(3, '/');
        let (publisher, slug, tier) =
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        FulfillmentOrder {
            id: o.id.clone(),
            product: format!("{publisher}/{slug}"),
            tier: tier.to_owned(),
            kind: o.kind.clone(),
            state: o.state.clone(),
            account: o.email.is_none().then(|| o.customer.clone()),
            email: o.email.clone(),
            external_id: o.external_id.clone(),
            product_key: o.product_key.clone(),
            expires_at: o.expires_at,
            created_at: o.created_at,
            activated_at: o.activated_at,
            ended_at: o.ended_at,
        }
    }
}

/// What a webhook delivers: the event and the order after it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FulfillmentEvent {
    /// `order.created`, `order.activated`, `order.canceled` or `order.expired`.
    #[serde(rename = "type")]
    pub event: String,
    pub order: FulfillmentOrder,
}

/// A list of orders, newest first; `next` continues it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FulfillmentOrderPage {
    pub orders: Vec<FulfillmentOrder>,
    /// The `before` of the next page, when there may be one.
    pub next: Option<String>,
}

/// Which orders to list.
#[derive(Clone, Debug, Default)]
pub struct OrderQuery<'a> {
    /// The publisher; the caller's robot organization when absent.
    pub publisher: Option<&'a str>,
    /// An account name or address, as the orders named it.
    pub customer: Option<&'a str>,
    pub state: Option<&'a str>,
    /// The previous page's `next`.
    pub before: Option<&'a str>,
    pub limit: Option<i64>,
}

/// A webhook endpoint just set, with its signing secret: shown this once.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub publisher: String,
    pub url: String,
    /// `whsec_...`: verify `Slipway-Signature` with it (Stripe's scheme).
    pub secret: String,
}

/// One event's delivery, as the log shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: String,
    pub order: String,
    pub event: String,
    /// pending, delivered or failed (given up).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    /// The endpoint's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    pub last_error: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl From<DeliveryRecord> for WebhookDelivery {
    fn from(d: DeliveryRecord) -> WebhookDelivery {
        WebhookDelivery {
            next_attempt_at: (d.state == "pending").then_some(d.next_attempt_at),
            id: d.id,
            order: d.order_id,
            event: d.event,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// What one run of the webhooks schedule did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookReport {
    pub expired: usize,
    pub attached: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Fulfillment {
    db: CommerceDb,
    /// Whether webhook endpoints may resolve to non-public addresses.
    private_endpoints: bool,
    /// Where links in invitation mail start (`AuthSettings::mail_link_base`).
    link_base: Arc<str>,
}

fn invalid(message: impl Into<String>) -> CommerceError {
    CommerceError::Invalid(message.into())
}

/// The body of an order's webhook event.
fn event_body(order: &OrderRecord, event: &str) -> String {
    serde_json::to_string(&FulfillmentEvent { event: event.to_owned(), order: order.into() }).unwrap_or_default()
}

impl Fulfillment {
    /// `private_endpoints`: whether webhooks may go to loopback, private, link-local and
    /// other non-public addresses (off in a deployment: an ISV's endpoint must not reach
    /// the store's own network, its metadata service or the database).
    pub fn new(db: CommerceDb, link_base: &str, private_endpoints: bool) -> Result<Fulfillment, CommerceError> {
        Ok(Fulfillment { db, link_base: link_base.trim_end_matches('/').into(), private_endpoints })
    }

    fn now(&self) -> i64 {
        self.db.clock().now_ms()
    }

    /// The publisher a request acts for, once the policy agrees: the one named, else the
    /// caller's own organization when it is a robot.
    fn publisher<'a>(actor: &Actor<'_>, caller: &'a AccountRecord, named: Option<&'a str>) -> Result<&'a str, CommerceError> {
        let publisher = named
            .or(caller.robot_org.as_deref())
            .ok_or_else(|| invalid("name the publisher (`publisher`): only a robot's token acts for its own organization by default"))?;
        Self::check(actor, publisher)?;
        Ok(publisher)
    }

    fn check(actor: &Actor<'_>, publisher: &str) -> Result<(), CommerceError> {
        decide(actor, Action::Fulfill, &Resource::Sales { publisher }).into_result().map_err(|r| CommerceError::Refused(r.kind, r.reason))
    }

    /// Creates an order; `true` when it is new, `false` when the publisher already had the
    /// same order under this external id (another order under it is a conflict).
    pub async fn create(
        &self,
        actor: &Actor<'_>,
        caller: &AccountRecord,
        input: &FulfillmentOrderInput,
    ) -> Result<(FulfillmentOrder, bool), CommerceError> {
        let (publisher, slug) = input
            .product
            .split_once('/')
            .filter(|(p, s)| !p.is_empty() && !s.is_empty() && !s.contains('/'))
            .ok_or_else(|| invalid(format!("product {:?} is not PUBLISHER/SLUG", input.product)))?;
        Self::check(actor, publisher)?;
        let external_id = input.external_id.as_str();
        if external_id.is_empty() || external_id.len() > MAX_EXTERNAL_ID || !external_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(format!("external_id is 1 to {MAX_EXTERNAL_ID} visible ASCII characters")));
        }
        if input.product_key.chars().count() > MAX_PRODUCT_KEY || input.product_key.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid(format!("product_key has at most {MAX_PRODUCT_KEY} characters and no control characters but line breaks")));
        }
        let now = self.now();
        if let Some(at) = input.expires_at
            && (at <= now || at > now + MAX_EXPIRY_MS)
        {
            return Err(invalid(format!("expires_at ({at}) is Unix milliseconds in the future and at most ten years on (now is {now})")));
        }
        if input.tier.is_empty() || input.tier.contains('/') {
            return Err(invalid(format!("tier {:?} is a tier's slug", input.tier)));
        }
        let tier_id = slipway_types::entitlement_id(publisher, slug, &input.tier);
        match self.db.fulfillment_tier(publisher, &tier_id).await?.as_deref() {
            None => return Err(invalid(format!("{publisher}/{slug} has no tier {:?}", input.tier))),
            Some("licensed") => {}
            Some(access) => {
                return Err(invalid(format!("tier {:?} is {access}: orders grant licensed tiers only", input.tier)));
            }
        }
        // The customer: an account now, or an address to wait for.
        let (customer, email, account_id) = match (&input.account, &input.email) {
            (Some(name), None) => {
                let account = self
                    .db
                    .customer_by_name(name)
                    .await?
                    .filter(|a| a.kind == "person" && a.disabled_at.is_none())
                    .ok_or_else(|| invalid(format!("no customer account named {name:?}")))?;
                (account.name, None, Some(account.id))
            }
            (None, Some(email)) => {
                slipway_auth::check_email(email).map_err(|e| invalid(e.to_string()))?;
                let email = email.to_lowercase();
                let account = self.db.customer_by_verified_email(&email).await?.filter(|a| a.disabled_at.is_none());
                (email.clone(), Some(email), account.map(|a| a.id))
            }
            _ => return Err(invalid("name the customer by exactly one of `account` and `email`")),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let mail_id = uuid::Uuid::new_v4().to_string();
        let (subject, body) = self.invitation(publisher, slug, &input.tier, &input.product_key);
        let new = NewOrder {
            id: &id,
            publisher,
            tier_id: &tier_id,
            kind: input.kind.as_str(),
            customer: &customer,
            email: email.as_deref(),
            account_id: account_id.as_deref(),
            external_id,
            product_key: &input.product_key,
            expires_at: input.expires_at,
            created_by: &caller.id,
            invitation: account_id.is_none().then_some((mail_id.as_str(), subject.as_str(), body.as_str())),
        };
        match self.db.create_order(&new, &event_body).await? {
            OrderWrite::Created(order) => Ok(((&order).into(), true)),
            OrderWrite::Existing(order) => {
                let differs: Vec<&str> = [
                    ("tier", order.tier_id != tier_id),
                    ("customer", order.customer != customer),
                    ("kind", order.kind != input.kind.as_str()),
                    ("product_key", order.product_key != input.product_key),
                    ("expires_at", order.expires_at != input.expires_at),
                ]
                .into_iter()
                .filter_map(|(field, differs)| differs.then_some(field))
                .collect();
                if differs.is_empty() {
                    Ok(((&order).into(), false))
                } else {
                    Err(CommerceError::Conflict(format!(
                        "external_id {external_id:?} names order {} already, with another {}: use a new external id for a new order",
                        order.id,
                        differs.join(", ")
                    )))
                }
            }
        }
    }

    fn invitation(&self, publisher: &str, slug: &str, tier: &str, product_key: &str) -> (String, String) {
        let key = if product_key.is_empty() { String::new() } else { format!("\nYour product key:\n\n{product_key}\n") };
        (
            format!("Your license for {publisher}/{slug} on Slipway"),
            format!(
                "Hello,\n\n{publisher} has ordered the {tier} tier of {publisher}/{slug} for this address on Slipway.\n{key}\n\
                 To use it, sign up with this address at {}/signup: once you confirm the address, the license is yours.\n\n\
                 If you expected nothing of the kind, ignore this message.\n",
                self.link_base
            ),
        )
    }

    /// The order, if it is one of a publisher the caller fulfills for.
    async fn own_order(&self, actor: &Actor<'_>, id: &str) -> Result<OrderRecord, CommerceError> {
        let missing = || CommerceError::NotFound(format!("no order {id:?}"));
        let order = self.db.order(id).await?.ok_or_else(missing)?;
        match Self::check(actor, &order.publisher) {
            // Another publisher's order is answered as no order at all.
            Err(CommerceError::Refused(ErrorKind::NotFound, _)) => Err(missing()),
            other => other.map(|()| order),
        }
    }

    pub async fn order(&self, actor: &Actor<'_>, id: &str) -> Result<FulfillmentOrder, CommerceError> {
        Ok((&self.own_order(actor, id).await?).into())
    }

    pub async fn orders(
        &self,
        actor: &Actor<'_>,
        caller: &AccountRecord,
        query: &OrderQuery<'_>,
    ) -> Result<FulfillmentOrderPage, CommerceError> {
        let publisher = Self::publisher(actor, caller, query.publisher)?;
        let limit = query.limit.unwrap_or(MAX_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(format!("limit is 1 to {MAX_PAGE}")));
        }
        if let Some(state) = query.state.filter(|s| !["pending", "active", "canceled", "expired"].contains(s)) {
            return Err(invalid(format!("state {state:?} is pending, active, canceled or expired")));
        }
        let before = match query.before {
            None => None,
            Some(cursor) => Some(
                cursor
                    .split_once('_')
                    .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                    .ok_or_else(|| invalid("before is the `next` of a previous page"))?,
            ),
        };
        let customer = query.customer.map(|c| if c.contains('@') { c.to_lowercase() } else { c.to_owned() });
        let records = self.db.orders(publisher, customer.as_deref(), query.state, before, limit).await?;
        let next = (records.len() as i64 == limit).then(|| records.last().map(|o| format!("{}_{}", o.created_at, o.id))).flatten();
        Ok(FulfillmentOrderPage { orders: records.iter().map(FulfillmentOrder::from).collect(), next })
    }

    /// Cancels an open order: its entitlement ends now.
    pub async fn cancel(&self, actor: &Actor<'_>, id: &str) -> Result<FulfillmentOrder, CommerceError> {
        let order = self.own_order(actor, id).await?;
        match self.db.end_order(&order.id, "canceled", &event_body).await? {
            Some(ended) => Ok((&ended).into()),
            None => Err(CommerceError::Conflict(format!("order {id} has already ended ({})", order.state))),
        }
    }

    /// Attaches the orders waiting for `account`'s address, once it is verified.
    pub async fn attach(&self, account: &AccountRecord) -> Result<usize, CommerceError> {
        let (Some(email), Some(_)) = (&account.email, account.email_verified_at) else { return Ok(0) };
        if account.kind != "person" || account.disabled_at.is_some() {
            return Ok(0);
        }
        Ok(self.db.attach_orders(&email.to_lowercase(), &account.id, &event_body).await?.len())
    }

    // ---- webhooks ----------------------------------------------------------------------

    /// Sets the publisher's webhook endpoint with a new signing secret, returned this once.
    /// The server keeps the secret to sign with: it is the ISV's to verify our signatures,
    /// not a credential anyone presents to us.
    pub async fn set_webhook(
        &self,
        actor: &Actor<'_>,
        caller: &AccountRecord,
        publisher: Option<&str>,
        url: &str,
    ) -> Result<WebhookEndpoint, CommerceError> {
        let publisher = Self::publisher(actor, caller, publisher)?;
        if url.len() > MAX_WEBHOOK_URL {
            return Err(invalid(format!("the webhook URL has at most {MAX_WEBHOOK_URL} characters")));
        }
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("the webhook URL {url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() || !parsed.username().is_empty() {
            return Err(invalid("the webhook URL is http(s)://HOST/PATH, without credentials"));
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !self.private_endpoints && !is_public(ip)) {
            return Err(invalid(PRIVATE_ENDPOINT));
        }
        let secret = format!("whsec_{}", slipway_auth::random_secret());
        let stored = self.db.put_webhook(publisher, parsed.as_str(), &secret).await?;
        Ok(WebhookEndpoint { publisher: stored.publisher, url: stored.url, secret: stored.secret })
    }

    /// The publisher's latest deliveries, newest first.
    pub async fn deliveries(
        &self,
        actor: &Actor<'_>,
        caller: &AccountRecord,
        publisher: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<WebhookDelivery>, CommerceError> {
        let publisher = Self::publisher(actor, caller, publisher)?;
        let limit = limit.unwrap_or(MAX_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(format!("limit is 1 to {MAX_PAGE}")));
        }
        Ok(self.db.deliveries(publisher, limit).await?.into_iter().map(WebhookDelivery::from).collect())
    }

    /// One run of the webhooks schedule: orders past their expiry end (announced), orders
    /// whose address was verified without the hook running attach, and due deliveries
    /// are sent.
    pub async fn run(&self) -> Result<WebhookReport, CommerceError> {
        let mut report = WebhookReport::default();
        for id in self.db.expired_orders(self.now(), BATCH).await? {
            report.expired += usize::from(self.db.end_order(&id, "expired", &event_body).await?.is_some());
        }
        for (email, account_id) in self.db.verified_pending_customers(BATCH).await? {
            report.attached += self.db.attach_orders(&email, &account_id, &event_body).await?.len();
        }
        for delivery in self.db.claim_deliveries(BATCH, self.now() + LEASE_MS).await? {
            let outcome = self.send(&delivery).await;
            let now = self.now();
            match outcome {
                Ok(()) => {
                    report.delivered += 1;
                    self.db.record_attempt(&delivery.id, true, Some(200), "", None).await?;
                }
                Err((status, error)) => {
                    let retry_at = usize::try_from(delivery.attempts).ok().and_then(|n| RETRY_DELAYS_MS.get(n)).map(|delay| now + delay);
                    if retry_at.is_some() {
                        report.retrying += 1;
                    } else {
                        report.failed += 1;
                        tracing::warn!(delivery = %delivery.id, error = %error, "webhook delivery given up");
                    }
                    self.db.record_attempt(&delivery.id, false, status, &error, retry_at).await?;
                }
            }
        }
        Ok(report)
    }

    /// Posts one event, signed; a 2xx answer delivers it. Otherwise the status (if any)
    /// and why, for the log.
    async fn send(&self, delivery: &DueDelivery) -> Result<(), (Option<i64>, String)> {
        let url = url::Url::parse(&delivery.url).map_err(|e| (None, format!("bad URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err((None, "only http(s) endpoints are called".into()));
        }
        // Resolved here and the connection pinned to the addresses checked, so a name cannot
        // answer a public address to the check and a private one to the connection.
        let host = url.host_str().ok_or_else(|| (None, "the URL has no host".to_owned()))?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| (None, format!("cannot resolve {host}: {e}")))?
            .collect();
        if addrs.is_empty() || (!self.private_endpoints && addrs.iter().any(|a| !is_public(a.ip()))) {
            return Err((None, PRIVATE_ENDPOINT.to_owned()));
        }
        // Endpoints are the ISV's: a redirect is not followed (it could point anywhere).
        let http = slipway_net::client()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&host, &addrs)
            .build()
            .map_err(|e| (None, format!("webhook client: {e}")))?;
        let timestamp = i64::try_from(self.db.clock().now_secs()).unwrap_or(i64::MAX);
        let signed = signature::sign(&delivery.secret, delivery.payload.as_bytes(), timestamp);
        let response = http
            .post(url)
            .header("content-type", "application/json")
            .header("slipway-signature", signed)
            .header("slipway-event", &delivery.event)
            .header("slipway-delivery", &delivery.id)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| (None, format!("{e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(MAX_LOGGED_ERROR).collect();
        Err((Some(i64::from(status.as_u16())), format!("HTTP {status}: {text}")))
    }
}

const PRIVATE_ENDPOINT: &str =
    "the webhook endpoint is (or resolves to) a loopback, private, link-local or other non-public address: webhooks go to public endpoints";

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, unique
/// local), link-local, shared (RFC 6598), documentation, benchmarking, multicast,
/// broadcast or unspecified, nor an IPv4-mapped one of those.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(std::net::IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
    }
}

impl EmailVerifiedHook for Fulfillment {
    fn email_verified<'a>(&'a self, account: &'a AccountRecord) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            // The schedule's run attaches whatever this misses.
            if let Err(e) = self.attach(account).await {
                tracing::warn!(account = %account.name, error = %e, "attaching fulfillment orders at verification failed");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_public_unicast_addresses_are_webhook_endpoints() {
        for public in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ];
        for address in private {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
    }
}
