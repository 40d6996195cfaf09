//! Engine notifications → `<message/>` stanzas (§7.1.2.1, §7.2.2.1, §8.2.5.5, §8.4.2,
//! §8.5.2, §8.8.4, §12.5).
//!
//! The SHIM `<headers/>` (XEP-0131), which xmpp-parsers 0.23 lacks, are
//! [`crate::xml::shim::Headers`].

use std::str::FromStr;

use minidom::rxml::xml_ncname;
use minidom::Element;
use roost_nodes::{Event, Item, Notification, NotificationType, SubscriptionState};
use xmpp_parsers::data_forms::DataFormType;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::event::{Event as PsEvent, Payload};
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
    /// The last one-item publish event's serialization around its item (see [`Shape`]).
    shape: Option<Shape>,
    /// Events whose item payloads may be copied into a template as they are (see
    /// [`NotificationRenderer::trust`]).
    trusted: Vec<std::sync::Arc<Event>>,
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

/// A one-item publish notification serialized without `to` and `id`, cut around its
/// `<item>` element. Consecutive publishes to a node differ only in that element, so the
/// next one's template is the two parts with its item between them, rather than a message
/// built and encoded anew (a third of rendering at 32 subscribers per publish).
struct Shape {
    service: Jid,
    node: String,
    kind: NotificationType,
    collections: Vec<String>,
    /// Up to the item's start tag, and from after its end tag.
    before: Vec<u8>,
    after: Vec<u8>,
}

impl Shape {
    fn matches(&self, n: &Notification, service: &Jid) -> bool {
        self.kind == n.kind
            && self.node == n.node
            && self.collections == n.collections
            && &self.service == service
    }
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
    /// Let the template of `event` take its items' payload text as it is rather than
    /// parsing it back (a third of a small fan-out's rendering). Only for payloads this
    /// process serialized from elements it parsed: a damaged stored payload copied into
    /// the stream would end the link, where parsing it leaves out only that payload.
    pub fn trust(&mut self, event: std::sync::Arc<Event>) {
        self.trusted.push(event);
    }

    /// Forget the trusted events (the batch they came with is written).
    pub fn forget_trusted(&mut self) {
        self.trusted.clear();
    }

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

    fn trusted(&self, n: &Notification) -> bool {
        self.trusted
            .iter()
            .any(|e| std::sync::Arc::ptr_eq(e, &n.event))
    }

