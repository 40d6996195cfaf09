//! Roost's XMPP side: an XEP-0060 publish-subscribe service as an XEP-0114 external
//! component. The only crate that touches tokio, tokio-xmpp and xmpp-parsers.
//!
//! Modules, one job each:
//! - [`config`]: flags, environment and TOML file into one [`Config`];
//! - [`link`]: the component connection, handshake and reconnection backoff;
//! - [`server`]: the one task that reads stanzas, drives the engine and writes replies;
//! - [`presence`]: presence subscriptions with users and their availability, for
//!   presence-bound delivery;
//! - [`privilege`]: XEP-0356 permissions and the node owners' rosters fetched with them;
//! - [`quota`]: per-JID request-rate buckets;
//! - [`pubsub`]: XEP-0060 stanza ↔ engine request translation, forms, the error map,
//!   notification messages.

pub mod config;
pub mod link;
pub mod presence;
pub mod privilege;
pub mod pubsub;
pub mod quota;
pub mod relay;
pub mod server;

pub use config::Config;
