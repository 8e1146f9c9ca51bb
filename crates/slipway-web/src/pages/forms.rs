//! Reading the portal's multipart forms into catalog input.

use std::collections::HashMap;

use axum::body::HttpBody as _;
use axum::extract::{FromRequest as _, Multipart, Request};
use axum::http::header;
use slipway_catalog::{Access, CatalogError, Listing, ListingInput, ProductType, RunsOn, Tier};
use slipway_types::{Currency, ErrorKind, Money, human_bytes};

use super::PageError;

/// A multipart form's text fields and uploaded files.
pub(super) struct Submitted {
    fields: HashMap<String, String>,
    pub(super) files: Vec<(String, Vec<u8>)>,
}

/// The most of an over-large form's body read (and dropped) before answering.
const MAX_DRAIN: u64 = 4 * super::FORM_LIMIT as u64;

/// Why a form was too large, with the limits in words.
fn too_large() -> PageError {
    PageError::Refused(
        ErrorKind::TooLarge,
        format!(
            "The form was larger than the {} it may be, and nothing was saved. Images are at most {} each: \
             upload fewer or smaller screenshots at a time.",
            human_bytes(super::FORM_LIMIT as u64),
            human_bytes(slipway_catalog::media::MAX_UPLOAD_BYTES as u64)
        ),
    )
}

impl Submitted {
    /// Reads a request's multipart form. One whose declared length is over the form limit
    /// is refused as TooLarge before any parsing, after its body is read and dropped (up
    /// to `MAX_DRAIN`): a browser sends the whole body before it reads the answer, and an
    /// answer sent while it still sends is lost to a reset connection.
    pub(super) async fn from_request(request: Request) -> Result<Submitted, PageError> {
        let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > super::FORM_LIMIT as u64) {
            let mut body = request.into_body();
            let mut drained = 0u64;
            while drained <= MAX_DRAIN {
                match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
                    Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
            }
            return Err(too_large());
        }
        let multipart = Multipart::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
        Submitted::read(multipart).await
    }

    /// Reads a form; one that turns out over the size limit (sent without a length) is
    /// refused as TooLarge with the limits in words.
    async fn read(mut multipart: Multipart) -> Result<Submitted, PageError> {
        let bad = |e: axum::extract::multipart::MultipartError| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                return too_large();
            }
            PageError::Refused(ErrorKind::Malformed, format!("The form could not be read: {e}"))
        };
        let mut out = Submitted { fields: HashMap::new(), files: Vec::new() };
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() {
                let bytes = field.bytes().await.map_err(bad)?;
                if !bytes.is_empty() {
                    out.files.push((name, bytes.to_vec()));
                }
            } else {
                out.fields.insert(name, field.text().await.map_err(bad)?);
            }
        }
        Ok(out)
    }

    pub(super) fn get(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    pub(super) fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone())
    }
}

pub(super) fn input_of(listing: &Listing) -> ListingInput {
    let id_of = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
    ListingInput {
        name: listing.name.clone(),
        logo: listing.logo_url.as_deref().map(id_of),
        short_description: listing.short_description.clone(),
        category: listing.category.clone(),
        search_tags: listing.search_tags.clone(),
        long_description: listing.long_description.clone(),
        screenshots: listing.screenshots.iter().map(|u| id_of(u)).collect(),
        support_url: listing.support_url.clone(),
        support_email: listing.support_email.clone(),
        support_info: listing.support_info.clone(),
        sla: listing.sla.clone(),
        install_instructions: listing.install_instructions.clone(),
        product_type: listing.product_type,
        runs_on: listing.runs_on,
        public_scan_summary: listing.public_scan_summary,
        tiers: listing.tiers.clone(),
    }
}

/// The price field of tier row `tier` in the minor units of `currency`, read with that
/// currency's decimal places: "49", "49.5" and "$49.50" in USD, "1500" in JPY, "12.345" in
/// KWD; more places than the currency has ("1.234" in USD) are refused, never rounded.
/// Empty is free.
fn amount(tier: &str, price: &str, currency: &str) -> Result<i64, CatalogError> {
    let price = price.trim().trim_start_matches(['$', '€', '£', '¥']);
    if price.is_empty() {
        return Ok(0);
    }
    let currency = Currency::parse(currency).map_err(|e| CatalogError::Invalid(format!("tier {tier} currency: {e}")))?;
    Money::parse(price, currency).map(|money| money.minor).map_err(|e| CatalogError::Invalid(format!("tier {tier} price: {e}")))
}

/// The trial field of tier row `tier`: whole days, empty for none.
fn trial_days(tier: &str, days: &str) -> Result<i64, CatalogError> {
    match days.trim() {
        "" => Ok(0),
        days => days.parse().map_err(|_| CatalogError::Invalid(format!("tier {tier} free trial: {days:?} is not a number of days"))),
    }
}

