//! Engine notifications → `<message/>` stanzas (§7.1.2.1, §7.2.2.1, §8.2.5.5, §8.4.2,
//! §8.5.2, §8.8.4, §12.5).
//!
//! The SHIM `<headers/>` (XEP-0131), which xmpp-parsers 0.23 lacks, are
//! [`crate::xml::shim::Headers`].

use std::str::FromStr;

use minidom::Element;
use roost_nodes::{Event, Notification, NotificationType, SubscriptionState};
use xmpp_parsers::data_forms::DataFormType;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::event::{Event as PsEvent, Item as EventItem, Payload};
use xmpp_parsers::pubsub::{ItemId, NodeName, Subscription, SubscriptionId};

use super::codec::{format_datetime, payload_element};
use super::forms::{node_config_form, subscribe_authorization_form};
use crate::encoder::StanzaEncoder;
use crate::xml::collections::{EventAssociation, NodeChange, NodeEvent};
use crate::xml::shim::Headers;

/// Serializes notifications for the wire, building and serializing each distinct
/// notification once rather than once per recipient.
///
/// A publish to N subscribers gives N notifications that differ only in `to` (and the
/// message id the component assigns). The message is built with
/// [`notification_message`] (so the XML is xmpp-parsers' own, payload parsed once),
/// serialized once without `to` and `id`, and for each recipient those two attributes are
/// spliced into the message's start tag. Consecutive notifications share the template while
/// their node, event, message type and `include_body` are equal. Notifications that differ
/// per recipient in more than that (SHIM headers for several subids, §12.5; the §8.6
/// authorization form) are built and serialized one by one.
#[derive(Default)]
pub struct NotificationRenderer {
    template: Option<Template>,
}

/// One serialized notification without `to` and `id`, and what it was made from.
struct Template {
    node: String,
    kind: NotificationType,
    include_body: bool,
    collections: Vec<String>,
    event: std::sync::Arc<Event>,
    /// `<message` and its other attributes, up to the start tag's `>` (excluded).
    head: Vec<u8>,
    /// From the start tag's `>` to the end of the message.
    rest: Vec<u8>,
}

impl Template {
    fn matches(&self, n: &Notification) -> bool {
        self.kind == n.kind
            && self.include_body == n.include_body
            && self.node == n.node
            && self.collections == n.collections
            && (std::sync::Arc::ptr_eq(&self.event, &n.event) || self.event == n.event)
    }
}

impl NotificationRenderer {
    /// Append `n`, addressed from `service` with message id `id`, to `out`.
    pub fn render(
        &mut self,
        n: &Notification,
        service: &Jid,
        id: &str,
        enc: &mut StanzaEncoder,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        if !shares_template(n) {
            return enc.encode(&notification_message(n, service, id.to_owned()), out);
        }
        if !self.template.as_ref().is_some_and(|t| t.matches(n)) {
            self.template = Some(self.build(n, service, enc)?);
        }
        let t = self.template.as_ref().expect("just built");
        let start = out.len();
        out.extend_from_slice(&t.head);
        let ok = push_attr(out, "to", n.to.as_str()) && push_attr(out, "id", id);
        if !ok {
            // A character XML cannot carry: let the encoder report it.
            out.truncate(start);
            return enc.encode(&notification_message(n, service, id.to_owned()), out);
        }
        out.extend_from_slice(&t.rest);
        Ok(())
    }

    fn build(
        &self,
        n: &Notification,
        service: &Jid,
        enc: &mut StanzaEncoder,
    ) -> Result<Template, String> {
        let mut m = notification_message(n, service, String::new());
        m.to = None;
        m.id = None;
        let mut bytes = Vec::new();
        enc.encode(&m, &mut bytes)?;
        // The encoder escapes `>` in attribute values, so the first `>` ends the start tag;
        // the message always has children, so the tag is not self-closing.
        let end = bytes
            .iter()
            .position(|&b| b == b'>')
            .filter(|&i| bytes.starts_with(b"<message") && i > 0 && bytes[i - 1] != b'/')
            .ok_or_else(|| "unexpected serialization of a notification".to_owned())?;
        let rest = bytes.split_off(end);
        Ok(Template {
            node: n.node.clone(),
            kind: n.kind,
            include_body: n.include_body,
            collections: n.collections.clone(),
            event: n.event.clone(),
            head: bytes,
            rest,
        })
    }
}

