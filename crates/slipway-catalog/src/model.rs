//! What the catalog shows and accepts: publishers, listings, tiers, versions and
//! subscriptions, as the web pages and the REST API see them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The store's categories: slug and title.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("analytics", "Analytics"),
    ("application-frameworks", "Application Frameworks"),
    ("application-infrastructure", "Application Infrastructure"),
    ("base-images", "Base Images"),
    ("business-software", "Business Software"),
    ("databases", "Databases"),
    ("devops-tools", "DevOps Tools"),
    ("messaging", "Messaging Services"),
    ("monitoring", "Monitoring"),
    ("networking", "Networking"),
    ("operating-systems", "Operating Systems"),
    ("programming-languages", "Programming Languages"),
    ("security", "Security"),
    ("storage", "Storage"),
    ("web-servers", "Web Servers"),
];

pub fn category_title(slug: &str) -> Option<&'static str> {
    CATEGORIES.iter().find(|(s, _)| *s == slug).map(|(_, title)| *title)
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal, $label:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The human label shown in the store.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a product is.
    ProductType { Image => "image", "Container image"; Plugin => "plugin", "Plugin"; Agent => "agent", "Agent"; }
);
string_enum!(
    /// Who stands behind a product.
    TrustLevel { Official => "official", "Official"; Verified => "verified", "Verified Publisher"; Community => "community", "Community"; }
);
string_enum!(
    /// Who may pull a tier's images once the listing is published.
    Access { Public => "public", "Anyone"; LoggedIn => "logged_in", "Signed-in users"; Licensed => "licensed", "License holders"; }
);
string_enum!(
    /// Quality marks a moderator awards after certification.
    Badge { Certified => "certified", "Docker Certified"; VerifiedPublisher => "verified_publisher", "Verified Publisher"; }
);
string_enum!(
    /// Where a listing is on its way to the store and in it (see `moderation`).
    ListingStatus {
        Draft => "draft", "Draft";
        Submitted => "submitted", "Submitted";
        InReview => "in_review", "In review";
        ChangesRequested => "changes_requested", "Changes requested";
        Approved => "approved", "Approved";
        Published => "published", "Published";
        Unpublished => "unpublished", "Unpublished";
        OnHold => "on_hold", "On hold";
        Revoked => "revoked", "Revoked";
    }
);
string_enum!(
    /// Where a product runs, which decides whether it may be published and certified and
    /// whether its publisher must support it (the publishing guide's eligibility table).
    RunsOn {
        Enterprise => "enterprise", "Docker Enterprise (certified infrastructure)";
        Community => "community", "Docker Community";
        Neither => "neither", "Neither: needs infrastructure that is not certified";
    }
);

impl ListingStatus {
    /// In the store: found, shown, its repositories open (on hold with a warning, selling
    /// nothing new).
    pub fn is_live(self) -> bool {
        matches!(self, ListingStatus::Published | ListingStatus::OnHold)
    }
}

/// A publisher's public profile.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Publisher {
    /// The organization that publishes.
    pub org: String,
    pub display_name: String,
    pub legal_name: String,
    pub website: String,
    pub phone: String,
    pub email: String,
    pub email_verified: bool,
    /// URL of the square logo.
    pub logo_url: Option<String>,
    /// Company story, Markdown.
    pub story: String,
    /// Set by a moderator.
    pub verified: bool,
}

/// A publisher profile as submitted. The logo is uploaded separately (see media) and
/// referenced by its id.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PublisherInput {
    pub display_name: String,
    pub legal_name: String,
    pub website: String,
    pub phone: String,
    pub email: String,
    pub logo: Option<String>,
    #[serde(default)]
    pub story: String,
}

/// A pricing and access plan of a product, backed by one repository.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Tier {
    /// Lower-case id, unique within the listing (`developer`, `enterprise`).
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Price per billing period in the minor units of `currency` (cents for USD, yen for
    /// JPY, fils for KWD); 0 for a free tier.
    #[serde(default)]
    pub amount: i64,
    /// Active ISO 4217 code, upper case (`USD`, `EUR`, `JPY`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// `month`, `year` or `one_time` for paid tiers, `free` for free ones.
    #[serde(default = "default_period")]
    pub billing_period: String,
    /// Days of free trial before the first charge (0 to 90); only on `month` and `year` tiers.
    #[serde(default)]
    pub trial_days: i64,
    pub access: Access,
    /// The publisher's repository holding the tier's images (never shared by two tiers).
    pub repository: String,
    /// The tags offered; empty offers every tag.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_currency() -> String {
    "USD".into()
}

fn default_period() -> String {
    "free".into()
}

impl Tier {
    pub fn is_free(&self) -> bool {
        self.amount == 0
    }

