//! The kinds of failure every domain error belongs to, and what each means at every
//! surface: one HTTP status, and one problem type for the JSON API.

/// What went wrong, as callers need to know it: each domain error enum answers
/// `kind()`, and each surface (the registry's OCI envelope, the API's problem documents,
/// the store's pages) maps the kind, not the error, so the same refusal answers the same
/// status everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request cannot be read at all: a body that is not JSON, a broken multipart
    /// form, a query string that does not parse, a cursor this server never issued. Kept
    /// apart from `Invalid` because HTTP gives the two different statuses (400 for syntax,
    /// 422 for content), as axum's own extractors answer.
    Malformed,
    /// The request is well formed but breaks a rule about its content.
    Invalid,
    /// No credentials, or credentials that do not hold (a bad password, an expired token).
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// The thing does not exist, or the caller may not know that it does.
    NotFound,
    /// The request conflicts with the current state (a name taken, a stale version).
    Conflict,
    /// The action needs a payment or a subscription first.
    PaymentRequired,
    /// The request's body is larger than this endpoint accepts.
    TooLarge,
    /// The request's body is in a format this endpoint does not take.
    UnsupportedMediaType,
    /// The caller must wait before trying again.
    Throttled,
    /// The server cannot do it now; trying again later may work.
    Unavailable,
    /// A fault of the server: logged where it is mapped, never described to the caller.
    Internal,
}

impl ErrorKind {
    /// Every kind, for tests and documentation.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Malformed,
        ErrorKind::Invalid,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::PaymentRequired,
        ErrorKind::TooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The HTTP status every surface answers for this kind.
    pub const fn status(self) -> u16 {
        match self {
            ErrorKind::Malformed => 400,
            ErrorKind::Invalid => 422,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PaymentRequired => 402,
            ErrorKind::TooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Throttled => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// A short stable name: the last part of the problem type, and a metrics label.
    pub const fn slug(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PaymentRequired => "payment-required",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The problem type (RFC 9457 `type`) of the JSON API: a URN, so that it names the
    /// kind the same way whatever host serves the API. Programs match on it; it never
    /// changes once released.
    pub fn problem_type(self) -> String {
        format!("urn:slipway:problem:{}", self.slug())
    }

    /// A human title for the kind, the same for every instance of it.
    pub const fn title(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "Malformed request",
            ErrorKind::Invalid => "Invalid request",
            ErrorKind::Unauthenticated => "Authentication required",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotFound => "Not found",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::PaymentRequired => "Payment required",
            ErrorKind::TooLarge => "Request too large",
            ErrorKind::UnsupportedMediaType => "Unsupported media type",
            ErrorKind::Throttled => "Too many requests",
            ErrorKind::Unavailable => "Temporarily unavailable",
            ErrorKind::Internal => "Internal server error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_has_its_own_status_slug_and_type() {
        let statuses: HashSet<u16> = ErrorKind::ALL.iter().map(|k| k.status()).collect();
        let slugs: HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.slug()).collect();
        assert_eq!(statuses.len(), ErrorKind::ALL.len());
        assert_eq!(slugs.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert!((400..600).contains(&kind.status()), "{kind:?}");
            assert_eq!(kind.problem_type(), format!("urn:slipway:problem:{}", kind.slug()));
            assert!(kind.slug().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{kind:?}");
        }
        assert_eq!(ErrorKind::NotFound.problem_type(), "urn:slipway:problem:not-found");
    }
}
