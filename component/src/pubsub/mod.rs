//! The XMPP face of the XEP-0060 engine: stanzas in, [`roost_nodes::Request`]s out, and
//! [`roost_nodes::Reply`], [`roost_nodes::Error`] and [`roost_nodes::Notification`] back
//! into stanzas.
//!
//! Submodules, one job each:
//! - `parse`: IQ payload (or an owner's §8.6 answer in a message) → [`Request`] (or the
//!   stanza error the request deserves);
//! - `reply`: [`roost_nodes::Reply`] → IQ result payload;
//! - `forms`: data forms ↔ node configuration, subscription options, node meta-data;
//! - `errors`: the one table from [`roost_nodes::Error`] to stanza errors;
//! - `notify`: [`roost_nodes::Notification`] → `<message/>`;
//! - `mam`: XEP-0313 queries on a node's history, their result messages and `<fin/>`;
//! - `commands`: XEP-0050 discovery of the get-pending command.
//!
//! xmpp-parsers types are used wherever they exist; the few elements built or read by hand
//! say why where they are.

mod commands;
mod errors;
mod forms;
mod mam;
mod notify;
mod parse;
mod reply;

use minidom::rxml::NcName;
use minidom::{Element, ElementBuilder, IntoAttributeValue};
use roost_nodes::Millis;

pub use commands::command_disco;
pub use errors::stanza_error;
pub(crate) use forms::offer_roster_models;
pub use notify::{notification_message, NotificationRenderer};
pub use parse::{parse_message, parse_request};
pub use reply::{owner_namespace, reply_payload};

/// The messages that must precede the IQ result of `reply`, answering the request in
/// `payload` from `to`: for a history reply (XEP-0313 §4.2) one `<result/>` message per
/// item, carrying the query's `queryid`; nothing for every other reply. `new_id` names
/// each message.
pub fn reply_messages(
    reply: &roost_nodes::Reply,
    payload: &Element,
    service: &xmpp_parsers::jid::Jid,
    to: &xmpp_parsers::jid::Jid,
    new_id: &mut dyn FnMut() -> String,
) -> Vec<xmpp_parsers::message::Message> {
    let queryid = mam::query_id(payload);
    mam::result_messages(reply, queryid.as_deref(), service, to, new_id)
}

/// The type of the IQ a payload arrived in (results and errors never reach the pubsub layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqKind {
    /// `<iq type='get'/>`.
    Get,
    /// `<iq type='set'/>`.
    Set,
}

/// The `http://jabber.org/protocol/pubsub#…` features that work end to end (translation and
/// engine), as disco#info `var`s for the service's identity.
///
/// `access-presence` and `access-roster` are not here: they work only on a connection whose
/// server grants roster access (XEP-0356), so the service adds [`ROSTER_FEATURES`] then.
/// Deliberately absent until they work: `presence-subscribe` (XEP-0060 §9.1
/// auto-subscription from entity capabilities), `auto-subscribe`, `collections`,
/// `multi-collection`, `auto-create`, `filtered-notifications`, `publish-node-full` (no
/// `pubsub#publish_node_full` option: a full node always drops its oldest item) and
/// `last-published` (the default `send_last_published_item` is `never`).
pub const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-authorize",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#config-node",
    // `max` for pubsub#max_items and pubsub#item_expire (there is no pubsub#children_max).
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#get-pending",
    "http://jabber.org/protocol/pubsub#instant-nodes",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#leased-subscription",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#member-affiliation",
    "http://jabber.org/protocol/pubsub#meta-data",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#multi-subscribe",
    "http://jabber.org/protocol/pubsub#outcast-affiliation",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-only-affiliation",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#publisher-affiliation",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-default-sub",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#rsm",
    "http://jabber.org/protocol/pubsub#subscribe",
    "http://jabber.org/protocol/pubsub#subscription-notifications",
    "http://jabber.org/protocol/pubsub#subscription-options",
];

/// The other protocols the service implements besides pubsub, disco, ping and version:
/// XEP-0050 ad-hoc commands (get-pending, §8.7; XEP-0050 §2.1), data forms, which it reads
/// as a direct child of `<message/>` (the §8.6 authorization answer; XEP-0004 §8), and
/// XEP-0059 result set management (§5 "Determining Support"), on disco#items as well as on
/// items (for which `pubsub#rsm` says so, §6.5.4).
pub const OTHER_FEATURES: &[&str] = &[
    NS_COMMANDS,
    xmpp_parsers::ns::DATA_FORMS,
    xmpp_parsers::ns::RSM,
];

