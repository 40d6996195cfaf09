//! XEP-0060 §14 `http://jabber.org/protocol/pubsub#errors`: the application-specific
//! conditions a pubsub stanza error carries beside its defined condition.

use xmpp_parsers::ns;
use xso::{AsXml, FromXml};

/// One `pubsub#errors` condition (the schema of XEP-0060 §14, every element).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = ns::PUBSUB_ERRORS, exhaustive)]
pub enum PubSubError {
    /// `<closed-node/>`.
    #[xml(name = "closed-node")]
    ClosedNode,
    /// `<configuration-required/>`.
    #[xml(name = "configuration-required")]
    ConfigurationRequired,
    /// `<invalid-jid/>`.
    #[xml(name = "invalid-jid")]
    InvalidJid,
    /// `<invalid-options/>`.
    #[xml(name = "invalid-options")]
    InvalidOptions,
    /// `<invalid-payload/>`.
    #[xml(name = "invalid-payload")]
    InvalidPayload,
    /// `<invalid-subid/>`.
    #[xml(name = "invalid-subid")]
    InvalidSubid,
    /// `<item-forbidden/>`.
    #[xml(name = "item-forbidden")]
    ItemForbidden,
    /// `<item-required/>`.
    #[xml(name = "item-required")]
    ItemRequired,
    /// `<jid-required/>`.
    #[xml(name = "jid-required")]
    JidRequired,
    /// `<max-items-exceeded/>`.
    #[xml(name = "max-items-exceeded")]
    MaxItemsExceeded,
    /// `<max-nodes-exceeded/>`.
    #[xml(name = "max-nodes-exceeded")]
    MaxNodesExceeded,
    /// `<nodeid-required/>`.
    #[xml(name = "nodeid-required")]
    NodeIdRequired,
    /// `<not-in-roster-group/>`.
    #[xml(name = "not-in-roster-group")]
    NotInRosterGroup,
    /// `<not-subscribed/>`.
    #[xml(name = "not-subscribed")]
    NotSubscribed,
    /// `<payload-too-big/>`.
    #[xml(name = "payload-too-big")]
    PayloadTooBig,
    /// `<payload-required/>`.
    #[xml(name = "payload-required")]
    PayloadRequired,
    /// `<pending-subscription/>`.
    #[xml(name = "pending-subscription")]
    PendingSubscription,
    /// `<precondition-not-met/>`.
    #[xml(name = "precondition-not-met")]
    PreconditionNotMet,
    /// `<presence-subscription-required/>`.
    #[xml(name = "presence-subscription-required")]
    PresenceSubscriptionRequired,
    /// `<subid-required/>`.
    #[xml(name = "subid-required")]
    SubidRequired,
    /// `<too-many-subscriptions/>`.
    #[xml(name = "too-many-subscriptions")]
    TooManySubscriptions,
    /// `<unsupported feature='…'/>`: the pubsub feature (without its namespace prefix) the
    /// service does not implement.
    #[xml(name = "unsupported")]
    Unsupported {
        /// E.g. `retrieve-subscriptions`.
        #[xml(attribute)]
        feature: String,
    },
    /// `<unsupported-access-model/>`.
    #[xml(name = "unsupported-access-model")]
    UnsupportedAccessModel,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::{example, round_trip};
    use minidom::Element;
    use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

    /// The pubsub condition of an XEP-0060 error example, and the example's `<error/>`
    /// read back by xmpp-parsers with it.
    fn condition_of(error: &str) -> (DefinedCondition, Element) {
        let e = StanzaError::try_from(example(error)).expect("a stanza error");
        (
            e.defined_condition,
            e.other.expect("a pubsub#errors condition"),
        )
    }

    #[test]
    fn example_30_invalid_jid_and_example_33_closed_node() {
        let (cond, other) = condition_of(
            "<error xmlns='jabber:component:accept' type='modify'>
               <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
               <invalid-jid xmlns='http://jabber.org/protocol/pubsub#errors'/>
             </error>",
        );
        assert_eq!(cond, DefinedCondition::BadRequest);
        assert_eq!(
            PubSubError::try_from(other).unwrap(),
            PubSubError::InvalidJid
        );
        round_trip(
            "<closed-node xmlns='http://jabber.org/protocol/pubsub#errors'/>",
            &PubSubError::ClosedNode,
        );
    }

    #[test]
    fn example_19_unsupported_feature() {
        let (cond, other) = condition_of(
            "<error xmlns='jabber:component:accept' type='cancel'>
               <feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
               <unsupported xmlns='http://jabber.org/protocol/pubsub#errors'
                            feature='retrieve-subscriptions'/>
             </error>",
        );
        assert_eq!(cond, DefinedCondition::FeatureNotImplemented);
        let expected = PubSubError::Unsupported {
            feature: "retrieve-subscriptions".into(),
        };
        assert_eq!(PubSubError::try_from(other.clone()).unwrap(), expected);
        assert_eq!(Element::from(expected), other);
    }

    #[test]
    fn every_condition_of_the_schema() {
        for (name, c) in [
            ("configuration-required", PubSubError::ConfigurationRequired),
            ("invalid-options", PubSubError::InvalidOptions),
            ("invalid-payload", PubSubError::InvalidPayload),
            ("invalid-subid", PubSubError::InvalidSubid),
            ("item-forbidden", PubSubError::ItemForbidden),
            ("item-required", PubSubError::ItemRequired),
            ("jid-required", PubSubError::JidRequired),
            ("max-items-exceeded", PubSubError::MaxItemsExceeded),
            ("max-nodes-exceeded", PubSubError::MaxNodesExceeded),
            ("nodeid-required", PubSubError::NodeIdRequired),
            ("not-in-roster-group", PubSubError::NotInRosterGroup),
            ("not-subscribed", PubSubError::NotSubscribed),
            ("payload-too-big", PubSubError::PayloadTooBig),
            ("payload-required", PubSubError::PayloadRequired),
            ("pending-subscription", PubSubError::PendingSubscription),
            ("precondition-not-met", PubSubError::PreconditionNotMet),
            (
                "presence-subscription-required",
                PubSubError::PresenceSubscriptionRequired,
            ),
            ("subid-required", PubSubError::SubidRequired),
            ("too-many-subscriptions", PubSubError::TooManySubscriptions),
            (
                "unsupported-access-model",
                PubSubError::UnsupportedAccessModel,
            ),
        ] {
            round_trip(
                &format!("<{name} xmlns='http://jabber.org/protocol/pubsub#errors'/>"),
                &c,
            );
        }
    }

    #[test]
    fn unknown_conditions_and_missing_features_are_refused() {
        for xml in [
            "<on-fire xmlns='http://jabber.org/protocol/pubsub#errors'/>",
            "<unsupported xmlns='http://jabber.org/protocol/pubsub#errors'/>",
        ] {
            assert!(PubSubError::try_from(example(xml)).is_err(), "{xml}");
        }
    }
}