    fn build(
        &mut self,
        n: &Notification,
        service: &Jid,
        enc: &mut StanzaEncoder,
    ) -> Result<Template, String> {
        let mut bytes = match self.shaped(n, service, enc)? {
            Some(b) => b,
            None => self.serialized(n, service, enc)?,
        };
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

    /// `n` serialized without `to` and `id`: built and encoded, the payloads of a trusted
    /// event copied in as they are.
    fn serialized(
        &self,
        n: &Notification,
        service: &Jid,
        enc: &mut StanzaEncoder,
    ) -> Result<Vec<u8>, String> {
        let splice = self.trusted(n).then_some(&*n.event).and_then(|e| match e {
            Event::Items {
                items,
                with_payload: true,
                ..
            } => Some(items),
            _ => None,
        });
        let bytes = unaddressed(message(n, service, String::new(), splice.is_none()), enc)?;
        match splice.map(|items| splice_payloads(&bytes, items)) {
            None => Ok(bytes),
            Some(Some(b)) => Ok(b),
            // Not the shape expected: the payloads parsed back, as for any event.
            Some(None) => unaddressed(notification_message(n, service, String::new()), enc),
        }
    }

    /// `n` serialized without `to` and `id` from the [`Shape`] of its node, when it is a
    /// one-item publish whose item can go in as it is (its payload trusted or not sent, no
    /// body summarizing it); `None` otherwise. The item's start tag is written here, its
    /// attributes escaped as the encoder escapes them, in the order the encoder writes
    /// them (minidom keeps attributes sorted: `id`, `publisher`).
    fn shaped(
        &mut self,
        n: &Notification,
        service: &Jid,
        enc: &mut StanzaEncoder,
    ) -> Result<Option<Vec<u8>>, String> {
        let Event::Items {
            items,
            with_payload,
            with_publisher,
        } = &*n.event
        else {
            return Ok(None);
        };
        let [item] = items.as_slice() else {
            return Ok(None);
        };
        if n.include_body || (*with_payload && !self.trusted(n)) {
            return Ok(None);
        }
        if !self.shape.as_ref().is_some_and(|s| s.matches(n, service)) {
            self.shape = shape(n, item, service, enc)?;
        }
        let Some(s) = &self.shape else {
            return Ok(None);
        };
        let payload = if *with_payload { &*item.payload } else { "" };
        let mut b = Vec::with_capacity(s.before.len() + s.after.len() + payload.len() + 96);
        b.extend_from_slice(&s.before);
        b.extend_from_slice(b"<item");
        let ok = push_attr(&mut b, "id", &item.id)
            && (!with_publisher
                || push_attr(&mut b, "publisher", &item.shown_publisher().to_string()));
        if !ok {
            // A character XML cannot carry: the general path reports it.
            return Ok(None);
        }
        b.push(b'>');
        b.extend_from_slice(payload.as_bytes());
        b.extend_from_slice(ITEM_END);
        b.extend_from_slice(&s.after);
        Ok(Some(b))
    }
}

const ITEM_END: &[u8] = b"</item>";

/// The [`Shape`] of `n`'s node: the notification of a publish of an item with an empty id,
/// no publisher and no payload, encoded and cut around that item; `None` if the encoding
/// does not hold that item exactly once.
fn shape(
    n: &Notification,
    item: &Item,
    service: &Jid,
    enc: &mut StanzaEncoder,
) -> Result<Option<Shape>, String> {
    let bare = Item {
        id: String::new(),
        seq: item.seq,
        first_seq: None,
        publisher: item.publisher.clone(),
        published: item.published,
        payload: String::new(),
    };
    let probe = Notification {
        to: n.to.clone(),
        node: n.node.clone(),
        subids: Vec::new(),
        name_subids: false,
        kind: n.kind,
        include_body: false,
        collections: n.collections.clone(),
        event: std::sync::Arc::new(Event::Items {
            items: vec![bare],
            with_payload: false,
            with_publisher: false,
        }),
    };
    let bytes = unaddressed(message(&probe, service, String::new(), false), enc)?;
    const EMPTY: &[u8] = b"<item id=''></item>";
    let mut at = bytes
        .windows(EMPTY.len())
        .enumerate()
        .filter(|(_, w)| *w == EMPTY);
    let (Some((i, _)), None) = (at.next(), at.next()) else {
        return Ok(None);
    };
    Ok(Some(Shape {
        service: service.clone(),
        node: n.node.clone(),
        kind: n.kind,
        collections: n.collections.clone(),
        before: bytes[..i].to_vec(),
        after: bytes[i + EMPTY.len()..].to_vec(),
    }))
}

/// `m` serialized without `to` and `id`, which each recipient's copy gets in its start tag.
fn unaddressed(mut m: Message, enc: &mut StanzaEncoder) -> Result<Vec<u8>, String> {
    m.to = None;
    m.id = None;
    let mut bytes = Vec::new();
    enc.encode(&m, &mut bytes)?;
    Ok(bytes)
}

/// `bytes` (a notification serialized with its items' payloads left out) with each item's
/// payload text inserted before that item's end tag, in order; `None` if the end tags are
/// not one per item. Hand-spliced rather than encoded: the text is the payload as this
/// process serialized it from a parsed element moments before (standalone, its namespaces
/// declared on it), and parsing it back to encode it again was a third of rendering a
/// small fan-out. The encoder escapes `<` in attribute values and text, so `</item>`
/// occurs only as the items' end tags (the event's namespace is the default one there).
fn splice_payloads(bytes: &[u8], items: &[Item]) -> Option<Vec<u8>> {
    if items.is_empty() {
        return None;
    }
    let extra: usize = items.iter().map(|i| i.payload.len()).sum();
    let mut out = Vec::with_capacity(bytes.len() + extra);
    let mut at = 0;
    for item in items {
        let end = at
            + bytes[at..]
                .windows(ITEM_END.len())
                .position(|w| w == ITEM_END)?;
        out.extend_from_slice(&bytes[at..end]);
        out.extend_from_slice(item.payload.as_bytes());
        out.extend_from_slice(ITEM_END);
        at = end + ITEM_END.len();
    }
    if bytes[at..].windows(ITEM_END.len()).any(|w| w == ITEM_END) {
        return None;
    }
    out.extend_from_slice(&bytes[at..]);
    Some(out)
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
    message(n, service, id, true)
}

/// [`notification_message`], with the items' payloads left out unless `payloads`.
fn message(n: &Notification, service: &Jid, id: String, payloads: bool) -> Message {
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
    let mut event: Element = match &*n.event {
        Event::Items {
            items,
            with_payload,
            with_publisher,
        } => items_event(&n.node, items, *with_payload && payloads, *with_publisher),
        event => match event_payload(&n.node, event) {
            Some(payload) => PsEvent { payload }.into(),
            None => node_event(&n.node, event),
        },
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

/// Published items (examples 100, 101, 226), the event of every publish. Built with
/// minidom's builder, which moves each parsed payload in, rather than converted from the
/// typed `Payload::Items` through xso's events, which copies the payload once more: that
/// conversion was 3.6 % of Roost's CPU at 32 subscribers per publish. The tests read it
/// back as the typed event.
fn items_event(node: &str, items: &[Item], with_payload: bool, with_publisher: bool) -> Element {
    let items = items.iter().map(|i| {
        let mut item =
            Element::builder("item", ns::PUBSUB_EVENT).attr(xml_ncname!("id").to_owned(), &*i.id);
        if with_publisher {
            item = item.attr(
                xml_ncname!("publisher").to_owned(),
                i.shown_publisher().to_string(),
            );
        }
        if let Some(payload) = with_payload.then(|| payload_element(&i.payload)).flatten() {
            item = item.append(payload);
        }
        item.build()
    });
    Element::builder("event", ns::PUBSUB_EVENT)
        .append(
            Element::builder("items", ns::PUBSUB_EVENT)
                .attr(xml_ncname!("node").to_owned(), node)
                .append_all(items),
        )
        .build()
}

/// The typed payload of the other events; `None` for those `items_event` and `node_event` build.
fn event_payload(node: &str, event: &Event) -> Option<Payload> {
    let node = NodeName(node.to_owned());
    Some(match event {
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
        // Built by `items_event` and `node_event`.
        Event::Items { .. } | Event::Create | Event::Collection { .. } => return None,
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
mod tests;