    /// The price per billing period; None for a free tier (and for a currency code that is
    /// not ISO 4217, which validation never stores).
    pub fn price(&self) -> Option<slipway_types::Money> {
        if self.is_free() {
            return None;
        }
        let currency = slipway_types::Currency::parse(&self.currency).ok()?;
        Some(slipway_types::Money::new(self.amount, currency))
    }

    /// The price as the store shows it: "Free", "$49.00 / month", "$490.00 / year",
    /// "$99.00 one-time", "¥1,500 / month", "12.500 KWD / month".
    pub fn price_label(&self) -> String {
        let Some(price) = self.price() else {
            return if self.is_free() { "Free".into() } else { "Price unavailable".into() };
        };
        let amount = group_thousands(&price.amount_string());
        let amount = match price.currency.code() {
            "USD" => format!("${amount}"),
            "EUR" => format!("€{amount}"),
            "GBP" => format!("£{amount}"),
            "JPY" => format!("¥{amount}"),
            code => format!("{amount} {code}"),
        };
        match self.billing_period.as_str() {
            "one_time" => format!("{amount} one-time"),
            period => format!("{amount} / {period}"),
        }
    }

    /// The free trial as the store shows it: "14-day free trial"; None without one.
    pub fn trial_label(&self) -> Option<String> {
        (self.trial_days > 0).then(|| format!("{}-day free trial", self.trial_days))
    }
}

/// `1234567.89` as `1,234,567.89`: commas between thousands of the whole part.
fn group_thousands(amount: &str) -> String {
    let (sign, unsigned) = amount.strip_prefix('-').map_or(("", amount), |rest| ("-", rest));
    let (whole, fraction) = unsigned.split_once('.').map_or((unsigned, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A product listing as a publisher writes it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ListingInput {
    pub name: String,
    /// Media id of the square logo.
    pub logo: Option<String>,
    /// At most 140 characters.
    pub short_description: String,
    /// A category slug (see GET /api/v1/categories).
    pub category: String,
    #[serde(default)]
    pub search_tags: Vec<String>,
    /// Markdown.
    #[serde(default)]
    pub long_description: String,
    /// Media ids.
    #[serde(default)]
    pub screenshots: Vec<String>,
    /// Required where the product runs on Docker Enterprise (`runs_on`), optional otherwise.
    #[serde(default)]
    pub support_url: String,
    #[serde(default)]
    pub support_email: String,
    #[serde(default)]
    pub support_info: String,
    #[serde(default)]
    pub sla: String,
    /// Markdown. `{{registry}}` stands for the registry's host as the reader reaches it
    /// (`REGISTRY_PLACEHOLDER`), so commands in it work wherever the store is served.
    #[serde(default)]
    pub install_instructions: String,
    pub product_type: ProductType,
    /// Where the product runs; it must be declared before the product is submitted.
    #[serde(default)]
    pub runs_on: Option<RunsOn>,
    /// Show each version's vulnerability counts on the store's pages. Scan results are
    /// the publisher's: off unless it chooses.
    #[serde(default)]
    pub public_scan_summary: bool,
    pub tiers: Vec<Tier>,
}

/// A license agreement version: a link, a text, or both.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct License {
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub text: String,
}

/// A product's page in the store.
pub fn product_path(publisher: &str, slug: &str) -> String {
    format!("/products/{publisher}/{slug}")
}

/// A typeahead suggestion: what the search box shows of a listing.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Suggestion {
    pub name: String,
    /// The publisher's display name.
    pub publisher: String,
    /// The product page.
    pub path: String,
    pub logo_url: Option<String>,
    pub short_description: String,
}

/// A listing as the store shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Listing {
    pub id: String,
    pub publisher: String,
    pub publisher_name: String,
    pub slug: String,
    pub name: String,
    pub logo_url: Option<String>,
    pub short_description: String,
    pub category: String,
    pub search_tags: Vec<String>,
    /// Markdown as written; `long_description_html` is the sanitised rendering.
    pub long_description: String,
    pub screenshots: Vec<String>,
    pub support_url: String,
    pub support_email: String,
    pub support_info: String,
    pub sla: String,
    pub install_instructions: String,
    pub product_type: ProductType,
    pub trust_level: TrustLevel,
    pub badges: Vec<Badge>,
    /// `os/architecture` pairs the images run on.
    pub platforms: Vec<String>,
    pub tiers: Vec<Tier>,
    /// Current license agreement version (0: none).
    pub license_version: i64,
    pub pulls: i64,
    pub status: ListingStatus,
    pub runs_on: Option<RunsOn>,
    /// Whether everyone sees each version's vulnerability counts (the publisher's choice).
    pub public_scan_summary: bool,
    pub updated_at: i64,
    pub published_at: Option<i64>,
}