/// True if `n` differs from other recipients' notifications of the same event only in `to`.
fn shares_template(n: &Notification) -> bool {
    if names_subids(n) {
        return false;
    }
    !matches!(
        &*n.event,
        Event::Subscription { jid, state: SubscriptionState::Pending, .. } if &n.to != jid
    )
}

/// Append ` name='value'`, escaped as the stream's encoder (rxml) escapes attribute values.
/// False, with `out` partly written, if `value` holds a character XML 1.0 cannot carry.
fn push_attr(out: &mut Vec<u8>, name: &str, value: &str) -> bool {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    let bytes = value.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\x00'..=b'\x08' | b'\x0b' | b'\x0c' | b'\x0e'..=b'\x1f' => return false,
            // U+FFFE and U+FFFF (EF BF BE/BF) are not XML characters either.
            b'\xbe' | b'\xbf' if i >= 2 && bytes[i - 2] == 0xef && bytes[i - 1] == 0xbf => {
                return false
            }
            b'"' => b"&#34;",
            b'\'' => b"&#39;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'&' => b"&amp;",
            b'\r' => b"&#xd;",
            b'\n' => b"&#xa;",
            b'\t' => b"&#x9;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(esc);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
    out.push(b'\'');
    true
}

/// A notification as a message from `service`, with id `id` (XEP-0060 §7.1.2.1 etc.).
///
/// The message type is the node's `pubsub#notification_type`. When the notification is
/// for several of the recipient's subscriptions, SHIM headers name each SubID (§12.5,
/// example 104); with `pubsub#include_body`, a one-line `<body/>` summarizes the event.
pub fn notification_message(n: &Notification, service: &Jid, id: String) -> Message {
    if let Event::Subscription {
        jid,
        state: SubscriptionState::Pending,
        subid,
        ..
    } = &*n.event
    {
        if &n.to != jid {
            return authorization_request(n, jid, subid.as_deref(), service, id);
        }
    }
    let type_ = match n.kind {
        NotificationType::Headline => MessageType::Headline,
        NotificationType::Normal => MessageType::Normal,
    };
    let mut m = Message::new_with_type(type_, Some(n.to.clone()));
    m.from = Some(service.clone());
    m.id = Some(Id(id));
    if n.include_body {
        m.bodies.insert(Lang::default(), summary(n));
    }
    let mut event: Element = match event_payload(&n.node, &n.event) {
        Some(payload) => PsEvent { payload }.into(),
        None => node_event(&n.node, &n.event),
    };
    if let Event::Delete { redirect: None } = *n.event {
        // xmpp-parsers 0.23 always emits <redirect/>, even with no uri: drop the empty one.
        if let Some(d) = event.get_child_mut("delete", ns::PUBSUB_EVENT) {
            d.remove_child("redirect", ns::PUBSUB_EVENT);
        }
    }
    if let Event::Subscription {
        state: SubscriptionState::None,
        ..
    } = *n.event
    {
        // xmpp-parsers 0.23 treats `none` as the attribute's default and leaves it out, but
        // §8.8.4 (example 172) needs subscription='none' to tell the subscriber it is gone.
        if let (Some(s), Ok(name)) = (
            event.get_child_mut("subscription", ns::PUBSUB_EVENT),
            minidom::rxml::NcName::try_from("subscription"),
        ) {
            s.set_attr(minidom::rxml::Namespace::NONE, name, "none");
        }
    }
    m.payloads.push(event);
    if names_subids(n) || !n.collections.is_empty() {
        // XEP-0248 example 7; XEP-0060 example 104.
        m.payloads
            .push(Headers::notification(&n.collections, &n.subids, names_subids(n)).into());
    }
    m
}

/// Whether `n` names its subids in SHIM headers: when it is for several subscriptions
/// (§12.5), or reached one through its content filter (the subscriber learns which).
fn names_subids(n: &Notification) -> bool {
    n.subids.len() > 1 || n.name_subids
}

