//! The elements of Roost's dump format (`roost export` / `roost import`,
//! docs/dump-format.md) that xmpp-parsers has no type for: XEP-0227's pubsub sections
//! (`<configure/>`, `<affiliations/>`, `<subscriptions/>`, `<items/>` of XEP-0060) with
//! what Roost keeps besides, as attributes in [`NS_DUMP`], and the dump's own
//! `<expire/>` rows. The owner `<affiliations/>` is [`super::pubsub::OwnerAffiliations`].

use minidom::Element;
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::ns;
use xso::{AsXml, FromXml};

use super::pubsub::SubState;

/// The dump format's namespace; its last component is the format's version.
pub const NS_DUMP: &str = "urn:roost:dump:1";

/// The format version [`NS_DUMP`] names.
pub const DUMP_VERSION: u32 = 1;

/// `<configure node='…'/>` of the owner section: the node's configuration form, and its
/// record (uid, creator, creation time, highest item seq ever given) in [`NS_DUMP`].
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB_OWNER, name = "configure")]
pub struct DumpConfigure {
    /// The NodeID.
    #[xml(attribute)]
    pub node: String,
    /// The node's service-unique number (items are keyed by it).
    #[xml(attribute(namespace = NS_DUMP, name = "uid"))]
    pub uid: u64,
    /// Who created it.
    #[xml(attribute(namespace = NS_DUMP, name = "creator"))]
    pub creator: BareJid,
    /// When, as an XEP-0082 DateTime (milliseconds kept).
    #[xml(attribute(namespace = NS_DUMP, name = "created"))]
    pub created: String,
    /// The highest seq the node ever gave an item (the next publish gets a greater one).
    #[xml(attribute(namespace = NS_DUMP, name = "last-seq"))]
    pub last_seq: u64,
    /// The `pubsub#node_config` form, type `submit`, every field Roost has.
    #[xml(child)]
    pub form: DataForm,
}

/// One subscription of the owner section: XEP-0060's owner `<subscription/>` (§8.8.1)
/// with its options form (§6.3, `pubsub#subscribe_options`, type `submit`) inside.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB_OWNER, name = "subscription")]
pub struct DumpSubscription {
    /// The subscriber, bare or full, as it subscribed.
    #[xml(attribute)]
    pub jid: Jid,
    /// Its id.
    #[xml(attribute)]
    pub subid: String,
    /// Its state.
    #[xml(attribute)]
    pub subscription: SubState,
    /// Its options; absent means the defaults.
    #[xml(child(default))]
    pub options: Option<DataForm>,
}

/// The owner `<subscriptions node='…'/>` of one node.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB_OWNER, name = "subscriptions", on_unknown_child = Fail)]
pub struct DumpSubscriptions {
    /// The node.
    #[xml(attribute)]
    pub node: String,
    /// Its subscriptions, by subid.
    #[xml(child(n = ..))]
    pub subscriptions: Vec<DumpSubscription>,
}

/// One `<item/>` of a node's `<items/>` (XEP-0060 §6.5), with its place in publish order
/// and its publication time in [`NS_DUMP`]. The publisher is the full JID that published.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB, name = "item")]
pub struct DumpItem {
    /// The ItemID.
    #[xml(attribute)]
    pub id: String,
    /// Who published it.
    #[xml(attribute)]
    pub publisher: Jid,
    /// Its position in the node's publish order.
    #[xml(attribute(namespace = NS_DUMP, name = "seq"))]
    pub seq: u64,
    /// When it was stored, as an XEP-0082 DateTime (milliseconds kept).
    #[xml(attribute(namespace = NS_DUMP, name = "published"))]
    pub published: String,
    /// The `seq` its id was first published at, for an item since overwritten by the same
    /// id (its XEP-0413 creation order); absent otherwise.
    #[xml(attribute(namespace = NS_DUMP, name = "created", default))]
    pub created: Option<u64>,
    /// The payload; absent for a notification-only item.
    #[xml(element(default))]
    pub payload: Option<Element>,
}

/// `<expire node='…' item='…' at='…'/>`: item `item` of `node` is removed at `at`
/// (`pubsub#item_expire` as it was when the item was published).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_DUMP, name = "expire")]
pub struct DumpExpire {
    /// The node.
    #[xml(attribute)]
    pub node: String,
    /// The ItemID.
    #[xml(attribute)]
    pub item: String,
    /// When, as an XEP-0082 DateTime (milliseconds kept).
    #[xml(attribute)]
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::pubsub::{OwnerAffiliation, OwnerAffiliations};
    use crate::xml::test_support::round_trip;
    use xmpp_parsers::data_forms::{DataFormType, Field, FieldType};
    use xmpp_parsers::pubsub::{AffiliationAttribute, NodeName};