/// The access models that need the owners' rosters (§4.5), advertised only while the server
/// grants roster access (XEP-0356).
pub const ROSTER_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
];

/// `http://jabber.org/protocol/pubsub#errors`.
pub(crate) const NS_PUBSUB_ERRORS: &str = xmpp_parsers::ns::PUBSUB_ERRORS;
/// XEP-0131 Stanza Headers and Internet Metadata; xmpp-parsers 0.23 has no module for it.
pub(crate) const NS_SHIM: &str = "http://jabber.org/protocol/shim";
/// FORM_TYPE of publish-options (§7.1.5); not among xmpp-parsers' `ns` constants.
pub(crate) const NS_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// FORM_TYPE of subscription options (§6.3).
pub(crate) const NS_SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";
/// FORM_TYPE of the subscription authorization form (§8.6) and of get-pending (§8.7).
pub(crate) const NS_SUBSCRIBE_AUTHORIZATION: &str =
    "http://jabber.org/protocol/pubsub#subscribe_authorization";
/// XEP-0050 Ad-Hoc Commands.
pub(crate) const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
/// The ad-hoc command node of get-pending (§8.7).
pub(crate) const GET_PENDING_NODE: &str = "http://jabber.org/protocol/pubsub#get-pending";
/// FORM_TYPE of the node meta-data form (§5.4, XEP-0128).
pub(crate) const NS_META_DATA: &str = "http://jabber.org/protocol/pubsub#meta-data";

/// Sets attribute `name` on a builder when `value` is present. Only for the hand-built
/// elements xmpp-parsers 0.23 cannot produce; `name` is always an ASCII literal, so the
/// NcName conversion cannot fail, and if it ever did the attribute is dropped, not a panic.
pub(crate) fn attr<V: IntoAttributeValue>(
    builder: ElementBuilder,
    name: &'static str,
    value: V,
) -> ElementBuilder {
    match NcName::try_from(name) {
        Ok(name) => builder.attr(name, value),
        Err(_) => builder,
    }
}

/// An item payload as stored by the engine, back as an element. Payloads were serialized by
/// [`serialize_payload`] so this only fails on corrupted storage: log and skip.
pub(crate) fn payload_element(payload: &str) -> Option<Element> {
    if payload.is_empty() {
        return None;
    }
    match payload.parse::<Element>() {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "stored item payload is not well-formed XML; skipped");
            None
        }
    }
}

/// An item payload as the engine stores it: the element serialized with its own namespace
/// declaration, so it parses back standalone.
pub(crate) fn serialize_payload(payload: &Element) -> String {
    String::from(payload)
}