/// The XEP-0248 events xmpp-parsers 0.23's `Payload` has no variant for: `<create/>`
/// (§notify-nodes) and `<collection/>` (§notify-associate-dissociate).
fn node_event(node: &str, event: &Event) -> Element {
    let change = match event {
        Event::Collection { child, associate } => NodeChange::Collection {
            node: NodeName(node.to_owned()),
            change: if *associate {
                EventAssociation::Associate {
                    node: NodeName(child.clone()),
                }
            } else {
                EventAssociation::Dissociate {
                    node: NodeName(child.clone()),
                }
            },
        },
        _ => NodeChange::Create {
            node: NodeName(node.to_owned()),
        },
    };
    NodeEvent { change }.into()
}

/// The event as xmpp-parsers' `Payload`; `None` for those it has none for.
fn event_payload(node: &str, event: &Event) -> Option<Payload> {
    let node = NodeName(node.to_owned());
    Some(match event {
        // Examples 100, 101, 226.
        Event::Items {
            items,
            with_payload,
            with_publisher,
        } => Payload::Items {
            node,
            published: items
                .iter()
                .map(|i| EventItem {
                    id: Some(ItemId(i.id.clone())),
                    publisher: with_publisher.then(|| i.shown_publisher()),
                    payload: if *with_payload {
                        payload_element(&i.payload)
                    } else {
                        None
                    },
                })
                .collect(),
            retracted: Vec::new(),
        },
        // Example 117.
        Event::Retract { ids } => Payload::Items {
            node,
            published: Vec::new(),
            retracted: ids.iter().cloned().map(ItemId).collect(),
        },
        // Example 165.
        Event::Purge => Payload::Purge { node },
        // Example 160.
        Event::Delete { redirect } => Payload::Delete {
            node,
            redirect: redirect.clone(),
        },
        // Examples 150, 151.
        Event::Configuration { config } => Payload::Configuration {
            node,
            form: config
                .as_ref()
                .map(|c| node_config_form(c, DataFormType::Result_)),
        },
        // Examples 172, 174, 196.
        Event::Subscription {
            jid,
            state,
            subid,
            expiry,
        } => Payload::Subscription {
            node,
            expiry: expiry.and_then(|ms| format_datetime(ms).parse().ok()),
            jid: Some(jid.clone()),
            subid: subid.clone().map(SubscriptionId),
            subscription: Subscription::from_str(state.as_str()).ok(),
        },
        Event::Create | Event::Collection { .. } => return None,
    })
}

/// The §8.6 approval request to an owner (example 189): a `pubsub#subscribe_authorization`
/// form with the node, the subscriber and its subid, and `pubsub#allow` false. The owner
/// answers by submitting it in a message, with the same message id.
fn authorization_request(
    n: &Notification,
    subscriber: &Jid,
    subid: Option<&str>,
    service: &Jid,
    id: String,
) -> Message {
    let mut m = Message::new_with_type(MessageType::Normal, Some(n.to.clone()));
    m.from = Some(service.clone());
    m.id = Some(Id(id));
    m.bodies.insert(
        Lang::default(),
        format!(
            "{subscriber} asks to subscribe to node {}. Submit the form to allow or deny.",
            n.node
        ),
    );
    let form = subscribe_authorization_form(&n.node, &subscriber.to_string(), subid);
    m.payloads.push(form.into());
    m
}

