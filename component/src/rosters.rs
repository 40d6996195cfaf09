//! The node owners' rosters, kept for the `presence` and `roster` access models: what the
//! server grants (XEP-0356), fetches and their answers, pushes, and periodic refreshes.
//!
//! The engine keeps the rosters; this module is the only one that changes them. Requests
//! the engine cannot decide without a roster wait here (see [`Waiting`]) and are handed back
//! to be handled again once the rosters they need are in, or given up.

use minidom::Element;
use roost_nodes::{BareJid, Jid, Millis, Service, Store};
use tracing::{debug, info, warn};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::roster::Roster;
use xmpp_parsers::stanza::Stanza;

use crate::errors::bad_request;
use crate::iq::result_iq;
use crate::outbox::Ids;
use crate::privilege::{self, Privileges, RosterFetches, Waiting};

/// What the server grants on this connection, and the roster fetches in flight.
#[derive(Default)]
pub struct Rosters {
    /// What the server lets the service do on this connection (XEP-0356).
    privileges: Privileges,
    /// Roster fetches in flight, and requests waiting for them.
    fetches: RosterFetches,
}

impl Rosters {
    /// True when the server grants roster access: the presence and roster access models
    /// are offered.
    pub fn granted(&self) -> bool {
        self.privileges.roster_get()
    }

    /// A new connection. Privileges hold for one connection: until the server advertises
    /// them again, the presence and roster models admit nobody not affiliated. The requests
    /// that waited for a roster from the old connection are returned, to be decided without
    /// it.
    pub fn reset<S: Store>(&mut self, svc: &mut Service<S>) -> Vec<Waiting> {
        self.privileges = Privileges::default();
        svc.set_roster_access(false);
        self.fetches.reset()
    }

    /// The engine was rebuilt from the store: it knows no rosters; tell it what is granted
    /// (the next upkeep fetches them again).
    pub fn engine_replaced<S: Store>(&self, svc: &mut Service<S>) {
        svc.set_roster_access(self.granted());
    }

    /// The server advertised its XEP-0356 permissions: with roster access the presence and
    /// roster access models become available, and the rosters they need are fetched.
    pub fn advertised<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        p: Privileges,
        me: &Jid,
        ids: &mut Ids,
        now: Millis,
    ) -> Vec<Stanza> {
        info!(
            namespace = p.namespace,
            roster = ?p.roster,
            presence = ?p.presence,
            "the server granted privileges"
        );
        if !p.roster_get() {
            warn!("no roster access: the presence and roster access models are not offered");
        }
        svc.set_roster_access(p.roster_get());
        self.privileges = p;
        let owners = svc.roster_owners();
        self.fetch(owners, me, ids, now)
    }

    /// Roster gets for those of `owners` not being fetched already.
    pub fn fetch(
        &mut self,
        owners: impl IntoIterator<Item = BareJid>,
        me: &Jid,
        ids: &mut Ids,
        now: Millis,
    ) -> Vec<Stanza> {
        if !self.granted() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for owner in owners {
            if self.fetches.fetching(&owner) {
                continue;
            }
            let id = ids.next_id();
            self.fetches.start(&owner, &id, now);
            out.push(privilege::roster_get(me, &owner, id).into());
        }
        out
    }

    /// Park a request until the rosters it needs came; false (not parked) when too many
    /// wait already.
    pub fn park(&mut self, w: Waiting) -> bool {
        self.fetches.wait(w)
    }

    /// A result or error IQ: when it answers one of our roster gets, the owner's roster is
    /// settled (an error leaves it empty, so it admits nobody until the next refresh) and
    /// the requests that no longer wait are returned. `None`: not ours.
    pub fn answered<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        iq: &Iq,
        now: Millis,
    ) -> Option<Vec<Waiting>> {
        let (owner, payload) = match iq {
            Iq::Result {
                from, id, payload, ..
            } => (self.fetches.answered(id, from.as_ref())?, payload.as_ref()),
            Iq::Error {
                from, id, error, ..
            } => {
                let owner = self.fetches.answered(id, from.as_ref())?;
                warn!(%owner, "the server refused the roster: {:?}", error.defined_condition);
                (owner, None)
            }
            _ => return None,
        };
        let roster = payload.and_then(|p| Roster::try_from(p.clone()).ok());
        if payload.is_some() && roster.is_none() {
            warn!(%owner, "malformed roster from the server; taken as empty");
        }
        let items = roster
            .as_ref()
            .map(privilege::roster_items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(jid, item)| Some((jid, item?)));
        svc.roster_fetched(&owner, items, now);
        debug!(%owner, "roster fetched");
        Some(self.fetches.ready(&owner))
    }

    /// True when an IQ set in `jabber:iq:roster` from `from` is a roster push (RFC 6121
    /// §2.1.6) for a user of the server, which XEP-0356 servers send to a service with
    /// roster access. Anything else in that namespace is not for this service.
    pub fn is_push(&self, from: &Jid, server_domain: &str) -> bool {
        self.granted()
            && from.node().is_some()
            && from.resource().is_none()
            && from.domain().as_str() == server_domain
    }

    /// Apply a roster push (see [`Rosters::is_push`]); returns the answer.
    pub fn push<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        me: &Jid,
        from: Jid,
        id: String,
        payload: Element,
    ) -> Stanza {
        let owner = from.to_bare();
        match Roster::try_from(payload) {
            Ok(roster) => {
                for (contact, item) in privilege::roster_items(&roster) {
                    svc.roster_pushed(&owner, &contact, item);
                }
                debug!(%owner, "roster push applied");
                result_iq(me, &from, id, None)
            }
            Err(e) => {
                warn!(%owner, "malformed roster push refused: {e}");
                Iq::Error {
                    from: Some(me.clone()),
                    to: Some(from),
                    id,
                    payload: None,
                    error: bad_request(format!("malformed roster push: {e}")),
                }
                .into()
            }
        }
    }

    /// Fetches that never got an answer within [`privilege::FETCH_TIMEOUT_MS`] are given up:
    /// the requests waiting only for them are returned, to be decided without them.
    pub fn timed_out(&mut self, now: Millis) -> Vec<Waiting> {
        let mut ready = Vec::new();
        for owner in self
            .fetches
            .timed_out(now.saturating_sub(privilege::FETCH_TIMEOUT_MS))
        {
            warn!(%owner, "no answer to the roster get; deciding without that roster");
            ready.extend(self.fetches.ready(&owner));
        }
        ready
    }

    /// Roster upkeep, once per tick after [`Rosters::timed_out`]: the rosters of owners of
    /// presence and roster nodes are fetched when missing or older than
    /// [`privilege::REFRESH_MS`].
    pub fn refresh<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        me: &Jid,
        ids: &mut Ids,
        now: Millis,
    ) -> Vec<Stanza> {
        if !self.granted() {
            return Vec::new();
        }
        let owners = svc.roster_owners();
        let stale: Vec<BareJid> = svc
            .rosters()
            .fetched_before(now.saturating_sub(privilege::REFRESH_MS));
        for o in &stale {
            if !owners.contains(o) {
                svc.forget_roster(o);
            }
        }
        let wanted: Vec<BareJid> = owners
            .into_iter()
            .filter(|o| !svc.rosters().has(o) || stale.contains(o))
            .collect();
        self.fetch(wanted, me, ids, now)
    }
}
