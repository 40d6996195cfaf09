//! Roost's XMPP side: an XEP-0060 publish-subscribe service as an XEP-0114 external
//! component. The only crate that touches tokio, tokio-xmpp and xmpp-parsers.
//!
//! Modules, one job each; each uses only those listed before it (see
//! `docs/architecture.md` for the data path):
//! - [`effects`]: what a handler produced, as a value;
//! - [`encoder`]: stanzas serialized as the stream carries them, into a batch buffer;
//! - [`guard`]: the stanza depth and size limits, enforced on the bytes read, before parsing;
//! - [`link`]: the component connection, handshake and reconnection backoff;
//! - [`xml`]: elements xmpp-parsers has no type for, declared with `xso`;
//! - [`errors`]: the one table of stanza errors;
//! - [`pubsub`]: XEP-0060 stanza ↔ engine request translation, forms, notification
//!   messages;
//! - [`quota`]: per-JID request-rate buckets;
//! - [`metrics`]: Prometheus metrics and health, and their HTTP endpoint;
//! - [`admin`]: the admins' XEP-0050 commands, through the engine;
//! - [`presence`]: presence subscriptions with users and their availability, for
//!   presence-bound delivery;
//! - [`privilege`]: XEP-0356 permissions, roster items and the bookkeeping of fetches;
//! - [`relay`]: relay nodes, mirrors of nodes of other pubsub services;
//! - [`config`]: flags, environment and TOML file into one [`Config`];
//! - [`reload`]: SIGHUP, the configuration read again and applied while linked;
//! - [`outbox`]: the replies and notifications of a batch, held until it is durable,
//!   then rendered;
//! - [`backup`]: online backups on SIGUSR1, taken between batches;
//! - [`recovery`]: after a storage failure, the engine rebuilt from the store;
//! - [`ingress`]: the guard's refusals and shape checks on a raw element before it is
//!   handled;
//! - [`iq`]: IQ requests: service-level answers, and pubsub requests through the engine;
//! - [`rosters`]: the owners' rosters kept up to date through those permissions;
//! - [`roost`]: one stanza, tick or connection start in, its [`effects::Effects`] out;
//! - [`session`]: the service loop: read a batch, handle it, sync, write;
//! - [`dump`]: `roost export` / `roost import`, the XML dump of a data directory;
//! - [`tools`]: the offline subcommands `export`, `import`, `check`.
//!
//! A change is durable once the `Store::sync` that follows its commit returns `Ok`; its
//! reply and its notifications are sent only after that, and a failed sync sends neither
//! (the engine is rebuilt from what is on disk).

pub mod admin;
pub mod backup;
pub mod config;
pub mod dump;
pub mod effects;
pub mod encoder;
pub mod errors;
pub mod guard;
pub mod ingress;
pub mod iq;
pub mod link;
pub mod metrics;
pub mod outbox;
pub mod presence;
pub mod privilege;
pub mod pubsub;
pub mod quota;
pub mod recovery;
pub mod relay;
pub mod reload;
pub mod roost;
pub mod rosters;
pub mod session;
pub mod tools;
pub mod xml;

pub use config::Config;
