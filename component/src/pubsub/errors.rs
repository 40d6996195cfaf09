//! The one table from engine errors to stanza errors (XEP-0060 §§6–8 error cases, §14).
//!
//! xmpp-parsers 0.23 has no typed `pubsub#errors` conditions, so the application-specific
//! child (`<closed-node xmlns='http://jabber.org/protocol/pubsub#errors'/>` etc.) is built by
//! hand here and put in `StanzaError::other`.

use minidom::Element;
use roost_nodes::Error;
use xmpp_parsers::stanza_error::{DefinedCondition as C, ErrorType as T, StanzaError};

use super::{attr, NS_PUBSUB_ERRORS};

/// The stanza error for an engine error.
///
/// Types and conditions follow the XEP-0060 examples cited per row. Where the XEP leaves a
/// choice:
/// - `NotSubscribed`: the XEP uses three variants (examples 50, 58, 86); we answer
///   `cancel`/`unexpected-request` as for unsubscribe (example 50), the most common case.
/// - `LimitReached`: `policy-violation`. For a subscription cap it is `wait` plus
///   `<too-many-subscriptions/>` (example 38); any other cap (nodes per JID, …) has no
///   pubsub condition and is `cancel`, since retrying will not help.
/// - `CreateForbidden`: `auth`/`forbidden` as example 128 (not `not-allowed`).
/// - `PreconditionNotMet`: `cancel`/`conflict` (§7.1.5 gives no example; a retry with the
///   same preconditions cannot succeed).
/// - `Storage`: `wait`/`internal-server-error`; the store detail is logged, not sent.
pub fn stanza_error(err: &Error) -> StanzaError {
    let text = err.to_string();
    match err {
        // Examples 41, 94, 95, 120, 162.
        Error::NodeNotFound | Error::ItemNotFound => plain(T::Cancel, C::ItemNotFound, text),
        // Example 129.
        Error::NodeExists => plain(T::Cancel, C::Conflict, text),
        // Examples 121, 143.
        Error::NodeIdRequired => with(T::Modify, C::BadRequest, "nodeid-required", text),
        // Examples 37, 57, 105, 119, 161.
        Error::Forbidden | Error::Outcast | Error::PublishForbidden => {
            plain(T::Auth, C::Forbidden, text)
        }
        // Example 33.
        Error::ClosedNode => with(T::Cancel, C::NotAllowed, "closed-node", text),
        // Example 30.
        Error::InvalidJid => with(T::Modify, C::BadRequest, "invalid-jid", text),
        // Example 50.
        Error::NotSubscribed => with(T::Cancel, C::UnexpectedRequest, "not-subscribed", text),
        // Examples 49, 60, 84.
        Error::SubIdRequired => with(T::Modify, C::BadRequest, "subid-required", text),
        // Examples 53, 61, 85.
        Error::InvalidSubId => with(T::Modify, C::NotAcceptable, "invalid-subid", text),
        // §6.5.9 "Entity Not Subscribed" (authorize nodes).
        Error::NotAuthorizedSubscriber => with(T::Auth, C::NotAuthorized, "not-subscribed", text),
        // Examples 31 and 89 (§6.1.3, §6.5.9 "Presence Subscription Required").
        Error::PresenceSubscriptionRequired => with(
            T::Auth,
            C::NotAuthorized,
            "presence-subscription-required",
            text,
        ),
        // Examples 32 and 90 (§6.1.3, §6.5.9 "Not in Roster Group").
        Error::NotInRosterGroup => with(T::Auth, C::NotAuthorized, "not-in-roster-group", text),
        // The component fetches the rosters and asks again, so this reaches a requester only
        // if the rosters did not come: a transient condition, retrying may help.
        Error::RosterNeeded(_) => plain(
            T::Wait,
            C::InternalServerError,
            "the node owner's roster is not available yet; retry later".to_owned(),
        ),
        // Example 36.
        Error::PendingSubscription => with(T::Auth, C::NotAuthorized, "pending-subscription", text),
        // Example 110.
        Error::InvalidPayload => with(T::Modify, C::BadRequest, "invalid-payload", text),
        // Examples 111, 122.
        Error::ItemRequired | Error::ItemIdRequired => {
            with(T::Modify, C::BadRequest, "item-required", text)
        }
        // Example 112.
        Error::PayloadRequired => with(T::Modify, C::BadRequest, "payload-required", text),
        // Example 113.
        Error::ItemForbidden => with(T::Modify, C::BadRequest, "item-forbidden", text),
        // Example 109.
        Error::PayloadTooBig { .. } => with(T::Modify, C::NotAcceptable, "payload-too-big", text),
        // §7.1.5.
        Error::PreconditionNotMet { .. } => {
            with(T::Cancel, C::Conflict, "precondition-not-met", text)
        }
        // Example 149.
        Error::InvalidConfig(_) => plain(T::Modify, C::NotAcceptable, text),
        // Example 66.
        Error::InvalidOptions(_) => with(T::Modify, C::BadRequest, "invalid-options", text),
        // Roost's content filters (`x-roost#filter`, feature `urn:roost:filter:0`): the
        // text is the parser's "at N: why".
        Error::InvalidFilter(_) => plain(T::Modify, C::NotAcceptable, text),
        // Examples 19, 39, 126, 205.
        Error::Unsupported(feature) => unsupported(feature),
        // Example 136.
        Error::UnsupportedAccessModel => with(
            T::Modify,
            C::NotAcceptable,
            "unsupported-access-model",
            text,
        ),
        // Example 128.
        Error::CreateForbidden => plain(T::Auth, C::Forbidden, text),
        // Example 38 for subscriptions; see above for other caps.
        Error::LimitReached(what) if what.contains("subscription") => {
            with(T::Wait, C::PolicyViolation, "too-many-subscriptions", text)
        }
        Error::LimitReached(_) => plain(T::Cancel, C::PolicyViolation, text),
        // §16.4.4 (pubsub#max_items above the service's cap).
        Error::MaxItemsExceeded => with(T::Modify, C::NotAcceptable, "max-items-exceeded", text),
        // Examples 123, 168.
        Error::NotPersistent => unsupported("persistent-items"),
        Error::BadRequest(_) => plain(T::Modify, C::BadRequest, text),
        Error::Storage(e) => {
            tracing::error!(error = %e, "storage failure");
            plain(
                T::Wait,
                C::InternalServerError,
                "temporary storage failure".to_owned(),
            )
        }
    }
}

