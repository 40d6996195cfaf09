//! `roost_requests_total{kind, outcome}`: a fixed table of atomics, one per kind of request
//! and outcome, so counting a request is one relaxed add with no label lookup; the table is
//! read, and only its non-zero cells written out, when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use roost_nodes::{PagedList, Request};
use xmpp_parsers::stanza_error::DefinedCondition;

macro_rules! kinds {
    ($($v:ident = $s:literal,)*) => {
        /// What an IQ request asked for: an engine request, or what the component answers
        /// itself.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Kind { $($v,)* }
        impl Kind {
            const NAMES: &'static [&'static str] = &[$($s,)*];
            const ALL: usize = Self::NAMES.len();
            /// The label value.
            pub fn name(self) -> &'static str {
                Self::NAMES[self as usize]
            }
        }
    };
}

kinds! {
    DiscoNodes = "disco_nodes",
    NodeMetadata = "node_metadata",
    DiscoItems = "disco_items",
    Subscriptions = "subscriptions",
    Affiliations = "affiliations",
    Subscribe = "subscribe",
    Unsubscribe = "unsubscribe",
    GetOptions = "get_options",
    SetOptions = "set_options",
    DefaultOptions = "default_options",
    Items = "items",
    Publish = "publish",
    Retract = "retract",
    Create = "create",
    GetConfig = "get_config",
    SetConfig = "set_config",
    DefaultConfig = "default_config",
    Delete = "delete",
    Purge = "purge",
    Associate = "associate",
    Dissociate = "dissociate",
    GetSubscriptions = "get_subscriptions",
    SetSubscriptions = "set_subscriptions",
    GetAffiliations = "get_affiliations",
    SetAffiliations = "set_affiliations",
    Authorize = "authorize",
    GetPending = "get_pending",
    History = "history",
    // The service's own disco#info, ping and version.
    Service = "service",
    // An admin command (XEP-0050).
    Admin = "admin",
    // Refused before it was understood: malformed, unknown, over the rate, or while the
    // store is being rebuilt.
    Other = "other",
}

impl Kind {
    /// The kind of an engine request.
    pub fn of(req: &Request) -> Kind {
        match req {
            Request::DiscoNodes => Kind::DiscoNodes,
            Request::NodeMetadata { .. } => Kind::NodeMetadata,
            Request::DiscoItems { .. } => Kind::DiscoItems,
            Request::Subscriptions { .. } => Kind::Subscriptions,
            Request::Affiliations { .. } => Kind::Affiliations,
            Request::Subscribe { .. } => Kind::Subscribe,
            Request::Unsubscribe { .. } => Kind::Unsubscribe,
            Request::GetOptions { .. } => Kind::GetOptions,
            Request::SetOptions { .. } => Kind::SetOptions,
            Request::DefaultOptions { .. } => Kind::DefaultOptions,
            Request::Items { .. } => Kind::Items,
            Request::Publish { .. } => Kind::Publish,
            Request::Retract { .. } => Kind::Retract,
            Request::Create { .. } => Kind::Create,
            Request::GetConfig { .. } => Kind::GetConfig,
            Request::SetConfig { .. } => Kind::SetConfig,
            Request::DefaultConfig { .. } => Kind::DefaultConfig,
            Request::Delete { .. } => Kind::Delete,
            Request::Purge { .. } => Kind::Purge,
            Request::Associate { .. } => Kind::Associate,
            Request::Dissociate { .. } => Kind::Dissociate,
            Request::GetSubscriptions { .. } => Kind::GetSubscriptions,
            Request::SetSubscriptions { .. } => Kind::SetSubscriptions,
            Request::GetAffiliations { .. } => Kind::GetAffiliations,
            Request::SetAffiliations { .. } => Kind::SetAffiliations,
            Request::AuthorizeSubscription { .. } => Kind::Authorize,
            Request::PendingNodes | Request::GetPending { .. } => Kind::GetPending,
            Request::Page { list, .. } => match list {
                PagedList::Nodes => Kind::DiscoNodes,
                PagedList::ItemIds { .. } => Kind::DiscoItems,
                PagedList::Items { .. } => Kind::Items,
            },
            Request::History { .. } => Kind::History,
            Request::DiscoTyped { node: None, .. } => Kind::DiscoNodes,
            Request::DiscoTyped { .. } => Kind::DiscoItems,
            Request::ItemsOrdered { .. } => Kind::Items,
        }
    }
}

