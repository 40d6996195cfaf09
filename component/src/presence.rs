//! The service's presence: subscription handshakes with users, and the presence of users
//! who let the service see it, fed into the engine's [`roost_nodes::presence::PresenceTable`].
//!
//! Which users' presence the service needs is not stored: the engine derives it from the
//! subscriptions ([`Service::presence_wanted`]). On every (re)connect the presence table is
//! emptied (unavailable presences may have been missed while the link was down) and each of
//! those users is probed, so their servers answer with the current presence of every
//! available resource within a round trip.

use roost_nodes::{Jid, Millis, Service, Show, Store};
use tracing::{debug, error};
use xmpp_parsers::presence::{Presence, Show as XmppShow, Type};

use crate::effects::Effects;

/// How long after a (re)connect answers to probes are taken as resources that were online
/// all along rather than coming online (no `on_sub_and_presence` item is sent again).
pub const PROBE_GRACE_MS: Millis = 10_000;

/// The probes of every user whose presence the service needs, sent on every (re)connect and
/// after the engine was rebuilt from the store, and their grace period.
#[derive(Debug, Default)]
pub struct Probing {
    /// When the probes were sent, until [`PROBE_GRACE_MS`] later.
    since_ms: Option<Millis>,
    /// The engine was rebuilt from the store and so forgot every presence: probe again.
    again: bool,
}

impl Probing {
    /// Reset the presence table and probe every user whose presence the service needs.
    pub fn probe_all<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        me: &Jid,
        now: Millis,
    ) -> Vec<Presence> {
        self.again = false;
        self.since_ms = Some(now);
        on_connect(svc, me)
    }

    /// The engine was replaced by one rebuilt from the store: probe again at the next tick.
    pub fn engine_replaced(&mut self) {
        self.again = true;
    }

    /// True when the presences must be probed again (see [`Probing::engine_replaced`]).
    pub fn probe_again(&self) -> bool {
        self.again
    }

    /// Once per tick: after the grace period, the resources assumed online at start-up that
    /// did not answer the probes are forgotten, and so are the answers no longer expected
    /// (see [`ANSWER_MS`]).
    pub fn tick<S: Store>(&mut self, svc: &mut Service<S>, now: Millis) {
        if let Some(since) = self.since_ms {
            if now.saturating_sub(since) >= PROBE_GRACE_MS {
                svc.forget_stale_presence();
                self.since_ms = None;
            }
        }
        svc.forget_presence_answers(now);
    }
}

fn show_of(p: &Presence) -> Show {
    match p.show {
        None => Show::Online,
        Some(XmppShow::Away) => Show::Away,
        Some(XmppShow::Chat) => Show::Chat,
        Some(XmppShow::Dnd) => Show::Dnd,
        Some(XmppShow::Xa) => Show::Xa,
    }
}

/// How long after the service asks for a user's presence (a probe, or the user's approval
/// of its presence subscription) the presences that come are taken as the answer: the
/// resources were online already, and do not count as coming online (see
/// [`roost_nodes::presence::PresenceTable::expect_answers`]). The user's server answers at
/// once, within a round trip; a resource logging in within this time after subscribing is
/// taken as online already, and got the `on_sub_and_presence` item on subscribing.
pub const ANSWER_MS: Millis = 1_000;

fn presence(type_: Type, from: &Jid, to: Jid) -> Presence {
    Presence::new(type_).with_from(from.clone()).with_to(to)
}