/// One move of a listing through moderation, or one message of its review thread (`from`
/// and `to` the same).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ListingEvent {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// The account's name; `operator` for the command line, `scheduler` for the deadline
    /// sweep.
    pub actor: String,
    pub from: ListingStatus,
    pub to: ListingStatus,
    pub message: String,
}

/// A move asked for: the status wanted, and what to tell the other side.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct MoveRequest {
    pub status: ListingStatus,
    /// Required when a moderator requests changes, rejects, holds or revokes.
    #[serde(default)]
    pub message: String,
}

/// A change to a live listing waiting for review: the live listing stays as it is until a
/// moderator approves this.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Revision {
    /// `draft`, `submitted`, `in_review` or `changes_requested`.
    pub status: ListingStatus,
    /// When it was last saved, Unix milliseconds.
    pub saved_at: i64,
    /// The fields it changes (`name`, `tiers`, ...).
    pub changed: Vec<String>,
    /// The listing as it would be.
    pub listing: Listing,
}

/// A version a live listing's tier offers that customers cannot pull yet: a tag never
/// released, or pushed again since its release.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PendingVersion {
    /// The tier's name.
    pub tier: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// Unix milliseconds.
    pub pushed_at: i64,
}

/// A submission waiting for a moderator.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueuedSubmission {
    pub publisher: String,
    pub slug: String,
    pub name: String,
    /// The submission's status, or its revision's.
    pub status: ListingStatus,
    /// A change to a live listing rather than a new one.
    pub revision: bool,
    /// When it was last submitted, Unix milliseconds.
    pub submitted_at: i64,
}

/// What product pages and result cards alike work out from a listing, whole or summed up.
pub trait Listed {
    /// Its publisher, slug, category and badges.
    fn identity(&self) -> (&str, &str, &str, &[Badge]);

    fn certified(&self) -> bool {
        self.identity().3.contains(&Badge::Certified)
    }

    fn path(&self) -> String {
        let (publisher, slug, _, _) = self.identity();
        product_path(publisher, slug)
    }

    fn category_title(&self) -> &'static str {
        category_title(self.identity().2).unwrap_or("Other")
    }
}

impl Listed for Listing {
    fn identity(&self) -> (&str, &str, &str, &[Badge]) {
        (&self.publisher, &self.slug, &self.category, &self.badges)
    }
}

impl Listed for ListingSummary {
    fn identity(&self) -> (&str, &str, &str, &[Badge]) {
        (&self.publisher, &self.slug, &self.category, &self.badges)
    }
}

/// A listing as search results and product cards show it: all but its long texts. Each
/// replica's search index holds one for every published listing, so a page of results
/// is read from memory.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ListingSummary {
    pub id: String,
    pub publisher: String,
    pub publisher_name: String,
    pub slug: String,
    pub name: String,
    pub logo_url: Option<String>,
    pub short_description: String,
    pub category: String,
    pub product_type: ProductType,
    pub trust_level: TrustLevel,
    pub badges: Vec<Badge>,
    /// `os/architecture` pairs the images run on.
    pub platforms: Vec<String>,
    pub tiers: Vec<Tier>,
    pub pulls: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    /// On hold for vulnerabilities its publisher has not fixed in time: shown with a
    /// warning, selling nothing new.
    pub on_hold: bool,
}

impl From<Listing> for ListingSummary {
    fn from(l: Listing) -> ListingSummary {
        ListingSummary {
            id: l.id,
            publisher: l.publisher,
            publisher_name: l.publisher_name,
            slug: l.slug,
            name: l.name,
            logo_url: l.logo_url,
            short_description: l.short_description,
            category: l.category,
            product_type: l.product_type,
            trust_level: l.trust_level,
            badges: l.badges,
            platforms: l.platforms,
            tiers: l.tiers,
            pulls: l.pulls,
            updated_at: l.updated_at,
            published_at: l.published_at,
            on_hold: l.status == ListingStatus::OnHold,
        }
    }
}

impl ListingSummary {
    /// The lowest price, as shown on a search result: "Free" when a tier is free, else the
    /// cheapest tier priced in the first paid tier's currency (amounts in two currencies
    /// are not comparable without a rate, so other currencies are not considered).
    pub fn price_summary(&self) -> String {
        let Some(first) = self.tiers.iter().find(|t| !t.is_free()) else { return "Free".into() };
        let cheapest = self.tiers.iter().filter(|t| !t.is_free() && t.currency == first.currency).min_by_key(|t| t.amount);
        let paid = cheapest.unwrap_or(first).price_label();
        // A free tier beside paid ones: both, so the card says the product also sells.
        if self.tiers.iter().any(Tier::is_free) { format!("Free · paid from {paid}") } else { format!("From {paid}") }
    }

    /// What typeahead shows of it.
    pub fn suggestion(&self) -> Suggestion {
        Suggestion {
            name: self.name.clone(),
            publisher: self.publisher_name.clone(),
            path: self.path(),
            logo_url: self.logo_url.clone(),
            short_description: self.short_description.clone(),
        }
    }
}

