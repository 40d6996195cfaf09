//! XEP-0356 Privileged Entity: what the server lets the service do, and the node owners'
//! rosters fetched with it for the `presence` and `roster` access models.
//!
//! Right after the component handshake the server may send a
//! `<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='get'/>…`
//! (ejabberd 23.01 still uses `urn:xmpp:privilege:1`, same shape; both are read). Roster
//! access (`get` or `both`) is what the two access models need: the service then sends a
//! roster get addressed to an owner's bare JID (XEP-0356 §4.2 "roster access") and the
//! server answers with the owner's roster. Servers may also push roster changes (an IQ set
//! from the owner's bare JID); not all do (Prosody's mod_privilege does not), so fetched
//! rosters are refreshed every [`REFRESH_MS`], and a request is refused only on a roster
//! fetched after it arrived (an older one is fetched again first, and the request waits).
//!
//! The permissions hold for one connection: on every (re)connect they are forgotten until the
//! server advertises them again, so a server that stops granting closes presence and roster
//! nodes to everyone not affiliated instead of leaving stale rosters in charge.
//!
//! xmpp-parsers 0.23 has no XEP-0356 module: the `<privilege/>` element is declared in
//! [`crate::xml::privilege`]; rosters use xmpp-parsers' `roster` module.

use minidom::Element;
use roost_nodes::roster::{RosterItem, RosterSubscription};
use roost_nodes::{BareJid, Jid, Millis};
use std::collections::{BTreeSet, HashMap, HashSet};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::roster::{Roster, Subscription};

use crate::pubsub::IqKind;
use crate::xml::privilege as xml;

pub use crate::xml::privilege::{NS_PRIVILEGE_1, NS_PRIVILEGE_2};

/// How old a fetched roster may grow before it is fetched again, for servers that do not
/// push roster changes: what deliveries (and admissions) are decided on.
pub const REFRESH_MS: u64 = 60_000;

/// The roster permission (XEP-0356 §3.1 "roster access").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RosterPerm {
    /// No roster access.
    #[default]
    None,
    /// Roster get.
    Get,
    /// Roster set.
    Set,
    /// Roster get and set.
    Both,
}

/// The presence permission (XEP-0356 §3.3 "presence access").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PresencePerm {
    /// No presence access.
    #[default]
    None,
    /// The presence of managed entities.
    ManagedEntity,
    /// The presence of managed entities and of their contacts.
    Roster,
}

/// The permissions one server advertised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    /// Which namespace version the server spoke.
    pub namespace: &'static str,
    /// Roster access.
    pub roster: RosterPerm,
    /// Presence access.
    pub presence: PresencePerm,
}

impl Privileges {
    /// True when the service may read users' rosters: what the presence and roster access
    /// models need.
    pub fn roster_get(&self) -> bool {
        matches!(self.roster, RosterPerm::Get | RosterPerm::Both)
    }
}

/// The permissions a server advertises in `m` (XEP-0356 §4.1 "server advertising"), if `m`
/// is such an advertisement. Unknown permissions and values are ignored (read as none).
pub fn parse_advertisement(m: &Message) -> Option<Privileges> {
    let (privilege, namespace) = m.payloads.iter().find_map(|p| {
        let read = if p.is("privilege", NS_PRIVILEGE_2) {
            xml::Privilege::try_from(p.clone()).map_err(|e| e.to_string())
        } else if p.is("privilege", NS_PRIVILEGE_1) {
            xml::PrivilegeV1::try_from(p.clone())
                .map(xml::Privilege::from)
                .map_err(|e| e.to_string())
        } else {
            return None;
        };
        // A malformed advertisement still is one: it grants nothing.
        let privilege = read.unwrap_or_else(|e| {
            tracing::warn!("malformed privilege advertisement, read as no permission: {e}");
            xml::Privilege { perms: Vec::new() }
        });
        Some((privilege, p.ns()))
    })?;
    let namespace = if namespace == NS_PRIVILEGE_1 {
        NS_PRIVILEGE_1
    } else {
        NS_PRIVILEGE_2
    };
    let mut out = Privileges {
        namespace,
        ..Privileges::default()
    };
    for perm in privilege.perms {
        match (perm.access.as_str(), perm.type_.as_deref()) {
            ("roster", Some("get")) => out.roster = RosterPerm::Get,
            ("roster", Some("set")) => out.roster = RosterPerm::Set,
            ("roster", Some("both")) => out.roster = RosterPerm::Both,
            ("presence", Some("managed_entity")) => out.presence = PresencePerm::ManagedEntity,
            ("presence", Some("roster")) => out.presence = PresencePerm::Roster,
            _ => {}
        }
    }
    Some(out)
}

