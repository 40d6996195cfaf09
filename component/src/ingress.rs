//! Checks on a raw element from the link before anything is parsed further: nesting depth,
//! stanza kind, the payload count of an IQ request, and conversion to a typed stanza.
//!
//! A stanza that breaks the rules gets an error where it has an id and a sender and is not
//! itself an error or a result (RFC 6120 §8.3.1).

use minidom::Element;
use roost_nodes::Jid;
use tracing::{debug, warn};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Id, Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;

use crate::errors::{refusal, Refusal};

/// Deepest element nesting accepted in a stanza (the stanza itself is level 1). Real payloads
/// stay far below; the limit exists because parsing, cloning, printing and dropping a
/// minidom tree all recurse once per level, so a client sending 10 000 nested elements
/// (well within the servers' stanza size limits) would otherwise overflow the stack and abort
/// the process.
pub const MAX_DEPTH: usize = 128;

/// What becomes of a raw element.
// Both stanza variants are large; they are moved once, straight to their handler.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Admission {
    /// A well-formed stanza, to handle.
    Handle(Stanza),
    /// Refused: this error reply goes back.
    Refuse(Stanza),
    /// Dropped: not a stanza of the component stream, or refused with nobody to answer.
    Drop,
}

impl Admission {
    fn refused(reply: Option<Stanza>) -> Self {
        reply.map_or(Admission::Drop, Admission::Refuse)
    }
}

/// What to do with `el`; `me` is the service, the sender of any error reply.
pub fn admit(el: Element, me: &Jid) -> Admission {
    if nested_deeper_than(&el, MAX_DEPTH) {
        let head = Head::of(&el);
        dismantle(el);
        warn!(from = ?head.from, "<{}/> nested deeper than {MAX_DEPTH} levels refused", head.name);
        return Admission::refused(head.refuse(me, Refusal::TooDeep(MAX_DEPTH)));
    }
    let name = el.name();
    if el.ns() != xmpp_parsers::ns::COMPONENT || !matches!(name, "iq" | "message" | "presence") {
        debug!("ignoring <{name} xmlns='{}'/> from the server", el.ns());
        return Admission::Drop;
    }
    let head = Head::of(&el);
    if head.name == "iq" && matches!(head.type_.as_deref(), Some("get") | Some("set")) {
        let payloads = el.children().count();
        if payloads != 1 {
            warn!(from = ?head.from, "iq {} with {payloads} payloads refused", head.type_.as_deref().unwrap_or(""));
            return Admission::refused(head.refuse(me, Refusal::PayloadCount(payloads)));
        }
    }
    let parsed = match head.name.as_str() {
        "iq" => Iq::try_from(el).map(Stanza::Iq).map_err(|e| e.to_string()),
        "message" => Message::try_from(el)
            .map(Stanza::Message)
            .map_err(|e| e.to_string()),
        _ => Presence::try_from(el)
            .map(Stanza::Presence)
            .map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(st) => Admission::Handle(st),
        Err(e) => {
            warn!(from = ?head.from, "malformed <{}/> refused: {e}", head.name);
            Admission::refused(head.refuse(me, Refusal::Malformed(e)))
        }
    }
}

/// What an error reply needs of a stanza that could not be handled.
struct Head {
    name: String,
    from: Option<String>,
    id: Option<String>,
    type_: Option<String>,
}

impl Head {
    fn of(el: &Element) -> Self {
        Head {
            name: el.name().to_owned(),
            from: el.attr("from").map(str::to_owned),
            id: el.attr("id").map(str::to_owned),
            type_: el.attr("type").map(str::to_owned),
        }
    }

