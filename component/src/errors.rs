//! The one table of stanza errors: every error Roost sends is built here.
//!
//! Two kinds of refusal reach a requester: the engine's ([`roost_nodes::Error`], XEP-0060
//! §§6–8 error cases, §14), mapped by [`stanza_error`], and the component's own, decided
//! before or around the engine (rate limit, recovery, a malformed stanza, …), listed in
//! [`Refusal`] and mapped by [`refusal`]. Parse-level failures of a request use
//! `bad_request`, `bad_request_with` and `unsupported`.
//!
//! The application-specific child (`<closed-node xmlns='http://jabber.org/protocol/pubsub#errors'/>`
//! etc.) is a [`crate::xml::pubsub_errors::PubSubError`], put in `StanzaError::other`.

use roost_nodes::Error;
use xmpp_parsers::stanza_error::{DefinedCondition as C, ErrorType as T, StanzaError};

use crate::xml::pubsub_errors::PubSubError as P;

/// A refusal the component decides itself, with no engine error behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The requester's bare JID is over its request rate (`--rate-limit`).
    RateLimited,
    /// The engine is being rebuilt from the store after a storage failure.
    Recovering,
    /// The flush of the request's batch failed: its change may not be durable.
    NotDurable,
    /// An IQ payload namespace no part of the service handles.
    NotHandled(String),
    /// A stanza nested deeper than the limit (the limit).
    TooDeep(usize),
    /// A stanza larger than the limit (the limit, in bytes).
    TooLarge(usize),
    /// An IQ get or set with other than exactly one payload (how many).
    PayloadCount(usize),
    /// A stanza that does not parse (why).
    Malformed(String),
    /// A XEP-0313 query without a node: only nodes keep archives here.
    ServiceArchive,
    /// A XEP-0313 query form Roost does not offer (what).
    MamNotOffered(&'static str),
    /// An XEP-0413 order field Roost does not offer (the field).
    OrderNotOffered(String),
}

