//! Integration tests: a real `slipway` application served on 127.0.0.1, driven through
//! HTTP. Every test runs on the embedded default (SQLite + filesystem); when the test
//! command exports SLIPWAY_TEST_POSTGRES_URL and SLIPWAY_TEST_S3_ENDPOINT, the same tests
//! run against PostgreSQL + S3 instead (CI runs the suite once each way).

mod account_pages;
mod accounts;
mod api_tokens;
mod auth;
mod backup;
mod bad_input;
mod checkout_pages;
mod commerce;
mod commerce_props;
mod errors;
mod fulfillment;
mod gc;
mod hardening;
mod ledger;
mod metrics;
mod moderation;
mod payouts;
mod push_pull;
mod replicas;
mod robots;
mod scan;
mod scanning;
mod scheduler;
mod security_pages;
mod sso;
mod store;
mod stripe_webhooks;
mod throttle;
mod tls;
mod two_factor;
mod vulnerability_policy;
