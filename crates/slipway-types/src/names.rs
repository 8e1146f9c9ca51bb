//! Names built from parts, built here only, so that Rust and SQL never disagree about them.

/// The entitlement a licensed tier grants, and the registry checks at pull:
/// `publisher/listing/tier`. SQL that needs the same name joins on the value stored at
/// subscription time rather than concatenating the parts itself.
pub fn entitlement_id(publisher: &str, listing: &str, tier: &str) -> String {
    format!("{publisher}/{listing}/{tier}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_entitlement_names_publisher_listing_and_tier() {
        assert_eq!(super::entitlement_id("acme", "db", "pro"), "acme/db/pro");
    }
}
