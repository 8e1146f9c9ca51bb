//! Reading the portal's multipart forms into catalog input.

use std::collections::HashMap;

use axum::extract::Multipart;
use slipway_catalog::{Access, CatalogError, Listing, ListingInput, ProductType, Tier};
use slipway_types::ErrorKind;

use super::PageError;

/// A multipart form's text fields and uploaded files.
pub(super) struct Submitted {
    fields: HashMap<String, String>,
    pub(super) files: Vec<(String, Vec<u8>)>,
}

impl Submitted {
    pub(super) async fn read(mut multipart: Multipart) -> Result<Submitted, PageError> {
        let bad = |e: axum::extract::multipart::MultipartError| {
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
        tiers: listing.tiers.clone(),
    }
}

/// The price field as cents: "49", "49.5" and "49.50" are all accepted.
pub(super) fn cents(price: &str) -> Result<i64, CatalogError> {
    let price = price.trim().trim_start_matches(['$', '€', '£']);
    if price.is_empty() {
        return Ok(0);
    }
    let (whole, fraction) = price.split_once('.').unwrap_or((price, ""));
    let parsed = (|| {
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            2 => fraction.parse().ok()?,
            _ => return None,
        };
        whole.checked_mul(100)?.checked_add(fraction)
    })();
    parsed.ok_or_else(|| CatalogError::Invalid(format!("tier price: {price:?} is not an amount like 49.00")))
}

pub(super) fn listing_input(form: &Submitted) -> Result<ListingInput, CatalogError> {
    let mut tiers = Vec::new();
    for index in 0..(MAX_FORM_TIERS) {
        let field = |name: &str| form.get(&format!("tier_{index}_{name}"));
        if field("name").trim().is_empty() && field("repository").trim().is_empty() {
            continue;
        }
        let price_cents = cents(&field("price"))?;
        tiers.push(Tier {
            slug: match field("slug").trim() {
                "" => slipway_catalog::text::slugify(&field("name")),
                s => s.to_owned(),
            },
            name: field("name"),
            description: field("description"),
            price_cents,
            currency: field("currency"),
            billing_period: field("period"),
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
        tiers: Vec::new(),
    }
}