/// The contacts of a roster (a roster get result or a push), as the engine keeps them:
/// `None` for an item being removed.
pub fn roster_items(roster: &Roster) -> Vec<(BareJid, Option<RosterItem>)> {
    roster
        .items
        .iter()
        .map(|i| {
            let subscription = match i.subscription {
                Subscription::None => RosterSubscription::None,
                Subscription::To => RosterSubscription::To,
                Subscription::From => RosterSubscription::From,
                Subscription::Both => RosterSubscription::Both,
                Subscription::Remove => return (i.jid.clone(), None),
            };
            let groups = i.groups.iter().map(|g| g.0.clone()).collect();
            (
                i.jid.clone(),
                Some(RosterItem {
                    subscription,
                    groups,
                }),
            )
        })
        .collect()
}

/// A request that waits for rosters before the engine can decide it.
#[derive(Debug)]
pub struct Waiting {
    /// The IQ type.
    pub kind: IqKind,
    /// The requester.
    pub from: Jid,
    /// The IQ id.
    pub id: String,
    /// The IQ payload.
    pub payload: Element,
    /// Owners whose rosters it waits for.
    pub needs: BTreeSet<BareJid>,
    /// When it arrived: it is refused only on rosters fetched since.
    pub arrived: Millis,
}

/// Roster fetches in flight and the requests waiting for them.
#[derive(Debug, Default)]
pub struct RosterFetches {
    /// IQ id → (owner, when the fetch was sent).
    in_flight: HashMap<String, (BareJid, Millis)>,
    /// Owners with a fetch in flight.
    owners: HashSet<BareJid>,
    waiting: Vec<Waiting>,
}

/// Requests that wait at most this many at a time; beyond, a request needing a roster
/// is answered at once (as undecided), so a flood cannot make the service hold unbounded
/// state.
pub const MAX_WAITING: usize = 10_000;

/// How long a roster fetch may stay unanswered before the requests waiting for it are
/// answered without it.
pub const FETCH_TIMEOUT_MS: u64 = 15_000;

impl RosterFetches {
    /// Forget everything: the connection that would have answered is gone. The waiting
    /// requests are returned so they can be answered (their requesters are waiting).
    pub fn reset(&mut self) -> Vec<Waiting> {
        self.in_flight.clear();
        self.owners.clear();
        std::mem::take(&mut self.waiting)
    }

    /// Record a roster get with id `id` for `owner`, sent at `now`; false (send nothing)
    /// when one is in flight already.
    pub fn start(&mut self, owner: &BareJid, id: &str, now: Millis) -> bool {
        if !self.owners.insert(owner.clone()) {
            return false;
        }
        self.in_flight.insert(id.to_owned(), (owner.clone(), now));
        true
    }

    /// True while `owner`'s roster is being fetched.
    pub fn fetching(&self, owner: &BareJid) -> bool {
        self.owners.contains(owner)
    }

    /// Park a request until the rosters of its `needs` came; false (not parked) when too
    /// many wait already.
    pub fn wait(&mut self, w: Waiting) -> bool {
        if self.waiting.len() >= MAX_WAITING {
            return false;
        }
        self.waiting.push(w);
        true
    }

    /// The answer with id `id` from `from` arrived: the owner it was about, if it is one
    /// of ours. An answer from an account must come from the owner's own; the server's
    /// domain may answer with an error.
    pub fn answered(&mut self, id: &str, from: Option<&Jid>) -> Option<BareJid> {
        let (owner, _) = self.in_flight.get(id)?;
        if from.is_some_and(|f| f.node().is_some() && f.to_bare() != *owner) {
            return None;
        }
        let (owner, _) = self.in_flight.remove(id)?;
        self.owners.remove(&owner);
        Some(owner)
    }