/// The stanza error for a component refusal.
///
/// - `RateLimited`: `wait`/`resource-constraint` (RFC 6120 §8.3.3.18: the requester may
///   retry once under the rate).
/// - `Recovering`, `NotDurable`: `wait`/`internal-server-error`, as an engine storage failure.
/// - `NotHandled`: `cancel`/`service-unavailable` (RFC 6120 §8.4: a namespace nobody here
///   understands); `ServiceArchive` likewise (XEP-0313 §5: the service archives no messages).
/// - `TooDeep`, `TooLarge`: `modify`/`policy-violation` (RFC 6120 §8.3.3.12: a local
///   policy, the limit named in the text); `PayloadCount` and `Malformed`:
///   `modify`/`bad-request` (RFC 6120 §8.3.1).
/// - `MamNotOffered`: `cancel`/`feature-not-implemented`.
/// - `OrderNotOffered`: `cancel`/`feature-not-implemented`. XEP-0413 names no error for an
///   order field the service lacks (§extending: a client "should not assume that other
///   ordering than creation and modification are available"); RFC 6120 §8.3.3.3's
///   condition for a feature not implemented is the one that says so.
pub fn refusal(r: &Refusal) -> StanzaError {
    match r {
        Refusal::RateLimited => plain(
            T::Wait,
            C::ResourceConstraint,
            "too many requests from this JID; slow down and retry".to_owned(),
        ),
        Refusal::Recovering => plain(
            T::Wait,
            C::InternalServerError,
            "storage failure: the service is recovering; retry later".to_owned(),
        ),
        Refusal::NotDurable => plain(
            T::Wait,
            C::InternalServerError,
            "storage failure: the change may not be durable; retry later".to_owned(),
        ),
        Refusal::NotHandled(ns) => plain(
            T::Cancel,
            C::ServiceUnavailable,
            format!("{ns} is not handled by this service"),
        ),
        Refusal::TooDeep(max) => plain(
            T::Modify,
            C::PolicyViolation,
            format!("XML nested deeper than {max} levels is refused"),
        ),
        Refusal::TooLarge(max) => plain(
            T::Modify,
            C::PolicyViolation,
            format!("a stanza larger than {max} bytes is refused"),
        ),
        Refusal::PayloadCount(n) => bad_request(format!(
            "an iq get/set carries exactly one payload, not {n}"
        )),
        Refusal::Malformed(why) => bad_request(format!("malformed stanza: {why}")),
        Refusal::ServiceArchive => plain(
            T::Cancel,
            C::ServiceUnavailable,
            "this service keeps archives per node only: name a node".to_owned(),
        ),
        Refusal::MamNotOffered(what) => {
            plain(T::Cancel, C::FeatureNotImplemented, (*what).to_owned())
        }
        Refusal::OrderNotOffered(by) => plain(
            T::Cancel,
            C::FeatureNotImplemented,
            format!("order field {by:?} is not offered: only creation and modification"),
        ),
    }
}

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
        Error::NodeIdRequired => with(T::Modify, C::BadRequest, P::NodeIdRequired, text),
        // Examples 37, 57, 105, 119, 161.
        Error::Forbidden | Error::Outcast | Error::PublishForbidden => {
            plain(T::Auth, C::Forbidden, text)
        }
        // Example 33.
        Error::ClosedNode => with(T::Cancel, C::NotAllowed, P::ClosedNode, text),
        // Example 30.
        Error::InvalidJid => with(T::Modify, C::BadRequest, P::InvalidJid, text),
        // Example 50.
        Error::NotSubscribed => with(T::Cancel, C::UnexpectedRequest, P::NotSubscribed, text),
        // Examples 49, 60, 84.
        Error::SubIdRequired => with(T::Modify, C::BadRequest, P::SubidRequired, text),
        // Examples 53, 61, 85.
        Error::InvalidSubId => with(T::Modify, C::NotAcceptable, P::InvalidSubid, text),
        // §6.5.9 "Entity Not Subscribed" (authorize nodes).
        Error::NotAuthorizedSubscriber => with(T::Auth, C::NotAuthorized, P::NotSubscribed, text),
        // Examples 31 and 89 (§6.1.3, §6.5.9 "Presence Subscription Required").
        Error::PresenceSubscriptionRequired => with(
            T::Auth,
            C::NotAuthorized,
            P::PresenceSubscriptionRequired,
            text,
        ),
        // Examples 32 and 90 (§6.1.3, §6.5.9 "Not in Roster Group").
        Error::NotInRosterGroup => with(T::Auth, C::NotAuthorized, P::NotInRosterGroup, text),
        // The component fetches the rosters and asks again, so this reaches a requester only
        // if the rosters did not come: a transient condition, retrying may help.
        Error::RosterNeeded(_) => plain(
            T::Wait,
            C::InternalServerError,
            "the node owner's roster is not available yet; retry later".to_owned(),
        ),
        // Example 36.
        Error::PendingSubscription => with(T::Auth, C::NotAuthorized, P::PendingSubscription, text),
        // Example 110.
        Error::InvalidPayload => with(T::Modify, C::BadRequest, P::InvalidPayload, text),
        // Examples 111, 122.
        Error::ItemRequired | Error::ItemIdRequired => {
            with(T::Modify, C::BadRequest, P::ItemRequired, text)
        }
        // Example 112.
        Error::PayloadRequired => with(T::Modify, C::BadRequest, P::PayloadRequired, text),
        // Example 113.
        Error::ItemForbidden => with(T::Modify, C::BadRequest, P::ItemForbidden, text),
        // Example 109.
        Error::PayloadTooBig { .. } => with(T::Modify, C::NotAcceptable, P::PayloadTooBig, text),
        // §7.1.5.
        Error::PreconditionNotMet { .. } => {
            with(T::Cancel, C::Conflict, P::PreconditionNotMet, text)
        }
        // Example 149.
        Error::InvalidConfig(_) => plain(T::Modify, C::NotAcceptable, text),
        // Example 66.
        Error::InvalidOptions(_) => with(T::Modify, C::BadRequest, P::InvalidOptions, text),
        // Roost's content filters (`x-roost#filter`, feature `urn:roost:filter:0`): the
        // text is the parser's "at N: why".
        Error::InvalidFilter(_) => plain(T::Modify, C::NotAcceptable, text),
        // Examples 19, 39, 126, 205.
        Error::Unsupported(feature) => unsupported(feature),
        // Example 136.
        Error::UnsupportedAccessModel => {
            with(T::Modify, C::NotAcceptable, P::UnsupportedAccessModel, text)
        }
        // Example 128.
        Error::CreateForbidden => plain(T::Auth, C::Forbidden, text),
        // Example 38 for subscriptions; see above for other caps.
        Error::LimitReached(what) if what.contains("subscription") => {
            with(T::Wait, C::PolicyViolation, P::TooManySubscriptions, text)
        }
        Error::LimitReached(_) => plain(T::Cancel, C::PolicyViolation, text),
        // §16.4.4 (pubsub#max_items above the service's cap).
        Error::MaxItemsExceeded => with(T::Modify, C::NotAcceptable, P::MaxItemsExceeded, text),
        // Examples 123, 168.
        Error::NotPersistent => unsupported("persistent-items"),
        // XEP-0248 examples 27, 30, 31, 41.
        Error::InvalidCollection(_) => with(T::Cancel, C::NotAllowed, P::InvalidOptions, text),
        // XEP-0248 examples 29, 40.
        Error::MaxNodesExceeded(_) => with(T::Cancel, C::NotAllowed, P::MaxNodesExceeded, text),
        // XEP-0248 example 44.
        Error::NotAssociated { .. } => plain(T::Modify, C::BadRequest, text),
        // XEP-0248 example 36.
        Error::RootNode => plain(T::Cancel, C::NotAllowed, text),
        // XEP-0248 example 15.
        Error::SubscriptionExists(_) => plain(T::Cancel, C::Conflict, text),
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
        P::Unsupported {
            feature: feature.to_owned(),
        }
        .into(),
    );
    e
}