/// Formats milliseconds since the epoch as an XEP-0082 DateTime in UTC
/// (`2003-07-29T22:56:10Z`, with `.sss` only when there are milliseconds).
pub(crate) fn format_datetime(ms: Millis) -> String {
    use chrono::{DateTime, SecondsFormat, Utc};
    // Past chrono's range (year 262 143) only by corruption: clamp rather than fail.
    let t = i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an XEP-0082 DateTime (with a timezone) into milliseconds since the epoch;
/// `None` when malformed or before 1970.
pub(crate) fn parse_datetime(s: &str) -> Option<Millis> {
    let dt: xmpp_parsers::date::DateTime = s.trim().parse().ok()?;
    u64::try_from(dt.0.timestamp_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trip() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_datetime(1_059_519_370_000), "2003-07-29T22:56:10Z");
        assert_eq!(format_datetime(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_datetime(951_782_400_100), "2000-02-29T00:00:00.100Z");
        assert_eq!(
            parse_datetime("2003-07-29T22:56:10Z"),
            Some(1_059_519_370_000)
        );
        assert_eq!(
            parse_datetime("2003-07-29T23:56:10+01:00"),
            Some(1_059_519_370_000)
        );
        assert_eq!(
            parse_datetime("2000-02-29T00:00:00.123Z"),
            Some(951_782_400_123)
        );
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), None);
        for ms in [1u64, 86_399_999, 4_102_444_800_000, 1_709_164_800_000] {
            assert_eq!(parse_datetime(&format_datetime(ms)), Some(ms));
        }
    }

    #[test]
    fn payload_round_trip() {
        let e: Element =
            "<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>"
                .parse()
                .unwrap();
        let s = serialize_payload(&e);
        assert_eq!(payload_element(&s), Some(e));
        assert_eq!(payload_element(""), None);
        assert_eq!(payload_element("<broken"), None);
    }

    /// The attributes the XEP-0060 schemas (§15) require, by namespace and element.
    const REQUIRED: &[(&str, &str, &[&str])] = &[
        (
            xmpp_parsers::ns::PUBSUB,
            "affiliation",
            &["affiliation", "node"],
        ),
        (xmpp_parsers::ns::PUBSUB, "items", &["node"]),
        (xmpp_parsers::ns::PUBSUB, "options", &["jid"]),
        (xmpp_parsers::ns::PUBSUB, "publish", &["node"]),
        (xmpp_parsers::ns::PUBSUB, "retract", &["node"]),
        (xmpp_parsers::ns::PUBSUB, "subscribe", &["jid"]),
        (xmpp_parsers::ns::PUBSUB, "subscription", &["jid"]),
        (xmpp_parsers::ns::PUBSUB, "unsubscribe", &["jid"]),
        (xmpp_parsers::ns::PUBSUB_OWNER, "affiliations", &["node"]),
        (
            xmpp_parsers::ns::PUBSUB_OWNER,
            "affiliation",
            &["affiliation", "jid"],
        ),
        (xmpp_parsers::ns::PUBSUB_OWNER, "delete", &["node"]),
        (xmpp_parsers::ns::PUBSUB_OWNER, "purge", &["node"]),
        (xmpp_parsers::ns::PUBSUB_OWNER, "redirect", &["uri"]),
        (xmpp_parsers::ns::PUBSUB_OWNER, "subscriptions", &["node"]),
        (
            xmpp_parsers::ns::PUBSUB_OWNER,
            "subscription",
            &["subscription", "jid"],
        ),
        (xmpp_parsers::ns::PUBSUB_EVENT, "delete", &["node"]),
        (xmpp_parsers::ns::PUBSUB_EVENT, "items", &["node"]),
        (xmpp_parsers::ns::PUBSUB_EVENT, "purge", &["node"]),
        (xmpp_parsers::ns::PUBSUB_EVENT, "redirect", &["uri"]),
        (xmpp_parsers::ns::PUBSUB_EVENT, "retract", &["id"]),
        (xmpp_parsers::ns::PUBSUB_EVENT, "subscription", &["jid"]),
        (NS_PUBSUB_ERRORS, "unsupported", &["feature"]),
    ];

    /// Every element of `e` (itself included) the schemas name, checked for its required
    /// attributes; returns how many were checked.
    fn check_required(e: &Element, what: &str) -> usize {
        let mut n = 0;
        for (ns, name, attrs) in REQUIRED {
            if e.is(*name, *ns) {
                n += 1;
                for a in *attrs {
                    assert!(
                        e.attr(*a).is_some(),
                        "{what}: <{name} xmlns='{ns}'/> without its required '{a}': {}",
                        String::from(e)
                    );
                }
            }
        }
        n + e.children().map(|c| check_required(c, what)).sum::<usize>()
    }

    /// §15: every reply and notification Roost builds carries the attributes the schemas
    /// require, and elements come in the order the schemas (or, where they are looser than
    /// the examples, the examples) give.
    #[test]
    fn replies_and_notifications_carry_what_the_schemas_require() {
        use roost_nodes::request::{NodeMeta, NodeSummary};
        use roost_nodes::{
            Affiliation, Event, Item, NodeConfig, Notification, NotificationType, Reply, Request,
            RsmPage, SubOptions, Subscription, SubscriptionState,
        };
        let service: xmpp_parsers::jid::Jid = "pubsub.shakespeare.lit".parse().unwrap();
        let jid: xmpp_parsers::jid::Jid = "francisco@denmark.lit/barracks".parse().unwrap();
        let sub = |state| Subscription {
            jid: jid.clone(),
            subid: "123-abc".into(),
            state,
            options: SubOptions::default(),
        };
        let item = Item {
            id: "i1".into(),
            seq: 1,
            publisher: jid.clone(),
            published: 0,
            payload: "<entry xmlns='http://www.w3.org/2005/Atom'/>".into(),
        };
        let page = Some(RsmPage {
            first: Some(("i1".into(), 0)),
            last: Some("i1".into()),
            count: 1,
        });
        let n = || "princely_musings".to_owned();
        let owner_req = Request::GetSubscriptions { node: n() };
        let replies = [
            (Reply::Created { node: n() }, false),
            (
                Reply::Published {
                    node: n(),
                    id: "i1".into(),
                },
                false,
            ),
            (
                Reply::Subscription {
                    node: n(),
                    sub: sub(SubscriptionState::Subscribed),
                },
                false,
            ),
            (
                Reply::Subscription {
                    node: n(),
                    sub: sub(SubscriptionState::Unconfigured),
                },
                false,
            ),
            (
                Reply::Subscription {
                    node: n(),
                    sub: sub(SubscriptionState::Pending),
                },
                false,
            ),
            (
                Reply::Options {
                    node: Some(n()),
                    jid: Some(jid.clone()),
                    subid: Some("123-abc".into()),
                    options: SubOptions::default(),
                },
                false,
            ),
            (
                Reply::Items {
                    node: n(),
                    items: vec![item.clone()],
                    page: page.clone(),
                    with_publisher: true,
                },
                false,
            ),
            (
                Reply::Nodes {
                    nodes: vec![NodeSummary {
                        node: n(),
                        title: "t".into(),
                    }],
                    page: None,
                },
                false,
            ),
            (
                Reply::Metadata(NodeMeta {
                    node: n(),
                    config: NodeConfig::default(),
                    creator: "hamlet@denmark.lit".parse().unwrap(),
                    created: 0,
                    owners: vec!["hamlet@denmark.lit".parse().unwrap()],
                    publishers: vec![],
                    num_subscribers: 1,
                }),
                false,
            ),
            (
                Reply::Subscriptions {
                    node: None,
                    subs: vec![(n(), sub(SubscriptionState::Subscribed))],
                },
                false,
            ),
            (
                Reply::Subscriptions {
                    node: Some(n()),
                    subs: vec![(n(), sub(SubscriptionState::Pending))],
                },
                owner_namespace(&owner_req),
            ),
            (
                Reply::Affiliations {
                    node: None,
                    affs: vec![(n(), jid.to_bare(), Affiliation::Owner)],
                },
                false,
            ),
            (
                Reply::Affiliations {
                    node: Some(n()),
                    affs: vec![(n(), jid.to_bare(), Affiliation::Publisher)],
                },
                true,
            ),
            (
                Reply::Config {
                    node: Some(n()),
                    config: NodeConfig::default(),
                },
                false,
            ),
        ];
        let mut checked = 0;
        for (reply, owner) in &replies {
            let e = reply_payload(reply, &service, *owner).unwrap();
            checked += check_required(&e, &format!("{reply:?}"));
            // Example 68: the subscription first, then its options.
            if let Reply::Subscription { .. } = reply {
                let names: Vec<&str> = e.children().map(|c| c.name()).collect();
                assert!(matches!(
                    names[..],
                    ["subscription"] | ["subscription", "options"]
                ));
            }
            // §6.5.4: the RSM <set/> after the <items/>.
            if let Reply::Items { .. } = reply {
                let names: Vec<&str> = e.children().map(|c| c.name()).collect();
                assert_eq!(names, ["items", "set"]);
            }
        }
        let events = [
            Event::Items {
                items: vec![item],
                with_payload: true,
                with_publisher: true,
            },
            Event::Retract {
                ids: vec!["i1".into()],
            },
            Event::Purge,
            Event::Delete { redirect: None },
            Event::Delete {
                redirect: Some("xmpp:pubsub.shakespeare.lit?;node=other".into()),
            },
            Event::Configuration {
                config: Some(NodeConfig::default()),
            },
            Event::Subscription {
                jid: jid.clone(),
                state: SubscriptionState::None,
                subid: Some("123-abc".into()),
                expiry: Some(1_000),
            },
        ];
        for event in events {
            let m = notification_message(
                &Notification {
                    to: jid.clone(),
                    node: n(),
                    subids: vec!["a".into(), "b".into()],
                    kind: NotificationType::Headline,
                    include_body: true,
                    event: std::sync::Arc::new(event.clone()),
                },
                &service,
                "m1".into(),
            );
            let ev = m
                .payloads
                .iter()
                .find(|p| p.is("event", xmpp_parsers::ns::PUBSUB_EVENT))
                .unwrap();
            // The <event/> holds exactly one child (the schema's choice).
            assert_eq!(ev.children().count(), 1, "{event:?}");
            checked += check_required(ev, &format!("{event:?}"));
        }
        checked += check_required(
            &errors::unsupported("persistent-items").other.unwrap(),
            "unsupported",
        );
        assert!(checked >= 20, "only {checked} elements checked");
    }

    #[test]
    fn features_are_namespaced() {
        assert!(FEATURES.contains(&"http://jabber.org/protocol/pubsub#publish"));
        assert!(FEATURES
            .iter()
            .all(|f| f.starts_with("http://jabber.org/protocol/pubsub#")));
    }
}