    /// The error reply, of the stanza's own kind; `None` when it has no sender or id, or is
    /// an error or a result itself.
    fn refuse(self, me: &Jid, why: Refusal) -> Option<Stanza> {
        let from: Jid = self.from?.parse().ok()?;
        let id = self.id?;
        if matches!(self.type_.as_deref(), Some("error") | Some("result")) {
            return None;
        }
        let error = refusal(&why);
        let me = Some(me.clone());
        Some(match self.name.as_str() {
            "iq" => Iq::Error {
                from: me,
                to: Some(from),
                id,
                payload: None,
                error,
            }
            .into(),
            "message" => {
                let mut m = Message::new(Some(from));
                m.from = me;
                m.id = Some(Id(id));
                m.type_ = MessageType::Error;
                m.payloads.push(error.into());
                m.into()
            }
            _ => {
                let mut p = Presence::new(PresenceType::Error);
                p.from = me;
                p.to = Some(from);
                p.id = Some(id);
                p.payloads.push(error.into());
                p.into()
            }
        })
    }
}

/// True if `el` nests deeper than `max` levels; iterative, for the reason above.
fn nested_deeper_than(el: &Element, max: usize) -> bool {
    let mut stack = vec![(el, 1usize)];
    while let Some((e, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        stack.extend(e.children().map(|c| (c, depth + 1)));
    }
    false
}

/// Drop a tree without recursion (minidom's drop recurses once per level).
fn dismantle(el: Element) {
    let mut stack = vec![el];
    while let Some(mut e) = stack.pop() {
        for node in e.take_nodes() {
            if let minidom::Node::Element(child) = node {
                stack.push(child);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::stanza_error::DefinedCondition;

    fn me() -> Jid {
        "pubsub.localhost".parse().unwrap()
    }

    fn condition(r: Admission) -> Option<DefinedCondition> {
        match r {
            Admission::Refuse(Stanza::Iq(Iq::Error { error, .. })) => Some(error.defined_condition),
            Admission::Refuse(Stanza::Message(m)) => m
                .payloads
                .iter()
                .find(|p| p.name() == "error")
                .map(|_| DefinedCondition::BadRequest),
            _ => None,
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        // Built inside out, so that building it does not recurse either.
        let mut payload = Element::bare("a", "urn:x");
        for _ in 0..100_000 {
            payload = Element::builder("a", "urn:x").append(payload).build();
        }
        let mut iq: Element = "<iq xmlns='jabber:component:accept' type='set' id='deep' \
                               from='alice@localhost/r' to='pubsub.localhost'/>"
            .parse()
            .unwrap();
        iq.append_child(payload);
        assert_eq!(
            condition(admit(iq, &me())),
            Some(DefinedCondition::PolicyViolation)
        );
    }

    #[test]
    fn an_iq_request_has_exactly_one_payload() {
        for body in [
            "",
            "<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>",
        ] {
            let iq: Element = format!(
                "<iq xmlns='jabber:component:accept' type='get' id='i' \
                 from='alice@localhost/r' to='pubsub.localhost'>{body}</iq>"
            )
            .parse()
            .unwrap();
            assert_eq!(
                condition(admit(iq, &me())),
                Some(DefinedCondition::BadRequest)
            );
        }
    }

    #[test]
    fn what_cannot_be_answered_is_dropped_silently() {
        for xml in [
            // Not a stanza of the component stream.
            "<iq xmlns='jabber:client' type='get' id='i' from='a@localhost/r'/>",
            // An error is never answered, even a malformed one (no <error/>).
            "<iq xmlns='jabber:component:accept' type='error' id='i' from='a@localhost/r'/>",
            // Nobody to answer.
            "<iq xmlns='jabber:component:accept' type='get' id='i'/>",
        ] {
            let el: Element = xml.parse().unwrap();
            assert!(matches!(admit(el, &me()), Admission::Drop), "{xml}");
        }
    }

    #[test]
    fn a_malformed_message_is_answered_with_a_message_error() {
        let el: Element = "<message xmlns='jabber:component:accept' type='bogus' id='m' \
                           from='a@localhost/r'/>"
            .parse()
            .unwrap();
        match admit(el, &me()) {
            Admission::Refuse(Stanza::Message(m)) => {
                assert_eq!(m.type_, MessageType::Error);
                assert_eq!(m.id, Some(Id("m".into())));
            }
            other => panic!("{other:?}"),
        }
    }
}
