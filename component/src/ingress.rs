//! Checks on a raw element from the link before anything is parsed further: the stanza
//! limits (enforced by [`crate::guard`] while reading, answered here), stanza kind, the
//! payload count of an IQ request, and conversion to a typed stanza.
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
use crate::guard::{self, Exceeded};

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
    if let Some(exceeded) = guard::limit_of(&el) {
        let head = Head::of(&el);
        let why = match exceeded {
            Exceeded::Depth(max) => Refusal::TooDeep(max),
            Exceeded::Size(max) => Refusal::TooLarge(max),
        };
        warn!(from = ?head.from, "<{}/> refused: {why:?}", head.name);
        return Admission::refused(head.refuse(me, why));
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
        "iq" => request(el)
            .or_else(Iq::try_from)
            .map(Stanza::Iq)
            .map_err(|e| e.to_string()),
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

/// An IQ request (`get` or `set`, one payload: checked by [`admit`]) whose attributes are
/// only `from`, `to`, `id`, `type` and `xml:lang`, and whose text is only whitespace, as a typed [`Iq`]
/// with the payload moved over; anything else comes back as it was, for the typed parse to
/// read and judge.
///
/// Why not always the typed parse: it replays the whole element as events and builds its
/// payload anew, a deep copy of every publish (10 % of Roost's CPU under publish load).
/// For the requests taken here it gives the same `Iq` (tested below against it).
#[allow(clippy::result_large_err)]
fn request(mut el: Element) -> Result<Iq, Element> {
    // ejabberd puts xml:lang on what it routes; the typed parse reads it and keeps nothing.
    let lang = el
        .attr_ns(minidom::rxml::Namespace::xml(), "lang")
        .is_some();
    let known = ["from", "to", "id", "type"];
    let plain = el.attrs().len()
        == usize::from(lang) + known.iter().filter(|a| el.attr(**a).is_some()).count()
        && el.texts().all(|t| t.trim().is_empty());
    let jid = |name: &str| el.attr(name).map(str::parse::<Jid>).transpose();
    let (Ok(from), Ok(to), Some(id), true) = (jid("from"), jid("to"), el.attr("id"), plain) else {
        return Err(el);
    };
    let id = id.to_owned();
    let set = match el.attr("type") {
        Some("get") => false,
        Some("set") => true,
        _ => return Err(el),
    };
    let Some(payload) = el.take_nodes().into_iter().find_map(|n| n.into_element()) else {
        // Not reached (admit counted one payload); the typed parse reports it if it were.
        return Err(el);
    };
    Ok(if set {
        Iq::Set {
            from,
            to,
            id,
            payload,
        }
    } else {
        Iq::Get {
            from,
            to,
            id,
            payload,
        }
    })
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

    /// `stanza` as the parser gets it once it has gone through the guard.
    fn guarded(stanza: &str, limits: guard::StanzaLimits) -> Element {
        let mut scanner = guard::Scanner::new(limits);
        let mut out = Vec::new();
        scanner.feed(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
            &mut out,
        );
        let header = out.len();
        scanner.feed(stanza.as_bytes(), &mut out);
        std::str::from_utf8(&out[header..])
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_stanza_beyond_the_limits_is_refused_with_policy_violation() {
        let iq = |payload: &str| {
            format!(
                "<iq xmlns='jabber:component:accept' type='set' id='big' \
                 from='alice@localhost/r' to='pubsub.localhost'>{payload}</iq>"
            )
        };
        let limits = guard::StanzaLimits {
            max_depth: 8,
            max_bytes: 4096,
        };
        let deep = iq(&format!(
            "{}{}",
            "<a xmlns='urn:x'>".repeat(8),
            "</a>".repeat(8)
        ));
        let large = iq(&format!("<a xmlns='urn:x'>{}</a>", "z".repeat(5000)));
        for (xml, text) in [
            (deep, "deeper than 8 levels"),
            (large, "larger than 4096 bytes"),
        ] {
            match admit(guarded(&xml, limits), &me()) {
                Admission::Refuse(Stanza::Iq(Iq::Error { id, error, .. })) => {
                    assert_eq!(id, "big");
                    assert_eq!(error.defined_condition, DefinedCondition::PolicyViolation);
                    let t = error.texts.values().next().unwrap();
                    assert!(t.contains(text), "{t}");
                }
                other => panic!("{other:?}"),
            }
        }
        // Within the limits it is handled (here: a pubsub request with an unknown payload).
        let fine = iq(&format!(
            "{}{}",
            "<a xmlns='urn:x'>".repeat(7),
            "</a>".repeat(7)
        ));
        assert!(matches!(
            admit(guarded(&fine, limits), &me()),
            Admission::Handle(_)
        ));
    }

    #[test]
    fn a_marker_sent_by_a_client_is_just_a_payload() {
        let iq: Element = "<iq xmlns='jabber:component:accept' type='get' id='f' \
                           from='alice@localhost/r' to='pubsub.localhost'>\
                           <depth xmlns='urn:x-roost:limit:0123456789abcdef' max='1'/></iq>"
            .parse()
            .unwrap();
        assert!(matches!(admit(iq, &me()), Admission::Handle(_)));
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
    fn a_plain_request_is_taken_as_the_typed_parse_takes_it() {
        let iq = |attrs: &str, body: &str| -> Element {
            format!("<iq xmlns='jabber:component:accept' {attrs}>{body}</iq>")
                .parse()
                .unwrap()
        };
        let attrs = "type='set' id='p1' from='alice@localhost/r' to='pubsub.localhost'";
        let ping = "<ping xmlns='urn:xmpp:ping'/>";
        // XEP-0060 example 99, with the whitespace a client may send around it.
        let publish = "\n  <pubsub xmlns='http://jabber.org/protocol/pubsub'>\n    \
                       <publish node='princely_musings'><item id='bnd81g37d61f49fgn581'>\
                       <entry xmlns='http://www.w3.org/2005/Atom' xml:lang='en'>\
                       <title>Soliloquy</title><summary>To be, or not to be</summary>\
                       </entry></item></publish></pubsub>\n";
        let disco = "<query xmlns='http://jabber.org/protocol/disco#info'/>";
        let subscribe = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                         <subscribe node='n' jid='a@localhost'/></pubsub>";
        let with = |extra: &str| format!("{attrs} {extra}");
        for el in [
            iq(attrs, publish),
            // As ejabberd routes it.
            iq(&with("xml:lang='en'"), publish),
            iq("type='get' id='d' from='bob@localhost/x'", disco),
            iq(
                "id='s' type='set' to='pubsub.localhost' from='localhost'",
                subscribe,
            ),
        ] {
            let fast = request(el.clone()).expect("taken");
            assert_eq!(Some(fast), Iq::try_from(el).ok());
        }
        // Anything else is left to the typed parse, which reads it as before.
        for el in [
            iq(&with("extra='1'"), ping),
            iq(&with("xml:space='preserve'"), ping),
            iq(attrs, &format!("text{ping}")),
            iq("type='get' id='x' from='@@'", ping),
            iq("type='get' from='a@localhost/r'", ping),
            iq("type='result' id='r' from='a@localhost/r'", ping),
        ] {
            let back = request(el.clone()).expect_err("left to the typed parse");
            assert_eq!(back, el);
        }
        let bad_from = iq("type='get' id='x' from='@@'", ping);
        assert!(matches!(admit(bad_from, &me()), Admission::Drop));
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