    fn config_form() -> DataForm {
        DataForm::new(
            DataFormType::Submit,
            ns::PUBSUB_CONFIGURE,
            vec![Field::new("pubsub#access_model", FieldType::ListSingle).with_value("whitelist")],
        )
    }

    /// XEP-0227 example 5's `<configure/>`, with the record Roost keeps.
    #[test]
    fn configure_round_trips() {
        round_trip(
            "<configure xmlns='http://jabber.org/protocol/pubsub#owner' \
                 xmlns:r='urn:roost:dump:1' node='urn:xmpp:bookmarks:1' r:uid='7' \
                 r:creator='romeo@capulet.com' r:created='2026-12-05T00:00:00.123Z' \
                 r:last-seq='2'>
               <x xmlns='jabber:x:data' type='submit'>
                 <field var='FORM_TYPE' type='hidden'>
                   <value>http://jabber.org/protocol/pubsub#node_config</value>
                 </field>
                 <field var='pubsub#access_model' type='list-single'><value>whitelist</value></field>
               </x>
             </configure>",
            &DumpConfigure {
                node: "urn:xmpp:bookmarks:1".into(),
                uid: 7,
                creator: "romeo@capulet.com".parse().unwrap(),
                created: "2026-12-05T00:00:00.123Z".into(),
                last_seq: 2,
                form: config_form(),
            },
        );
    }

    /// XEP-0227 example 5's `<affiliations/>` and `<subscriptions/>`.
    #[test]
    fn affiliations_and_subscriptions_round_trip() {
        round_trip(
            "<affiliations xmlns='http://jabber.org/protocol/pubsub#owner' node='urn:xmpp:bookmarks:1'>
               <affiliation jid='mercutio@example.net' affiliation='member'/>
             </affiliations>",
            &OwnerAffiliations {
                node: NodeName("urn:xmpp:bookmarks:1".into()),
                affiliations: vec![OwnerAffiliation {
                    jid: "mercutio@example.net".parse().unwrap(),
                    affiliation: AffiliationAttribute::Member,
                }],
            },
        );
        round_trip(
            "<subscriptions xmlns='http://jabber.org/protocol/pubsub#owner' node='urn:xmpp:bookmarks:1'>
               <subscription jid='mercutio@example.net' subid='123-abc' subscription='subscribed'/>
             </subscriptions>",
            &DumpSubscriptions {
                node: "urn:xmpp:bookmarks:1".into(),
                subscriptions: vec![DumpSubscription {
                    jid: "mercutio@example.net".parse().unwrap(),
                    subid: "123-abc".into(),
                    subscription: SubState::Subscribed,
                    options: None,
                }],
            },
        );
    }

    /// XEP-0227 example 5's nick item, with Roost's attributes.
    #[test]
    fn item_and_expire_round_trip() {
        round_trip(
            "<item xmlns='http://jabber.org/protocol/pubsub' xmlns:r='urn:roost:dump:1' \
                 id='current' publisher='romeo@capulet.com/orchard' r:seq='1' \
                 r:published='2026-12-05T00:00:01Z'>
               <nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>
             </item>",
            &DumpItem {
                id: "current".into(),
                publisher: "romeo@capulet.com/orchard".parse().unwrap(),
                seq: 1,
                published: "2026-12-05T00:00:01Z".into(),
                created: None,
                payload: Some(
                    "<nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>"
                        .parse()
                        .unwrap(),
                ),
            },
        );
        // Overwritten since: its creation seq comes along.
        round_trip(
            "<item xmlns='http://jabber.org/protocol/pubsub' xmlns:r='urn:roost:dump:1' \
                 id='current' publisher='romeo@capulet.com/orchard' r:seq='7' \
                 r:published='2026-12-05T00:00:07Z' r:created='1'/>",
            &DumpItem {
                id: "current".into(),
                publisher: "romeo@capulet.com/orchard".parse().unwrap(),
                seq: 7,
                published: "2026-12-05T00:00:07Z".into(),
                created: Some(1),
                payload: None,
            },
        );
        round_trip(
            "<expire xmlns='urn:roost:dump:1' node='n' item='current' at='2026-12-06T00:00:01Z'/>",
            &DumpExpire {
                node: "n".into(),
                item: "current".into(),
                at: "2026-12-06T00:00:01Z".into(),
            },
        );
    }
}