/// `feature-not-implemented` with `<unsupported feature='…'/>` (§14 "unsupported").
pub(crate) fn unsupported(feature: &str) -> StanzaError {
    let mut e = plain(
        T::Cancel,
        C::FeatureNotImplemented,
        format!("unsupported feature {feature}"),
    );
    e.other = Some(
        attr(
            Element::builder("unsupported", NS_PUBSUB_ERRORS),
            "feature",
            feature,
        )
        .build(),
    );
    e
}

/// A plain `bad-request` for malformed requests the engine never sees.
pub(crate) fn bad_request(text: impl Into<String>) -> StanzaError {
    plain(T::Modify, C::BadRequest, text.into())
}

/// `bad-request` with a pubsub#errors child, for parse-level failures such as
/// `jid-required` (example 59) that have no engine error.
pub(crate) fn bad_request_with(condition: &str, text: impl Into<String>) -> StanzaError {
    with(T::Modify, C::BadRequest, condition, text.into())
}

fn plain(type_: T, condition: C, text: String) -> StanzaError {
    StanzaError::new(type_, condition, "en", text)
}

fn with(type_: T, condition: C, pubsub_condition: &str, text: String) -> StanzaError {
    let mut e = plain(type_, condition, text);
    e.other = Some(Element::bare(pubsub_condition, NS_PUBSUB_ERRORS));
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_nodes::StoreError;

    fn check(err: Error, type_: T, cond: C, child: Option<&str>) {
        let e = stanza_error(&err);
        assert_eq!(e.type_, type_, "{err:?}");
        assert_eq!(e.defined_condition, cond, "{err:?}");
        match child {
            None => assert!(e.other.is_none(), "{err:?}"),
            Some(c) => {
                let o = e.other.as_ref().expect("pubsub#errors child");
                assert!(o.is(c, NS_PUBSUB_ERRORS), "{err:?}: {o:?}");
            }
        }
        // Serializes as a stanza error element.
        let _: Element = e.into();
    }

    #[test]
    fn table() {
        use Error::*;
        check(NodeNotFound, T::Cancel, C::ItemNotFound, None);
        check(ItemNotFound, T::Cancel, C::ItemNotFound, None);
        check(NodeExists, T::Cancel, C::Conflict, None);
        check(
            NodeIdRequired,
            T::Modify,
            C::BadRequest,
            Some("nodeid-required"),
        );
        check(Forbidden, T::Auth, C::Forbidden, None);
        check(Outcast, T::Auth, C::Forbidden, None);
        check(PublishForbidden, T::Auth, C::Forbidden, None);
        check(ClosedNode, T::Cancel, C::NotAllowed, Some("closed-node"));
        check(InvalidJid, T::Modify, C::BadRequest, Some("invalid-jid"));
        check(
            NotSubscribed,
            T::Cancel,
            C::UnexpectedRequest,
            Some("not-subscribed"),
        );
        check(
            SubIdRequired,
            T::Modify,
            C::BadRequest,
            Some("subid-required"),
        );
        check(
            InvalidSubId,
            T::Modify,
            C::NotAcceptable,
            Some("invalid-subid"),
        );
        check(
            PresenceSubscriptionRequired,
            T::Auth,
            C::NotAuthorized,
            Some("presence-subscription-required"),
        );
        check(
            NotInRosterGroup,
            T::Auth,
            C::NotAuthorized,
            Some("not-in-roster-group"),
        );
        check(RosterNeeded(vec![]), T::Wait, C::InternalServerError, None);
        check(
            NotAuthorizedSubscriber,
            T::Auth,
            C::NotAuthorized,
            Some("not-subscribed"),
        );
        check(
            PendingSubscription,
            T::Auth,
            C::NotAuthorized,
            Some("pending-subscription"),
        );
        check(
            InvalidPayload,
            T::Modify,
            C::BadRequest,
            Some("invalid-payload"),
        );
        check(
            ItemRequired,
            T::Modify,
            C::BadRequest,
            Some("item-required"),
        );
        check(
            ItemIdRequired,
            T::Modify,
            C::BadRequest,
            Some("item-required"),
        );
        check(
            PayloadRequired,
            T::Modify,
            C::BadRequest,
            Some("payload-required"),
        );
        check(
            ItemForbidden,
            T::Modify,
            C::BadRequest,
            Some("item-forbidden"),
        );
        check(
            PayloadTooBig { limit: 10 },
            T::Modify,
            C::NotAcceptable,
            Some("payload-too-big"),
        );
        check(
            PreconditionNotMet {
                field: "pubsub#access_model".into(),
            },
            T::Cancel,
            C::Conflict,
            Some("precondition-not-met"),
        );
        check(InvalidConfig("x".into()), T::Modify, C::NotAcceptable, None);
        check(
            InvalidOptions("x".into()),
            T::Modify,
            C::BadRequest,
            Some("invalid-options"),
        );
        check(
            UnsupportedAccessModel,
            T::Modify,
            C::NotAcceptable,
            Some("unsupported-access-model"),
        );
        check(CreateForbidden, T::Auth, C::Forbidden, None);
        check(
            LimitReached("subscriptions per JID"),
            T::Wait,
            C::PolicyViolation,
            Some("too-many-subscriptions"),
        );
        check(
            LimitReached("nodes per JID"),
            T::Cancel,
            C::PolicyViolation,
            None,
        );
        check(
            MaxItemsExceeded,
            T::Modify,
            C::NotAcceptable,
            Some("max-items-exceeded"),
        );
        check(BadRequest("x".into()), T::Modify, C::BadRequest, None);
        check(
            Storage(StoreError("disk on fire".into())),
            T::Wait,
            C::InternalServerError,
            None,
        );
    }

    #[test]
    fn unsupported_carries_feature() {
        for (err, feature) in [
            (
                Error::Unsupported("member-affiliation"),
                "member-affiliation",
            ),
            (Error::NotPersistent, "persistent-items"),
        ] {
            let e = stanza_error(&err);
            assert_eq!(e.type_, T::Cancel);
            assert_eq!(e.defined_condition, C::FeatureNotImplemented);
            let o = e.other.unwrap();
            assert!(o.is("unsupported", NS_PUBSUB_ERRORS));
            assert_eq!(o.attr("feature"), Some(feature));
        }
    }

    #[test]
    fn storage_detail_not_leaked() {
        let e = stanza_error(&Error::Storage(StoreError("secret path".into())));
        assert!(!e.texts.values().any(|t| t.contains("secret")));
    }
}