/// The `pubsub#include_body` line: what happened, for clients that show only bodies.
fn summary(n: &Notification) -> String {
    let node = &n.node;
    match &*n.event {
        Event::Items { items, .. } => {
            let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
            format!("New item published to node {node}: {}", ids.join(", "))
        }
        Event::Retract { ids } => {
            format!("Item retracted from node {node}: {}", ids.join(", "))
        }
        Event::Purge => format!("All items of node {node} were purged"),
        Event::Delete { redirect: None } => format!("Node {node} was deleted"),
        Event::Delete {
            redirect: Some(uri),
        } => format!("Node {node} was deleted; it moved to {uri}"),
        Event::Configuration { .. } => format!("The configuration of node {node} changed"),
        Event::Create => format!("Node {node} was created"),
        Event::Collection {
            child,
            associate: true,
        } => format!("Node {child} joined collection {node}"),
        Event::Collection {
            child,
            associate: false,
        } => format!("Node {child} left collection {node}"),
        Event::Subscription { jid, state, .. } => {
            format!("The subscription of {jid} to node {node} is now {state}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::shim::NS_SHIM;
    use roost_nodes::{Item, NodeConfig};

    fn service() -> Jid {
        "pubsub.shakespeare.lit".parse().unwrap()
    }

    fn notif(event: Event) -> Notification {
        Notification {
            to: "francisco@denmark.lit".parse().unwrap(),
            node: "princely_musings".into(),
            subids: vec![],
            name_subids: false,
            kind: NotificationType::Headline,
            include_body: false,
            collections: Vec::new(),
            event: std::sync::Arc::new(event),
        }
    }

    fn item() -> Item {
        Item {
            id: "ae890ac52d0df67ed7cfdf51b644e901".into(),
            seq: 1,
            first_seq: None,
            publisher: "hamlet@denmark.lit/blogbot".parse().unwrap(),
            published: 0,
            payload: "<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>"
                .into(),
        }
    }

    fn event_of(m: &Message) -> Element {
        m.payloads
            .iter()
            .find(|p| p.is("event", ns::PUBSUB_EVENT))
            .expect("event payload")
            .clone()
    }

    #[test]
    fn example_100_items_with_payload() {
        let m = notification_message(
            &notif(Event::Items {
                items: vec![item()],
                with_payload: true,
                with_publisher: false,
            }),
            &service(),
            "foo".into(),
        );
        assert_eq!(m.type_, MessageType::Headline);
        assert_eq!(m.id, Some(Id("foo".into())));
        assert_eq!(m.from, Some(service()));
        assert_eq!(m.to, Some("francisco@denmark.lit".parse().unwrap()));
        assert!(m.bodies.is_empty());
        let e = event_of(&m);
        let items = e.get_child("items", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(items.attr("node"), Some("princely_musings"));
        let i = items.get_child("item", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(i.attr("id"), Some("ae890ac52d0df67ed7cfdf51b644e901"));
        assert_eq!(i.attr("publisher"), None);
        assert!(i.has_child("entry", "http://www.w3.org/2005/Atom"));
        // And it is a valid message stanza.
        let stanza: Element = m.into();
        assert!(Message::try_from(stanza).is_ok());
    }

    #[test]
    fn example_101_226_no_payload_and_publisher() {
        let mut n = notif(Event::Items {
            items: vec![item()],
            with_payload: false,
            // The item's publisher is hamlet@denmark.lit/blogbot: named by its bare JID.
            with_publisher: true,
        });
        n.kind = NotificationType::Normal;
        let m = notification_message(&n, &service(), "x".into());
        assert_eq!(m.type_, MessageType::Normal);
        let e = event_of(&m);
        let i = e
            .get_child("items", ns::PUBSUB_EVENT)
            .unwrap()
            .get_child("item", ns::PUBSUB_EVENT)
            .unwrap();
        assert_eq!(i.attr("publisher"), Some("hamlet@denmark.lit"));
        assert_eq!(i.children().count(), 0);
    }

    #[test]
    fn example_117_retract_165_purge_160_delete() {
        let m = notification_message(
            &notif(Event::Retract {
                ids: vec!["ae890ac52d0df67ed7cfdf51b644e901".into()],
            }),
            &service(),
            "r".into(),
        );
        let e = event_of(&m);
        let r = e
            .get_child("items", ns::PUBSUB_EVENT)
            .unwrap()
            .get_child("retract", ns::PUBSUB_EVENT)
            .unwrap();
        assert_eq!(r.attr("id"), Some("ae890ac52d0df67ed7cfdf51b644e901"));

        let e = event_of(&notification_message(
            &notif(Event::Purge),
            &service(),
            "p".into(),
        ));
        assert_eq!(
            e.get_child("purge", ns::PUBSUB_EVENT).unwrap().attr("node"),
            Some("princely_musings")
        );

        let e = event_of(&notification_message(
            &notif(Event::Delete {
                redirect: Some("xmpp:hamlet@denmark.lit?;node=blog".into()),
            }),
            &service(),
            "d".into(),
        ));
        let d = e.get_child("delete", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(
            d.get_child("redirect", ns::PUBSUB_EVENT)
                .unwrap()
                .attr("uri"),
            Some("xmpp:hamlet@denmark.lit?;node=blog")
        );
        let e = event_of(&notification_message(
            &notif(Event::Delete { redirect: None }),
            &service(),
            "d".into(),
        ));
        assert!(!e
            .get_child("delete", ns::PUBSUB_EVENT)
            .unwrap()
            .has_child("redirect", ns::PUBSUB_EVENT));
    }

    #[test]
    fn examples_150_151_configuration() {
        let e = event_of(&notification_message(
            &notif(Event::Configuration { config: None }),
            &service(),
            "c".into(),
        ));
        assert_eq!(
            e.get_child("configuration", ns::PUBSUB_EVENT)
                .unwrap()
                .children()
                .count(),
            0
        );
        let e = event_of(&notification_message(
            &notif(Event::Configuration {
                config: Some(NodeConfig::default()),
            }),
            &service(),
            "c".into(),
        ));
        let x = e
            .get_child("configuration", ns::PUBSUB_EVENT)
            .unwrap()
            .get_child("x", ns::DATA_FORMS)
            .unwrap();
        assert_eq!(x.attr("type"), Some("result"));
    }

    #[test]
    fn example_172_subscription() {
        let e = event_of(&notification_message(
            &notif(Event::Subscription {
                jid: "horatio@denmark.lit".parse().unwrap(),
                state: SubscriptionState::Subscribed,
                subid: Some("123-abc".into()),
                expiry: Some(1_154_304_000_000),
            }),
            &service(),
            "approvalnotify1".into(),
        ));
        let s = e.get_child("subscription", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(s.attr("jid"), Some("horatio@denmark.lit"));
        assert_eq!(s.attr("subscription"), Some("subscribed"));
        assert_eq!(s.attr("subid"), Some("123-abc"));
        let expiry = s.attr("expiry").unwrap();
        assert_eq!(
            super::super::codec::parse_datetime(expiry),
            Some(1_154_304_000_000)
        );
    }

    #[test]
    fn s8_8_4_removed_subscription_says_none() {
        let e = event_of(&notification_message(
            &notif(Event::Subscription {
                jid: "polonius@denmark.lit".parse().unwrap(),
                state: SubscriptionState::None,
                subid: None,
                expiry: None,
            }),
            &service(),
            "n1".into(),
        ));
        let s = e.get_child("subscription", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(s.attr("subscription"), Some("none"));
    }

    #[test]
    fn example_104_shim_and_body() {
        let mut n = notif(Event::Items {
            items: vec![item()],
            with_payload: true,
            with_publisher: false,
        });
        n.subids = vec!["123-abc".into(), "004-yyy".into()];
        n.include_body = true;
        let m = notification_message(&n, &service(), "foo".into());
        let headers = m
            .payloads
            .iter()
            .find(|p| p.is("headers", NS_SHIM))
            .unwrap();
        let hs: Vec<_> = headers.children().collect();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].attr("name"), Some("SubID"));
        assert_eq!(hs[0].text(), "123-abc");
        assert_eq!(hs[1].text(), "004-yyy");
        let body = m.bodies.values().next().unwrap();
        assert!(body.contains("princely_musings"));

        // One subid: no headers.
        n.subids = vec!["123-abc".into()];
        let m = notification_message(&n, &service(), "foo".into());
        assert!(!m.payloads.iter().any(|p| p.is("headers", NS_SHIM)));
    }

    #[test]
    fn s8_6_example_189_authorization_request() {
        let service: Jid = "pubsub.shakespeare.lit".parse().unwrap();
        let subscriber: Jid = "horatio@denmark.lit".parse().unwrap();
        let n = Notification {
            to: "hamlet@denmark.lit".parse().unwrap(),
            node: "princely_musings".into(),
            subids: Vec::new(),
            name_subids: false,
            kind: NotificationType::Headline,
            include_body: false,
            collections: Vec::new(),
            event: std::sync::Arc::new(Event::Subscription {
                jid: subscriber.clone(),
                state: SubscriptionState::Pending,
                subid: Some("123-abc".into()),
                expiry: None,
            }),
        };
        let m = notification_message(&n, &service, "approve1".into());
        assert_eq!(m.type_, MessageType::Normal);
        assert!(!m.bodies.is_empty());
        let x = m
            .payloads
            .iter()
            .find(|p| p.is("x", ns::DATA_FORMS))
            .unwrap();
        assert_eq!(x.attr("type"), Some("form"));
        let value = |var: &str| {
            x.children()
                .find(|f| f.attr("var") == Some(var))
                .and_then(|f| f.get_child("value", ns::DATA_FORMS))
                .map(|v| v.text())
        };
        assert_eq!(
            value("FORM_TYPE").as_deref(),
            Some("http://jabber.org/protocol/pubsub#subscribe_authorization")
        );
        assert_eq!(value("pubsub#subid").as_deref(), Some("123-abc"));
        assert_eq!(value("pubsub#node").as_deref(), Some("princely_musings"));
        assert_eq!(
            value("pubsub#subscriber_jid").as_deref(),
            Some("horatio@denmark.lit")
        );
        assert_eq!(value("pubsub#allow").as_deref(), Some("false"));
        assert!(!m.payloads.iter().any(|p| p.is("event", ns::PUBSUB_EVENT)));

        // The same event to the subscriber itself stays a subscription event.
        let to_self = Notification {
            to: subscriber,
            ..n
        };
        let m = notification_message(&to_self, &service, "s".into());
        assert!(m.payloads.iter().any(|p| p.is("event", ns::PUBSUB_EVENT)));
    }

    // ------------------------------------------------------------ NotificationRenderer

    /// Render `ns` with ids n1, n2, ... into one buffer; returns each message's text.
    fn render_all(r: &mut NotificationRenderer, ns: &[Notification]) -> Vec<String> {
        let mut enc = StanzaEncoder::new();
        ns.iter()
            .enumerate()
            .map(|(i, n)| {
                let mut out = Vec::new();
                r.render(n, &service(), &format!("n{}", i + 1), &mut enc, &mut out)
                    .unwrap();
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    /// A rendered message as an element (the stream's default namespace made explicit).
    fn parse_rendered(s: &str) -> Element {
        let rest = s.strip_prefix("<message").expect("a message");
        format!("<message xmlns='jabber:component:accept'{rest}")
            .parse()
            .unwrap()
    }

    fn to(n: Notification, jid: &str) -> Notification {
        Notification {
            to: jid.parse().unwrap(),
            ..n
        }
    }

    #[test]
    fn renderer_exact_xml_and_per_recipient_to_and_id() {
        let n = notif(Event::Items {
            items: vec![item()],
            with_payload: true,
            with_publisher: false,
        });
        let ns = vec![
            n.clone(),
            to(n.clone(), "bernardo@denmark.lit/castle"),
            // Characters an attribute value must escape.
            to(n, "horatio@denmark.lit/it's <&> \"here\""),
        ];
        let mut r = NotificationRenderer::default();
        let out = render_all(&mut r, &ns);
        let body = "><event xmlns='http://jabber.org/protocol/pubsub#event'>\
                    <items node='princely_musings'><item id='ae890ac52d0df67ed7cfdf51b644e901'>\
                    <entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>\
                    </item></items></event></message>";
        let head = "<message from='pubsub.shakespeare.lit' type='headline'";
        assert_eq!(
            out[0],
            format!("{head} to='francisco@denmark.lit' id='n1'{body}")
        );
        assert_eq!(
            out[1],
            format!("{head} to='bernardo@denmark.lit/castle' id='n2'{body}")
        );
        assert_eq!(
            out[2],
            format!(
                "{head} to='horatio@denmark.lit/it&#39;s &lt;&amp;&gt; &#34;here&#34;' \
                 id='n3'{body}"
            )
        );
        // And the escaped JID reads back as the same JID.
        assert_eq!(
            parse_rendered(&out[2]).attr("to"),
            Some("horatio@denmark.lit/it's <&> \"here\"")
        );
    }

    /// Every kind of notification, rendered through the template or not, is the same XML
    /// as the message built for that recipient alone.
    #[test]
    fn renderer_equals_the_message_built_per_recipient() {
        let items = |with_payload, with_publisher| Event::Items {
            items: vec![item()],
            with_payload,
            with_publisher,
        };
        let mut cases = vec![
            notif(items(true, false)),
            notif(items(false, false)),
            notif(items(true, true)),
            notif(Event::Retract {
                ids: vec!["a".into(), "b".into()],
            }),
            notif(Event::Purge),
            notif(Event::Delete { redirect: None }),
            notif(Event::Delete {
                redirect: Some("xmpp:x@y?;node=z".into()),
            }),
            notif(Event::Configuration {
                config: Some(NodeConfig::default()),
            }),
            notif(Event::Subscription {
                jid: "francisco@denmark.lit".parse().unwrap(),
                state: SubscriptionState::None,
                subid: Some("s1".into()),
                expiry: Some(1_154_304_000_000),
            }),
            // The §8.6 form to an owner.
            notif(Event::Subscription {
                jid: "horatio@denmark.lit".parse().unwrap(),
                state: SubscriptionState::Pending,
                subid: Some("s2".into()),
                expiry: None,
            }),
        ];
        let mut body = notif(items(true, false));
        body.include_body = true;
        body.kind = NotificationType::Normal;
        cases.push(body);
        let mut one_subid = notif(items(true, false));
        one_subid.subids = vec!["123-abc".into()];
        cases.push(one_subid);
        let mut shim = notif(items(true, false));
        shim.subids = vec!["123-abc".into(), "004-yyy".into()];
        cases.push(shim);

        // Each case to two recipients in a row (the second reuses the template), and the
        // cases one after another through one renderer (each replaces the template).
        let mut ns = Vec::new();
        for c in cases {
            ns.push(c.clone());
            ns.push(to(c, "bernardo@denmark.lit/r"));
        }
        let mut r = NotificationRenderer::default();
        let out = render_all(&mut r, &ns);
        for (i, (n, s)) in ns.iter().zip(&out).enumerate() {
            let expected: Element =
                notification_message(n, &service(), format!("n{}", i + 1)).into();
            assert_eq!(parse_rendered(s), expected, "case {i}: {s}");
        }
    }

    #[test]
    fn renderer_shim_headers_per_recipient() {
        let mut a = notif(Event::Items {
            items: vec![item()],
            with_payload: false,
            with_publisher: false,
        });
        a.subids = vec!["123-abc".into(), "004-yyy".into()];
        let mut b = to(a.clone(), "bernardo@denmark.lit");
        b.subids = vec!["x1".into(), "x2".into()];
        let out = render_all(&mut NotificationRenderer::default(), &[a, b]);
        let subids = |s: &str| -> Vec<String> {
            parse_rendered(s)
                .get_child("headers", NS_SHIM)
                .unwrap()
                .children()
                .map(|h| h.text())
                .collect()
        };
        assert_eq!(subids(&out[0]), ["123-abc", "004-yyy"]);
        assert_eq!(subids(&out[1]), ["x1", "x2"]);
        // No payload: the item is empty.
        assert!(out[0].contains("<item id='ae890ac52d0df67ed7cfdf51b644e901'></item>"));
    }

    #[test]
    fn renderer_rebuilds_when_the_event_changes() {
        let n = notif(Event::Items {
            items: vec![item()],
            with_payload: true,
            with_publisher: false,
        });
        let mut other = item();
        other.id = "second".into();
        let m = notif(Event::Items {
            items: vec![other],
            with_payload: true,
            with_publisher: false,
        });
        let out = render_all(&mut NotificationRenderer::default(), &[n, m.clone(), m]);
        assert!(out[0].contains("id='ae890ac52d0df67ed7cfdf51b644e901'"));
        assert!(out[1].contains("<item id='second'>"));
        assert!(!out[1].contains("ae890ac52d0df67ed7cfdf51b644e901"));
        assert_eq!(out[1].replace("'n2'", "'n3'"), out[2]);
    }
}