    /// Fetches sent before `before` that never got an answer: given up, their owners
    /// returned so that the requests waiting for them can be answered.
    pub fn timed_out(&mut self, before: Millis) -> Vec<BareJid> {
        let late: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, (_, at))| *at < before)
            .map(|(id, _)| id.clone())
            .collect();
        late.into_iter()
            .filter_map(|id| self.in_flight.remove(&id))
            .map(|(owner, _)| {
                self.owners.remove(&owner);
                owner
            })
            .collect()
    }

    /// The waiting requests that no longer wait once `owner`'s roster is in (or given up).
    pub fn ready(&mut self, owner: &BareJid) -> Vec<Waiting> {
        let mut out = Vec::new();
        let mut keep = Vec::with_capacity(self.waiting.len());
        for mut w in self.waiting.drain(..) {
            w.needs.remove(owner);
            if w.needs.is_empty() {
                out.push(w);
            } else {
                keep.push(w);
            }
        }
        self.waiting = keep;
        out
    }
}

/// A roster get for `owner`'s roster, addressed to its bare JID (XEP-0356 §4.2).
pub fn roster_get(service: &Jid, owner: &BareJid, id: String) -> Iq {
    Iq::Get {
        from: Some(service.clone()),
        to: Some(Jid::from(owner.clone())),
        id,
        payload: Roster {
            ver: None,
            items: Vec::new(),
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml: &str) -> Message {
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    #[test]
    fn version_2_advertisement_as_prosody_sends_it() {
        let m = message(
            "<message xmlns='jabber:component:accept' from='localhost' to='pubsub.localhost'>\
               <privilege xmlns='urn:xmpp:privilege:2'>\
                 <perm access='roster' type='get'/>\
                 <perm access='presence' type='roster'/>\
               </privilege></message>",
        );
        let p = parse_advertisement(&m).unwrap();
        assert_eq!(p.namespace, NS_PRIVILEGE_2);
        assert_eq!(p.roster, RosterPerm::Get);
        assert_eq!(p.presence, PresencePerm::Roster);
        assert!(p.roster_get());
    }

    #[test]
    fn version_1_advertisement_as_ejabberd_sends_it() {
        let m = message(
            "<message xmlns='jabber:component:accept' from='localhost' to='pubsub.localhost' id='x'>\
               <privilege xmlns='urn:xmpp:privilege:1'>\
                 <perm access='roster' type='both'/>\
                 <perm access='message' type='outgoing'/>\
                 <perm access='presence' type='managed_entity'/>\
               </privilege></message>",
        );
        let p = parse_advertisement(&m).unwrap();
        assert_eq!(p.namespace, NS_PRIVILEGE_1);
        assert_eq!(p.roster, RosterPerm::Both);
        assert_eq!(p.presence, PresencePerm::ManagedEntity);
        assert!(p.roster_get());
    }

    #[test]
    fn without_roster_get_the_models_are_not_possible() {
        for perms in [
            "",
            "<perm access='roster' type='set'/>",
            "<perm access='roster' type='none'/>",
            "<perm access='roster' type='bogus'/><perm access='presence' type='roster'/>",
            // A perm in another namespace is not a perm.
            "<perm xmlns='urn:other' access='roster' type='get'/>",
        ] {
            let m = message(&format!(
                "<message xmlns='jabber:component:accept' from='localhost'>\
                   <privilege xmlns='urn:xmpp:privilege:2'>{perms}</privilege></message>"
            ));
            assert!(!parse_advertisement(&m).unwrap().roster_get(), "{perms}");
        }
        // A malformed one (a perm without access) is an advertisement that grants nothing.
        let m = message(
            "<message xmlns='jabber:component:accept' from='localhost'>\
               <privilege xmlns='urn:xmpp:privilege:2'><perm type='get'/></privilege></message>",
        );
        assert!(!parse_advertisement(&m).unwrap().roster_get());
        // Not an advertisement at all.
        let m = message(
            "<message xmlns='jabber:component:accept' from='localhost'><body>hi</body></message>",
        );
        assert!(parse_advertisement(&m).is_none());
    }

    #[test]
    fn roster_result_and_push_items() {
        let roster = Roster::try_from(
            "<query xmlns='jabber:iq:roster' ver='1'>\
               <item jid='a@x' subscription='both'><group>Friends</group><group>Work</group></item>\
               <item jid='b@x' subscription='to' ask='subscribe'/>\
               <item jid='c@x'/>\
               <item jid='d@x' subscription='remove'/>\
             </query>"
                .parse::<Element>()
                .unwrap(),
        )
        .unwrap();
        let items = roster_items(&roster);
        let a = items[0].1.as_ref().unwrap();
        assert_eq!(a.subscription, RosterSubscription::Both);
        assert_eq!(
            a.groups.iter().cloned().collect::<Vec<_>>(),
            vec!["Friends".to_string(), "Work".to_string()]
        );
        assert_eq!(
            items[1].1.as_ref().unwrap().subscription,
            RosterSubscription::To
        );
        assert_eq!(
            items[2].1.as_ref().unwrap().subscription,
            RosterSubscription::None
        );
        assert_eq!(items[3], (BareJid::new("d@x").unwrap(), None));
    }

    #[test]
    fn fetches_are_deduplicated_and_answers_matched_by_id_and_owner() {
        let owner = BareJid::new("o@x").unwrap();
        let mut f = RosterFetches::default();
        assert!(f.start(&owner, "r1", 10));
        assert!(!f.start(&owner, "r2", 11));
        assert!(f.fetching(&owner));
        assert!(f.wait(Waiting {
            kind: IqKind::Set,
            from: Jid::new("c@x/r").unwrap(),
            id: "s1".into(),
            payload: Element::bare("pubsub", "http://jabber.org/protocol/pubsub"),
            needs: [owner.clone()].into(),
            arrived: 0,
        }));
        // An answer from someone else is not the owner's roster.
        let mallory = Jid::new("mallory@x").unwrap();
        assert_eq!(f.answered("r1", Some(&mallory)), None);
        assert_eq!(f.answered("r2", None), None);
        let o = Jid::new("o@x").unwrap();
        assert_eq!(f.answered("r1", Some(&o)), Some(owner.clone()));
        assert!(!f.fetching(&owner));
        let ready = f.ready(&owner);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].id, "s1");
        assert!(f.reset().is_empty());
    }

    #[test]
    fn unanswered_fetches_time_out() {
        let owner = BareJid::new("o@x").unwrap();
        let mut f = RosterFetches::default();
        assert!(f.start(&owner, "r1", 10));
        assert!(f.timed_out(10).is_empty());
        assert_eq!(f.timed_out(11), vec![owner.clone()]);
        assert!(!f.fetching(&owner));
        assert_eq!(f.answered("r1", None), None);
    }

    #[test]
    fn roster_get_is_addressed_to_the_owners_bare_jid() {
        let iq = roster_get(
            &Jid::new("pubsub.x").unwrap(),
            &BareJid::new("o@x").unwrap(),
            "r1".into(),
        );
        let el: Element = iq.into();
        assert_eq!(el.attr("to"), Some("o@x"));
        assert_eq!(el.attr("type"), Some("get"));
        assert!(el.get_child("query", "jabber:iq:roster").is_some());
    }
}