/// One tag of a tier's repository, for "View all versions".
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Version {
    pub tier: String,
    pub tag: String,
    pub digest: String,
    /// Sum of the compressed layer sizes of every platform's image.
    pub compressed_size: u64,
    /// `os/architecture[/variant]` of each platform.
    pub platforms: Vec<String>,
    /// Unix milliseconds of the push that set the tag.
    pub pushed_at: i64,
}

/// A licensed tier `pro` at a price, for the price rules' tests.
#[cfg(test)]
pub(crate) fn priced_tier(amount: i64, currency: &str, billing_period: &str, trial_days: i64) -> Tier {
    Tier {
        slug: "pro".into(),
        name: "Pro".into(),
        description: String::new(),
        amount,
        currency: currency.into(),
        billing_period: billing_period.into(),
        trial_days,
        access: Access::Licensed,
        repository: "acme/pro".into(),
        tags: Vec::new(),
    }
}

/// Stands for the registry's host in install instructions: the store front writes the host
/// its reader reaches (the same one its pull commands name) in its place.
pub const REGISTRY_PLACEHOLDER: &str = "{{registry}}";

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(amount: i64, currency: &str, billing_period: &str, trial_days: i64) -> Tier {
        priced_tier(amount, currency, billing_period, trial_days)
    }

    #[test]
    fn price_labels_use_the_currency_exponent_symbol_and_period() {
        assert_eq!(tier(0, "USD", "free", 0).price_label(), "Free");
        assert_eq!(tier(4_900, "USD", "month", 0).price_label(), "$49.00 / month");
        assert_eq!(tier(49_000, "USD", "year", 0).price_label(), "$490.00 / year");
        assert_eq!(tier(9_900, "USD", "one_time", 0).price_label(), "$99.00 one-time");
        assert_eq!(tier(1_500, "JPY", "month", 0).price_label(), "¥1,500 / month");
        assert_eq!(tier(12_345, "KWD", "year", 0).price_label(), "12.345 KWD / year");
        assert_eq!(tier(123_456_789, "EUR", "month", 0).price_label(), "€1,234,567.89 / month");
        assert_eq!(tier(5, "GBP", "month", 0).price_label(), "£0.05 / month");
        assert_eq!(tier(4_900, "CHF", "month", 0).price_label(), "49.00 CHF / month");
        assert_eq!(tier(4_900, "usd", "month", 0).price_label(), "Price unavailable");
    }

    #[test]
    fn price_is_none_only_when_free() {
        assert_eq!(tier(0, "USD", "free", 0).price(), None);
        let jpy = slipway_types::Currency::parse("JPY").unwrap();
        assert_eq!(tier(1_500, "JPY", "month", 0).price(), Some(slipway_types::Money::new(1_500, jpy)));
    }

    #[test]
    fn trial_label_only_with_trial_days() {
        assert_eq!(tier(4_900, "USD", "month", 14).trial_label().as_deref(), Some("14-day free trial"));
        assert_eq!(tier(4_900, "USD", "month", 0).trial_label(), None);
    }

    #[test]
    fn thousands_are_grouped_in_the_whole_part_only() {
        assert_eq!(group_thousands("0.05"), "0.05");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(group_thousands("1000"), "1,000");
        assert_eq!(group_thousands("-1234567.891"), "-1,234,567.891");
    }

    fn summary(tiers: Vec<Tier>) -> String {
        ListingSummary {
            id: "l1".into(),
            publisher: "acme".into(),
            publisher_name: "Acme".into(),
            slug: "rocket".into(),
            name: "Rocket".into(),
            logo_url: None,
            short_description: String::new(),
            category: "databases".into(),
            product_type: ProductType::Image,
            trust_level: TrustLevel::Community,
            badges: Vec::new(),
            platforms: Vec::new(),
            tiers,
            pulls: 0,
            updated_at: 0,
            published_at: None,
            on_hold: false,
        }
        .price_summary()
    }

    #[test]
    fn price_summary_compares_only_the_first_paid_currency() {
        assert_eq!(summary(vec![tier(0, "USD", "free", 0), tier(4_900, "USD", "month", 0)]), "Free · paid from $49.00 / month");
        assert_eq!(summary(vec![tier(0, "USD", "free", 0)]), "Free");
        assert_eq!(summary(vec![tier(9_900, "USD", "month", 0), tier(4_900, "USD", "year", 0)]), "From $49.00 / year");
        // 100 JPY is less than 4,900 cents as a number, but not a cheaper price.
        assert_eq!(summary(vec![tier(4_900, "EUR", "month", 0), tier(100, "JPY", "month", 0)]), "From €49.00 / month");
        assert_eq!(summary(Vec::new()), "Free");
    }
}