/// RFC 6120 §8.3.3 conditions, in the order of [`condition_index`].
const CONDITIONS: &[&str] = &[
    "bad-request",
    "conflict",
    "feature-not-implemented",
    "forbidden",
    "gone",
    "internal-server-error",
    "item-not-found",
    "jid-malformed",
    "not-acceptable",
    "not-allowed",
    "not-authorized",
    "policy-violation",
    "recipient-unavailable",
    "redirect",
    "registration-required",
    "remote-server-not-found",
    "remote-server-timeout",
    "resource-constraint",
    "service-unavailable",
    "subscription-required",
    "undefined-condition",
    "unexpected-request",
];

fn condition_index(c: &DefinedCondition) -> usize {
    use DefinedCondition as C;
    match c {
        C::BadRequest => 0,
        C::Conflict => 1,
        C::FeatureNotImplemented => 2,
        C::Forbidden => 3,
        C::Gone { .. } => 4,
        C::InternalServerError => 5,
        C::ItemNotFound => 6,
        C::JidMalformed => 7,
        C::NotAcceptable => 8,
        C::NotAllowed => 9,
        C::NotAuthorized => 10,
        C::PolicyViolation => 11,
        C::RecipientUnavailable => 12,
        C::Redirect { .. } => 13,
        C::RegistrationRequired => 14,
        C::RemoteServerNotFound => 15,
        C::RemoteServerTimeout => 16,
        C::ResourceConstraint => 17,
        C::ServiceUnavailable => 18,
        C::SubscriptionRequired => 19,
        C::UndefinedCondition => 20,
        C::UnexpectedRequest => 21,
    }
}

/// How a request ended: answered, or refused with a stanza error condition.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// An IQ result.
    Ok,
    /// An IQ error with this condition.
    Error(&'a DefinedCondition),
}

const OUTCOMES: usize = 1 + CONDITIONS.len();

/// The counts, one cell per (kind, outcome).
#[derive(Debug)]
pub struct RequestCounts {
    cells: Box<[AtomicU64]>,
}

impl Default for RequestCounts {
    fn default() -> Self {
        RequestCounts {
            cells: (0..Kind::ALL * OUTCOMES)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl RequestCounts {
    /// Count one request.
    pub fn count(&self, kind: Kind, outcome: Outcome<'_>) {
        let o = match outcome {
            Outcome::Ok => 0,
            Outcome::Error(c) => 1 + condition_index(c),
        };
        self.cells[kind as usize * OUTCOMES + o].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one cell (for tests and the statistics command).
    pub fn get(&self, kind: Kind, outcome: Outcome<'_>) -> u64 {
        let o = match outcome {
            Outcome::Ok => 0,
            Outcome::Error(c) => 1 + condition_index(c),
        };
        self.cells[kind as usize * OUTCOMES + o].load(Ordering::Relaxed)
    }

    /// Requests counted, whatever their kind and outcome.
    pub fn total(&self) -> u64 {
        self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Writes the table as the `requests` counter family when scraped.
#[derive(Debug)]
pub(super) struct Collector(pub(super) Arc<RequestCounts>);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "requests",
            "IQ requests by kind and outcome (ok, or the stanza error condition)",
            None,
            MetricType::Counter,
        )?;
        for (i, cell) in self.0.cells.iter().enumerate() {
            let v = cell.load(Ordering::Relaxed);
            if v == 0 {
                continue;
            }
            let (k, o) = (i / OUTCOMES, i % OUTCOMES);
            let outcome = if o == 0 { "ok" } else { CONDITIONS[o - 1] };
            let labels = [("kind", Kind::NAMES[k]), ("outcome", outcome)];
            ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