/// The service's side of XEP-0356 end to end through [`crate::roost::Roost`]: stanzas in,
/// stanzas out.
#[cfg(test)]
mod flow {
    use crate::roost::Roost;
    use crate::Config;
    use clap::Parser;
    use minidom::Element;
    use roost_nodes::{MemStore, Policy, Service};
    use xmpp_parsers::iq::Iq;
    use xmpp_parsers::message::Message;
    use xmpp_parsers::stanza::Stanza;
    use xmpp_parsers::stanza_error::DefinedCondition;

    const PUBSUB: &str = "http://jabber.org/protocol/pubsub";

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

    fn st(xml: &str) -> Stanza {
        let e: Element = xml.parse().unwrap();
        match e.name() {
            "iq" => Stanza::Iq(Iq::try_from(e).unwrap()),
            _ => Stanza::Message(Message::try_from(e).unwrap()),
        }
    }

    fn advertise(r: &mut Roost<MemStore>, ns: &str, from: &str) -> Vec<Stanza> {
        r.exchange(st(&format!(
            "<message xmlns='jabber:component:accept' from='{from}' to='pubsub.localhost'>\
               <privilege xmlns='{ns}'><perm access='roster' type='get'/>\
               <perm access='presence' type='roster'/></privilege></message>"
        )))
    }

    fn pubsub(from: &str, id: &str, inner: &str) -> Stanza {
        st(&format!(
            "<iq xmlns='jabber:component:accept' type='set' id='{id}' from='{from}' \
             to='pubsub.localhost'><pubsub xmlns='{PUBSUB}'>{inner}</pubsub></iq>"
        ))
    }