/// Handle one presence stanza sent to the service `me`, at `now`: presence stanzas to send
/// back (subscription answers, probe answers) and the notifications the change triggered
/// (`on_sub_and_presence` last items).
pub fn handle_presence<S: Store>(
    service: &mut Service<S>,
    me: &Jid,
    p: Presence,
    now: Millis,
) -> Effects {
    let mut out = Effects::none();
    let Some(from) = p.from.clone() else {
        return out;
    };
    let bare = Jid::from(from.to_bare());
    match p.type_ {
        // A user asks to see the service's presence: always granted, and the service asks
        // for theirs in return, which presence-bound delivery needs.
        Type::Subscribe => {
            out.push(presence(Type::Subscribed, me, bare.clone()));
            out.push(presence(Type::Subscribe, me, bare));
        }
        Type::Unsubscribe => out.push(presence(Type::Unsubscribed, me, bare)),
        // The user no longer shares their presence: none of their resources is known
        // to be online any more.
        Type::Unsubscribed => service.all_unavailable(&from.to_bare()),
        Type::Probe => out.push(Presence::available().with_from(me.clone()).with_to(from)),
        // The user's server follows the approval with the presence of every available
        // resource (RFC 6121 §3.1.5): an answer, not resources coming online.
        Type::Subscribed => {
            debug!(%from, "presence subscription approved");
            service.expect_presence_answers(from.to_bare(), now.saturating_add(ANSWER_MS));
        }
        Type::None => changed(service, &from, Some(show_of(&p)), &mut out),
        Type::Unavailable => match from.try_as_full() {
            Ok(_) => changed(service, &from, None, &mut out),
            Err(bare) => service.all_unavailable(bare),
        },
        // A bounced probe or subscription request: nothing is known about that user.
        Type::Error => debug!(%from, "presence error"),
    }
    out
}

fn changed<S: Store>(service: &mut Service<S>, from: &Jid, show: Option<Show>, out: &mut Effects) {
    // Available presence from a bare JID (a server speaking for a user, never a resource)
    // names no resource to deliver to.
    let Ok(full) = from.try_as_full() else {
        return;
    };
    match service.presence_changed(full, show) {
        Ok(n) => out.notify(n),
        Err(e) => {
            out.engine_error(&e);
            error!(%from, "sending the last items on presence failed: {e}");
        }
    }
}

/// A message bounced from `from`: when that is a full JID, the resource is gone. ejabberd
/// does not tell components about the unavailable presence it generates when a client's
/// stream closes, so a bounced notification is how the service learns it there.
pub fn bounced<S: Store>(service: &mut Service<S>, from: &Jid) {
    if let Ok(full) = from.try_as_full() {
        if service.resource_unavailable(full) {
            debug!(%from, "notification bounced: resource taken as unavailable");
        }
    }
}

/// Presence subscription requests for the users who newly need one, each with a probe:
/// a user who approved before (e.g. for another node) is not asked again by their server,
/// and the probe brings their current presence, which the service ignored until now. The
/// answers are no news of resources coming online: those resources got whatever the
/// subscription sent on subscribing.
pub fn subscription_requests<S: Store>(
    service: &mut Service<S>,
    me: &Jid,
    now: Millis,
) -> Vec<Presence> {
    let mut out = Vec::new();
    for b in service.take_presence_requests() {
        service.expect_presence_answers(b.clone(), now.saturating_add(ANSWER_MS));
        let to = Jid::from(b);
        out.push(presence(Type::Subscribe, me, to.clone()));
        out.push(presence(Type::Probe, me, to));
    }
    out
}