/// A plain `bad-request` for malformed requests the engine never sees.
pub(crate) fn bad_request(text: impl Into<String>) -> StanzaError {
    plain(T::Modify, C::BadRequest, text.into())
}

/// `bad-request` with a pubsub#errors child, for parse-level failures such as
/// `jid-required` (example 59) that have no engine error.
pub(crate) fn bad_request_with(condition: P, text: impl Into<String>) -> StanzaError {
    with(T::Modify, C::BadRequest, condition, text.into())
}

fn plain(type_: T, condition: C, text: String) -> StanzaError {
    StanzaError::new(type_, condition, "en", text)
}

fn with(type_: T, condition: C, pubsub_condition: P, text: String) -> StanzaError {
    let mut e = plain(type_, condition, text);
    e.other = Some(pubsub_condition.into());
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;
    use roost_nodes::StoreError;
    use xmpp_parsers::ns::PUBSUB_ERRORS as NS_PUBSUB_ERRORS;

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
    fn invalid_filter_says_where_and_why() {
        let parse = roost_nodes::filter::Filter::parse("@level = ").unwrap_err();
        let why = parse.to_string();
        assert!(why.starts_with("at 9: "), "{why}");
        check(
            Error::InvalidFilter(parse),
            T::Modify,
            C::NotAcceptable,
            None,
        );
        let e = stanza_error(&Error::InvalidFilter(
            roost_nodes::filter::Filter::parse("@level = ").unwrap_err(),
        ));
        assert!(e.texts.values().any(|t| t == &why), "{:?}", e.texts);
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
    fn refusals() {
        let cases = [
            (Refusal::RateLimited, T::Wait, C::ResourceConstraint),
            (Refusal::Recovering, T::Wait, C::InternalServerError),
            (Refusal::NotDurable, T::Wait, C::InternalServerError),
            (
                Refusal::NotHandled("urn:x".into()),
                T::Cancel,
                C::ServiceUnavailable,
            ),
            (Refusal::TooDeep(128), T::Modify, C::PolicyViolation),
            (Refusal::TooLarge(1 << 20), T::Modify, C::PolicyViolation),
            (Refusal::PayloadCount(2), T::Modify, C::BadRequest),
            (Refusal::Malformed("x".into()), T::Modify, C::BadRequest),
            (Refusal::ServiceArchive, T::Cancel, C::ServiceUnavailable),
            (
                Refusal::MamNotOffered("flip-page is not offered"),
                T::Cancel,
                C::FeatureNotImplemented,
            ),
            (
                Refusal::OrderNotOffered("{urn:x}rating".to_owned()),
                T::Cancel,
                C::FeatureNotImplemented,
            ),
        ];
        for (r, type_, cond) in cases {
            let e = refusal(&r);
            assert_eq!(
                (e.type_.clone(), e.defined_condition.clone()),
                (type_, cond),
                "{r:?}"
            );
            assert!(e.other.is_none(), "{r:?}");
        }
    }

    #[test]
    fn storage_detail_not_leaked() {
        let e = stanza_error(&Error::Storage(StoreError("secret path".into())));
        assert!(!e.texts.values().any(|t| t.contains("secret")));
    }
}