    fn create_with(model: &str, groups: &str) -> Stanza {
        pubsub(
            "alice@localhost/a",
            "c1",
            &format!(
                "<create node='n'/><configure><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE' type='hidden'><value>{PUBSUB}#node_config</value></field>\
                 <field var='pubsub#access_model'><value>{model}</value></field>\
                 <field var='pubsub#roster_groups_allowed'>{groups}</field></x></configure>"
            ),
        )
    }

    fn features(r: &mut Roost<MemStore>) -> Vec<String> {
        let out = r.exchange(st(
            "<iq xmlns='jabber:component:accept' type='get' id='d' from='bob@localhost/r' \
             to='pubsub.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        ));
        match &out[0] {
            Stanza::Iq(Iq::Result {
                payload: Some(p), ..
            }) => p
                .children()
                .filter(|c| c.name() == "feature")
                .filter_map(|c| c.attr("var").map(str::to_owned))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn error(out: &[Stanza]) -> (DefinedCondition, Option<String>) {
        match out.first() {
            Some(Stanza::Iq(Iq::Error { error, .. })) => (
                error.defined_condition.clone(),
                error.other.as_ref().map(|o| o.name().to_owned()),
            ),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// The roster gets in `out`, as (id, to).
    fn roster_gets(out: &[Stanza]) -> Vec<(String, String)> {
        out.iter()
            .filter_map(|s| match s {
                Stanza::Iq(Iq::Get {
                    id, to, payload, ..
                }) if payload.is("query", "jabber:iq:roster") => {
                    Some((id.clone(), to.as_ref()?.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    fn roster_result(id: &str, from: &str, items: &str) -> Stanza {
        st(&format!(
            "<iq xmlns='jabber:component:accept' type='result' id='{id}' from='{from}' \
             to='pubsub.localhost'><query xmlns='jabber:iq:roster'>{items}</query></iq>"
        ))
    }

    const ACCESS_PRESENCE: &str = "http://jabber.org/protocol/pubsub#access-presence";

    #[test]
    fn without_privileges_the_models_are_neither_advertised_nor_accepted() {
        let mut r = roost();
        assert!(!features(&mut r).iter().any(|f| f == ACCESS_PRESENCE));
        for model in ["presence", "roster"] {
            assert_eq!(
                error(&r.exchange(create_with(model, ""))),
                (
                    DefinedCondition::NotAcceptable,
                    Some("unsupported-access-model".into())
                )
            );
        }
        // An advertisement from anyone but the server is not one.
        advertise(&mut r, "urn:xmpp:privilege:2", "mallory@localhost");
        advertise(&mut r, "urn:xmpp:privilege:2", "otherdomain");
        assert!(!features(&mut r).iter().any(|f| f == ACCESS_PRESENCE));
    }

    #[test]
    fn both_namespace_versions_grant_the_models_until_the_next_connection() {
        for ns in ["urn:xmpp:privilege:1", "urn:xmpp:privilege:2"] {
            let mut r = roost();
            advertise(&mut r, ns, "localhost");
            let f = features(&mut r);
            assert!(f.iter().any(|f| f == ACCESS_PRESENCE), "{ns}");
            assert!(f
                .iter()
                .any(|f| f == "http://jabber.org/protocol/pubsub#access-roster"));
            // The configuration form offers them.
            let out = r.exchange(st(&format!(
                "<iq xmlns='jabber:component:accept' type='get' id='g' from='alice@localhost/a' \
                 to='pubsub.localhost'><pubsub xmlns='{PUBSUB}#owner'><default/></pubsub></iq>"
            )));
            let Stanza::Iq(Iq::Result {
                payload: Some(p), ..
            }) = &out[0]
            else {
                panic!("{out:?}")
            };
            let xml = String::from(p);
            assert!(xml.contains("<value>presence</value>"), "{xml}");
            assert!(xml.contains("pubsub#roster_groups_allowed"), "{xml}");
            // A new connection forgets the grant until the server advertises again.
            let _ = r.on_connect();
            assert!(!features(&mut r).iter().any(|f| f == ACCESS_PRESENCE));
        }
    }

    #[test]
    fn a_request_waits_for_the_owners_roster_then_is_decided() {
        let mut r = roost();
        advertise(&mut r, "urn:xmpp:privilege:1", "localhost");
        let out = r.exchange(create_with(
            "roster",
            "<value>Friends</value><value>Family</value>",
        ));
        assert!(matches!(out[0], Stanza::Iq(Iq::Result { .. })), "{out:?}");
        // Bob's subscribe needs alice's roster: no answer yet, a roster get instead.
        let out = r.exchange(pubsub(
            "bob@localhost/r",
            "s1",
            "<subscribe node='n' jid='bob@localhost/r'/>",
        ));
        let gets = roster_gets(&out);
        assert_eq!(gets.len(), 1, "{out:?}");
        assert_eq!(gets[0].1, "alice@localhost");
        assert_eq!(out.len(), 1);
        // Carol asks meanwhile: no second fetch.
        let out = r.exchange(pubsub(
            "carol@localhost/r",
            "s2",
            "<subscribe node='n' jid='carol@localhost/r'/>",
        ));
        assert!(out.is_empty(), "{out:?}");
        // The roster arrives: bob is a friend, carol a colleague.
        let out = r.exchange(roster_result(
            &gets[0].0,
            "alice@localhost",
            "<item jid='bob@localhost' subscription='both'><group>Friends</group></item>\
             <item jid='carol@localhost' subscription='both'><group>Work</group></item>",
        ));
        assert_eq!(out.len(), 2, "{out:?}");
        let by_id = |id: &str| {
            out.iter()
                .position(|s| match s {
                    Stanza::Iq(Iq::Result { id: i, .. }) | Stanza::Iq(Iq::Error { id: i, .. }) => {
                        i == id
                    }
                    _ => false,
                })
                .unwrap()
        };
        assert!(matches!(out[by_id("s1")], Stanza::Iq(Iq::Result { .. })));
        assert_eq!(
            error(&out[by_id("s2")..]),
            (
                DefinedCondition::NotAuthorized,
                Some("not-in-roster-group".into())
            )
        );
        // A push moves carol into Family: now she may.
        let out = r.exchange(st(
            "<iq xmlns='jabber:component:accept' type='set' id='p1' from='alice@localhost' \
             to='pubsub.localhost'><query xmlns='jabber:iq:roster'>\
             <item jid='carol@localhost' subscription='both'><group>Family</group></item>\
             </query></iq>",
        ));
        assert!(matches!(out[0], Stanza::Iq(Iq::Result { .. })), "{out:?}");
        let out = r.exchange(pubsub(
            "carol@localhost/r",
            "s3",
            "<subscribe node='n' jid='carol@localhost/r'/>",
        ));
        assert!(matches!(out[0], Stanza::Iq(Iq::Result { .. })), "{out:?}");
    }

    #[test]
    fn a_refused_roster_admits_nobody_and_a_push_from_elsewhere_is_not_one() {
        let mut r = roost();
        advertise(&mut r, "urn:xmpp:privilege:2", "localhost");
        r.exchange(create_with("presence", ""));
        let out = r.exchange(pubsub(
            "bob@localhost/r",
            "s1",
            "<subscribe node='n' jid='bob@localhost/r'/>",
        ));
        let gets = roster_gets(&out);
        let out = r.exchange(st(&format!(
            "<iq xmlns='jabber:component:accept' type='error' id='{}' from='alice@localhost' \
             to='pubsub.localhost'><error type='auth'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            gets[0].0
        )));
        assert_eq!(
            error(&out),
            (
                DefinedCondition::NotAuthorized,
                Some("presence-subscription-required".into())
            )
        );
        // A "push" from a full JID (a client) is not the server's: refused as any unknown
        // request, and it changes nothing.
        let out = r.exchange(st(
            "<iq xmlns='jabber:component:accept' type='set' id='p1' from='alice@localhost/a' \
             to='pubsub.localhost'><query xmlns='jabber:iq:roster'>\
             <item jid='bob@localhost' subscription='both'/></query></iq>",
        ));
        assert_eq!(error(&out).0, DefinedCondition::ServiceUnavailable);
        let out = r.exchange(pubsub(
            "bob@localhost/r",
            "s2",
            "<subscribe node='n' jid='bob@localhost/r'/>",
        ));
        // Refused only on a roster fetched since it arrived: the roster is asked for again
        // (unless the refusal came within the same millisecond), and refused again.
        let out = match roster_gets(&out).first() {
            Some((id, _)) => r.exchange(st(&format!(
                "<iq xmlns='jabber:component:accept' type='error' id='{id}' \
                 from='alice@localhost' to='pubsub.localhost'><error type='auth'>\
                 <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            ))),
            None => out,
        };
        assert_eq!(error(&out).0, DefinedCondition::NotAuthorized);
    }
}