/// What to send right after (re)connecting: the presence table is reset and every user
/// whose presence the service needs is probed.
fn on_connect<S: Store>(service: &mut Service<S>, me: &Jid) -> Vec<Presence> {
    // After a start or a rebuild from the store, who answers the probes may have been
    // online all along and must not get the on_sub_and_presence item again (a resource that
    // logged in while Roost was down misses it; it can retrieve the items); the engine
    // tells the two cases apart (`Service::presence_reconnected`).
    service
        .presence_reconnected()
        .into_iter()
        .map(|b| presence(Type::Probe, me, Jid::from(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::roost::Roost;
    use crate::Config;
    use clap::Parser;
    use minidom::Element;
    use roost_nodes::{MemStore, Policy, Service};
    use xmpp_parsers::iq::Iq;
    use xmpp_parsers::message::Message;
    use xmpp_parsers::presence::{Presence, Type};
    use xmpp_parsers::stanza::Stanza;

    fn roost() -> Roost<MemStore> {
        let cfg = Config::resolve(
            crate::config::Cli::try_parse_from([
                "roost",
                "--jid",
                "pubsub.localhost",
                "--secret",
                "s",
            ])
            .unwrap(),
        )
        .unwrap();
        Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &cfg,
        )
    }

    fn el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    fn presence(attrs: &str, inner: &str) -> Stanza {
        let p = el(&format!(
            "<presence xmlns='jabber:component:accept' to='pubsub.localhost' {attrs}>{inner}</presence>"
        ));
        Stanza::Presence(Presence::try_from(p).unwrap())
    }

    fn iq(from: &str, inner: &str) -> Stanza {
        let e = el(&format!(
            "<iq xmlns='jabber:component:accept' type='set' id='i' from='{from}' \
             to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>{inner}</pubsub></iq>"
        ));
        Stanza::Iq(Iq::try_from(e).unwrap())
    }

    fn presences(out: &[Stanza]) -> Vec<(Type, String)> {
        out.iter()
            .filter_map(|s| match s {
                Stanza::Presence(p) => Some((p.type_.clone(), p.to.as_ref()?.to_string())),
                _ => None,
            })
            .collect()
    }

    fn notified(out: &[Stanza]) -> Vec<String> {
        out.iter()
            .filter_map(|s| match s {
                Stanza::Message(m) => Some(m.to.as_ref()?.to_string()),
                _ => None,
            })
            .collect()
    }

    fn setup_presence_node(r: &mut Roost<MemStore>) -> Vec<Stanza> {
        r.exchange(iq(
            "alice@localhost/a",
            "<create node='n'/><configure><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
             <field var='pubsub#presence_based_delivery'><value>1</value></field></x></configure>",
        ));
        r.exchange(iq(
            "bob@localhost/r1",
            "<subscribe node='n' jid='bob@localhost'/>",
        ))
    }

    fn publish(r: &mut Roost<MemStore>) -> Vec<Stanza> {
        r.exchange(iq(
            "alice@localhost/a",
            "<publish node='n'><item><x xmlns='urn:t'/></item></publish>",
        ))
    }

    #[test]
    fn subscription_handshake_and_probe_answers() {
        let mut r = roost();
        let out = r.exchange(presence("from='bob@localhost/r' type='subscribe'", ""));
        assert_eq!(
            presences(&out),
            vec![
                (Type::Subscribed, "bob@localhost".to_owned()),
                (Type::Subscribe, "bob@localhost".to_owned())
            ]
        );
        let out = r.exchange(presence("from='bob@localhost' type='unsubscribe'", ""));
        assert_eq!(
            presences(&out),
            vec![(Type::Unsubscribed, "bob@localhost".to_owned())]
        );
        let out = r.exchange(presence("from='bob@localhost/r' type='probe'", ""));
        assert_eq!(
            presences(&out),
            vec![(Type::None, "bob@localhost/r".to_owned())]
        );
    }

    fn last_item_node(r: &mut Roost<MemStore>, node: &str) {
        r.exchange(iq(
            "alice@localhost/a",
            &format!(
                "<create node='{node}'/><configure><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
                 <field var='pubsub#send_last_published_item'><value>on_sub_and_presence</value></field></x></configure>"
            ),
        ));
        r.exchange(iq(
            "alice@localhost/a",
            &format!("<publish node='{node}'><item id='last'><x xmlns='urn:t'/></item></publish>"),
        ));
    }

    #[test]
    fn on_sub_and_presence_sends_the_last_item_once_on_a_first_subscription() {
        let mut r = roost();
        last_item_node(&mut r, "n1");
        last_item_node(&mut r, "n2");
        // On subscribe, to the JID as subscribed; the service then asks for bob's presence.
        let out = r.exchange(iq(
            "bob@localhost/r1",
            "<subscribe node='n1' jid='bob@localhost'/>",
        ));
        assert_eq!(notified(&out), vec!["bob@localhost"]);
        assert_eq!(
            presences(&out),
            vec![
                (Type::Subscribe, "bob@localhost".to_owned()),
                (Type::Probe, "bob@localhost".to_owned())
            ]
        );
        // bob approves: his server says so, then sends the presence of each resource. They
        // were online when he subscribed and got the item then.
        r.exchange(presence("from='bob@localhost' type='subscribed'", ""));
        let out = r.exchange(presence("from='bob@localhost/r1'", ""));
        assert!(notified(&out).is_empty(), "the last item again: {out:?}");
        let out = r.exchange(presence("from='bob@localhost/r2'", ""));
        assert!(notified(&out).is_empty(), "the last item again: {out:?}");

        // carol approved the service before: her server answers the probe alone.
        let out = r.exchange(iq(
            "carol@localhost/c1",
            "<subscribe node='n2' jid='carol@localhost'/>",
        ));
        assert_eq!(notified(&out), vec!["carol@localhost"]);
        let out = r.exchange(presence("from='carol@localhost/c1'", ""));
        assert!(notified(&out).is_empty(), "the last item again: {out:?}");

        // Once the answers are in, a resource that reports is coming online.
        r.service_mut().forget_presence_answers(u64::MAX);
        let out = r.exchange(presence("from='bob@localhost/r3'", ""));
        assert_eq!(notified(&out), vec!["bob@localhost/r3"]);
        let out = r.exchange(presence("from='carol@localhost/c2'", ""));
        assert_eq!(notified(&out), vec!["carol@localhost/c2"]);
    }

    #[test]
    fn subscribing_to_a_presence_node_asks_for_presence_and_delivery_follows_it() {
        let mut r = roost();
        let out = setup_presence_node(&mut r);
        assert!(matches!(out.first(), Some(Stanza::Iq(Iq::Result { .. }))));
        assert_eq!(
            presences(&out),
            vec![
                (Type::Subscribe, "bob@localhost".to_owned()),
                (Type::Probe, "bob@localhost".to_owned())
            ]
        );
        // Directed presence from someone no subscription needs takes no memory.
        r.exchange(presence("from='mallory@localhost/x'", ""));
        let mallory = "mallory@localhost".parse().unwrap();
        assert!(r
            .service_mut()
            .presence()
            .resources(&mallory)
            .next()
            .is_none());
        assert!(notified(&publish(&mut r)).is_empty(), "nobody online yet");

        r.exchange(presence("from='bob@localhost/r1'", ""));
        r.exchange(presence("from='bob@localhost/r2'", "<show>away</show>"));
        let mut to = notified(&publish(&mut r));
        to.sort();
        assert_eq!(to, vec!["bob@localhost/r1", "bob@localhost/r2"]);

        r.exchange(presence("from='bob@localhost/r2' type='unavailable'", ""));
        assert_eq!(notified(&publish(&mut r)), vec!["bob@localhost/r1"]);

        // A bounce from a full JID: that resource is gone.
        let bounce = el("<message xmlns='jabber:component:accept' type='error' \
                         from='bob@localhost/r1' to='pubsub.localhost'>\
                         <error type='cancel'><service-unavailable \
                         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        r.exchange(Stanza::Message(Message::try_from(bounce).unwrap()));
        assert!(notified(&publish(&mut r)).is_empty());

        // Reconnecting forgets what was known and probes every subscriber.
        r.exchange(presence("from='bob@localhost/r1'", ""));
        let fx = r.on_connect();
        let hello = r.as_stanzas(fx);
        assert_eq!(
            presences(&hello),
            vec![(Type::Probe, "bob@localhost".to_owned())]
        );
        assert!(
            notified(&publish(&mut r)).is_empty(),
            "stale presence survived a reconnect"
        );
    }
}