pub(super) fn listing_input(form: &Submitted) -> Result<ListingInput, CatalogError> {
    let mut tiers = Vec::new();
    for index in 0..(MAX_FORM_TIERS) {
        let field = |name: &str| form.get(&format!("tier_{index}_{name}"));
        if field("name").trim().is_empty() && field("repository").trim().is_empty() {
            continue;
        }
        // Codes are upper case; typed lower case is what the publisher meant all the same.
        let currency = field("currency").trim().to_ascii_uppercase();
        let row = match field("name").trim() {
            "" => (index + 1).to_string(),
            name => name.to_owned(),
        };
        let amount = amount(&row, &field("price"), &currency)?;
        let trial_days = trial_days(&row, &field("trial_days"))?;
        tiers.push(Tier {
            slug: match field("slug").trim() {
                "" => slipway_catalog::text::slugify(&field("name")),
                s => s.to_owned(),
            },
            name: field("name"),
            description: field("description"),
            amount,
            currency,
            billing_period: field("period"),
            trial_days,
            access: Access::parse(&field("access")).ok_or_else(|| CatalogError::Invalid("tier access: choose who may pull".into()))?,
            repository: field("repository"),
            tags: field("tags").split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        });
    }
    Ok(ListingInput {
        name: form.get("name"),
        logo: Some(form.get("logo_id")).filter(|l| !l.is_empty()),
        short_description: form.get("short_description"),
        category: form.get("category"),
        search_tags: form.get("search_tags").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        long_description: form.get("long_description"),
        screenshots: form.get("screenshot_ids").split_whitespace().map(str::to_owned).collect(),
        support_url: form.get("support_url"),
        support_email: form.get("support_email"),
        support_info: form.get("support_info"),
        sla: form.get("sla"),
        install_instructions: form.get("install_instructions"),
        product_type: ProductType::parse(&form.get("product_type")).unwrap_or(ProductType::Image),
        runs_on: RunsOn::parse(&form.get("runs_on")),
        public_scan_summary: form.get("public_scan_summary") == "on",
        tiers,
    })
}

/// Tier rows a submitted form may carry (existing tiers plus spares).
const MAX_FORM_TIERS: usize = 12;

/// The form's fields without the parts that failed to parse, to show it again.
pub(super) fn listing_input_lenient(form: &Submitted) -> ListingInput {
    ListingInput {
        name: form.get("name"),
        logo: Some(form.get("logo_id")).filter(|l| !l.is_empty()),
        short_description: form.get("short_description"),
        category: form.get("category"),
        search_tags: Vec::new(),
        long_description: form.get("long_description"),
        screenshots: Vec::new(),
        support_url: form.get("support_url"),
        support_email: form.get("support_email"),
        support_info: form.get("support_info"),
        sla: form.get("sla"),
        install_instructions: form.get("install_instructions"),
        product_type: ProductType::Image,
        runs_on: RunsOn::parse(&form.get("runs_on")),
        public_scan_summary: form.get("public_scan_summary") == "on",
        tiers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_with_the_currency_exponent() {
        assert_eq!(amount("1", "", "USD").unwrap(), 0);
        assert_eq!(amount("1", "49", "USD").unwrap(), 4_900);
        assert_eq!(amount("1", "49.5", "USD").unwrap(), 4_950);
        assert_eq!(amount("1", " $49.50 ", "USD").unwrap(), 4_950);
        assert_eq!(amount("1", "€19.99", "EUR").unwrap(), 1_999);
        assert_eq!(amount("1", "1500", "JPY").unwrap(), 1_500);
        assert_eq!(amount("1", "12.345", "KWD").unwrap(), 12_345);
    }

    #[test]
    fn amounts_with_too_many_places_or_garbage_are_refused() {
        let refusal = |price: &str, currency: &str| match amount("Pro", price, currency) {
            Err(CatalogError::Invalid(message)) => message,
            other => panic!("{price:?} {currency}: {other:?}"),
        };
        assert!(refusal("1.234", "USD").starts_with("tier Pro price:"));
        assert!(refusal("15.5", "JPY").starts_with("tier Pro price:"));
        assert!(refusal("1,500", "USD").starts_with("tier Pro price:"));
        assert!(refusal("49.", "USD").starts_with("tier Pro price:"));
        assert!(refusal("99999999999999999999", "USD").starts_with("tier Pro price:"));
        assert!(refusal("49", "XYZ").starts_with("tier Pro currency:"));
    }

    #[test]
    fn trial_days_are_whole_days() {
        assert_eq!(trial_days("1", " ").unwrap(), 0);
        assert_eq!(trial_days("1", "14").unwrap(), 14);
        assert!(matches!(trial_days("1", "two weeks"), Err(CatalogError::Invalid(m)) if m.contains("free trial")));
    }
}
