//! The access gate: every access rule of the service, decided in one function.
//!
//! Whatever a request does, the engine first asks [`decide`] (through `Service::gate`, which
//! gathers the [`Facts`]: who asks, about whom, their affiliation, the node's configuration,
//! the owners' rosters) and gets a [`Decision`]: allowed, allowed pending an owner's
//! approval, refused with the error the requester gets, or undecidable until the engine is
//! given some owners' rosters. The rules, in the order they apply:
//!
//! 1. **Acting for others** (§6.1.3.1, §6.2.3.2, §6.3.4.3): a subscriber request naming a JID
//!    whose bare JID is not the requester's is refused (`invalid-jid`) unless the requester
//!    is a service admin. The rights that count are then those of the JID named.
//! 2. **Outcasts** may do nothing a node offers (§4.1), and are not listed in disco.
//! 3. **The §4.1 table** ([`TABLE`], literal data) for everything an affiliation decides
//!    alone, with its footnote choices.
//! 4. **Access models** (§4.5) for subscribing and retrieving items: `open`, `authorize`,
//!    `whitelist`, and `presence` / `roster`, which ask the owners' rosters.
//! 5. **Publish models** (`pubsub#publish_model`) for publishing.
//! 6. **Approval** (§4.5, §6.1.2): on an `authorize` node a subscription by anyone but an
//!    owner, publisher or member waits for an owner ([`Decision::Pending`]).
//!
//! Service admins count as owners of every node (the caller passes `Affiliation::Owner`).
//! Who may create nodes is service policy ([`crate::policy::Policy::may_create`]); the
//! service asks it through the same gate.

use crate::model::{AccessModel, Affiliation, AssociationPolicy, NodeConfig, PublishModel};
use crate::roster::RosterStanding;
use crate::{BareJid, Error};

/// Something an entity may or may not do on a node: the columns of [`TABLE`], the §4.1
/// table, with "Delete Single Item" split by whose item it is (see the table's footnote)
/// and the two owner-only management use cases (§8.8, §8.9) added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Subscribe (§6.1).
    Subscribe,
    /// Retrieve items (§6.5), list item ids, query the node's history.
    RetrieveItems,
    /// Publish items (§7.1).
    PublishItems,
    /// Retract an item the actor published itself (§7.2).
    DeleteOwnItem,
    /// Retract an item someone else published (§7.2).
    DeleteAnyItem,
    /// Purge all items (§8.5).
    PurgeNode,
    /// Read or change the configuration (§8.2).
    ConfigureNode,
    /// Delete the node (§8.4).
    DeleteNode,
    /// List and change subscriptions, decide pending ones (§8.6–§8.8).
    ManageSubscriptions,
    /// List and change affiliations (§8.9).
    ManageAffiliations,
}

/// Everything the gate is asked: an [`Action`] of the table, or a question the table does
/// not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Question {
    /// May the entity do this action of the §4.1 table?
    Do(Action),
    /// May a subscriber receive the node's notifications? Asked for every delivery,
    /// because the `presence` and `roster` models depend on rosters that change after
    /// subscribing.
    ReceiveItems,
    /// May the entity see the node in disco#items and its disco#info (§5.2, §5.4)?
    SeeNode,
    /// May the entity unsubscribe, or read or change a subscription's options (§6.2,
    /// §6.3)? One's own subscriptions, whatever the affiliation.
    ManageOwnSubscription,
    /// May an owner subscribe the entity (§8.8.2)? The owner decides, but a ban holds.
    BeSubscribedByOwner,
    /// May the entity create a node (§8.1)? Service policy.
    CreateNode,
    /// May the entity associate a node with this collection (XEP-0248
    /// `pubsub#children_association_policy`)? Owners may; others as the policy says.
    /// Whether it may change the child is asked apart (it must own it).
    AssociateChild,
}

impl From<Action> for Question {
    fn from(a: Action) -> Self {
        Question::Do(a)
    }
}

impl Action {
    /// The actions [`TABLE`] decides, in its column order.
    pub const ALL: &'static [Action] = &[
        Action::Subscribe,
        Action::RetrieveItems,
        Action::PublishItems,
        Action::DeleteOwnItem,
        Action::DeleteAnyItem,
        Action::PurgeNode,
        Action::ConfigureNode,
        Action::DeleteNode,
        Action::ManageSubscriptions,
        Action::ManageAffiliations,
    ];
}

const Y: bool = true;
const N: bool = false;

/// XEP-0060 §4.1 "Affiliations and their Privileges", one row per affiliation, one column
/// per [`Action::ALL`] entry: Subscribe, Retrieve Items, Publish Items, Delete Own Item,
/// Delete Any Item, Purge Node, Configure Node, Delete Node, Manage Subscriptions, Manage
/// Affiliations.
///
/// Footnote choices: a publisher may delete any item and purge; a publish-only entity may
/// delete only its own items and may not purge. `none` may subscribe: whether it actually
/// may is the access model's call, which can also open retrieving to `none` and
/// publishing to non-publishers (rules 4 and 5 of the module).
pub const TABLE: [(Affiliation, [bool; 10]); 6] = [
    //                       Sub Retr Pub DOwn DAny Purg Conf DelN MSub MAff
    (
        Affiliation::Owner,
        /*   */ [Y, Y, Y, Y, Y, Y, Y, Y, Y, Y],
    ),
    (Affiliation::Publisher, [Y, Y, Y, Y, Y, Y, N, N, N, N]),
    (Affiliation::PublishOnly, [N, N, Y, Y, N, N, N, N, N, N]),
    (
        Affiliation::Member,
        /*  */ [Y, Y, N, N, N, N, N, N, N, N],
    ),
    (
        Affiliation::None,
        /*    */ [Y, N, N, N, N, N, N, N, N, N],
    ),
    (
        Affiliation::Outcast,
        /* */ [N, N, N, N, N, N, N, N, N, N],
    ),
];

/// The §4.1 table: may an entity with `aff` do `action`, affiliation alone considered?
pub fn allowed(aff: Affiliation, action: Action) -> bool {
    let col = Action::ALL
        .iter()
        .position(|a| *a == action)
        .expect("every action is a column");
    TABLE
        .iter()
        .find(|(a, _)| *a == aff)
        .is_some_and(|(_, row)| row[col])
}

/// True when the access model is one the engine implements. `presence` and `roster` need
/// the owners' rosters, so they are supported only while `rosters` (the server grants the
/// service roster access, XEP-0356) holds.
pub fn access_model_supported(model: AccessModel, rosters: bool) -> bool {
    match model {
        AccessModel::Open | AccessModel::Whitelist | AccessModel::Authorize => true,
        AccessModel::Presence | AccessModel::Roster => rosters,
    }
}

/// The answer of the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Go ahead, but the subscription waits for an owner's approval (authorize model).
    Pending,
    /// Refused, with the error the requester gets.
    Deny(Error),
    /// Undecidable until these owners' rosters are known: the component fetches them and
    /// asks again.
    NeedRosters(Vec<BareJid>),
}

impl Decision {
    /// `Ok` when allowed (pending or not); a refusal or a wait for rosters as the error
    /// ([`Error::RosterNeeded`] for the latter).
    pub fn check(self) -> Result<Decision, Error> {
        match self {
            Decision::Deny(e) => Err(e),
            Decision::NeedRosters(owners) => Err(Error::RosterNeeded(owners)),
            allowed => Ok(allowed),
        }
    }

    /// `Ok(true)` when allowed (pending or not), `Ok(false)` when refused, and
    /// [`Error::RosterNeeded`] when undecided: for checks that act on a refusal (removing
    /// subscriptions) rather than report it, and must not act on a guess.
    pub fn admits(self) -> Result<bool, Error> {
        match self {
            Decision::NeedRosters(owners) => Err(Error::RosterNeeded(owners)),
            d => Ok(d.is_allowed()),
        }
    }

    /// True when allowed (pending or not).
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow | Decision::Pending)
    }
}

/// What the gate decides on, gathered by the service for one question.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The affiliation whose rights count: of the JID the request is about (the
    /// requester's own unless it acts for someone else); admins pass `Owner`.
    pub aff: Affiliation,
    /// The requester is a service admin.
    pub admin: bool,
    /// The request names a JID whose bare JID is not the requester's.
    pub for_other: bool,
    /// The node's configuration (a reconfiguration passes the new one).
    pub config: &'a NodeConfig,
    /// The JID holds a subscription in state subscribed to the node (it matters for
    /// `publish_model=subscribers` and for retrieving items from an authorize node).
    pub subscribed: bool,
    /// What the JID is to the node's owners, from their rosters: only for the `presence`
    /// and `roster` models, and `None` without roster access, which shuts out everyone not
    /// affiliated.
    pub roster: Option<RosterStanding>,
    /// The JID is on the node's `pubsub#children_association_whitelist` (XEP-0248).
    pub association_whitelisted: bool,
}

/// The one access decision (see the module's rules). [`Question::CreateNode`] is the
/// service's policy, not a node's: the service decides it before asking here.
pub fn decide(question: Question, f: &Facts<'_>) -> Decision {
    use Action::*;
    use Question::*;
    // Rule 1: acting for others.
    if f.for_other && !f.admin && matches!(question, Do(Subscribe) | ManageOwnSubscription) {
        return Decision::Deny(Error::InvalidJid);
    }
    match question {
        // One's own subscriptions, whatever the affiliation: an outcast holds none (a ban
        // removes them), so it is told it is not subscribed.
        ManageOwnSubscription => Decision::Allow,
        CreateNode => Decision::Deny(Error::CreateForbidden),
        SeeNode => see_node(f),
        BeSubscribedByOwner if f.aff == Affiliation::Outcast => Decision::Deny(Error::Outcast),
        BeSubscribedByOwner => Decision::Allow,
        AssociateChild => associate_child(f),
        // Deliveries on nodes whose model asks no rosters: holding the subscription is the
        // admission (a change of model or affiliation removes the subscriptions it shuts
        // out). Rosters change after subscribing, so presence and roster nodes ask again.
        ReceiveItems
            if !matches!(
                f.config.access_model,
                AccessModel::Presence | AccessModel::Roster
            ) =>
        {
            Decision::Allow
        }
        // Rule 2.
        _ if f.aff == Affiliation::Outcast => Decision::Deny(Error::Outcast),
        ReceiveItems => by_access_model(
            RetrieveItems,
            f.aff,
            &Facts {
                subscribed: true,
                ..f.clone()
            },
        ),
        Do(Subscribe) => match by_access_model(Subscribe, f.aff, f) {
            // Rule 6.
            Decision::Allow if needs_approval(f.aff, f.config) => Decision::Pending,
            d => d,
        },
        Do(RetrieveItems) => by_access_model(RetrieveItems, f.aff, f),
        // Rule 5.
        Do(PublishItems) => {
            let ok = match f.config.publish_model {
                PublishModel::Publishers => allowed(f.aff, PublishItems),
                PublishModel::Subscribers => allowed(f.aff, PublishItems) || f.subscribed,
                PublishModel::Open => true,
            };
            if ok {
                Decision::Allow
            } else {
                Decision::Deny(Error::PublishForbidden)
            }
        }
        // Rule 3.
        Do(action) if allowed(f.aff, action) => Decision::Allow,
        Do(_) => Decision::Deny(Error::Forbidden),
    }
}

/// Who may associate children with a collection (XEP-0248
/// `pubsub#children_association_policy`): owners always, outcasts never, others as the
/// policy says.
fn associate_child(f: &Facts<'_>) -> Decision {
    let ok = match f.aff {
        Affiliation::Owner => true,
        Affiliation::Outcast => return Decision::Deny(Error::Outcast),
        _ => match f.config.children_association_policy {
            AssociationPolicy::Owners => false,
            AssociationPolicy::Whitelist => f.association_whitelisted,
            AssociationPolicy::All => true,
        },
    };
    if ok {
        Decision::Allow
    } else {
        Decision::Deny(Error::Forbidden)
    }
}

/// Rule 6: on an authorize node only affiliates that may subscribe anyway (members,
/// publishers, owners) are subscribed at once; everyone else waits for an owner (§8.6).
fn needs_approval(aff: Affiliation, config: &NodeConfig) -> bool {
    config.access_model == AccessModel::Authorize
        && !matches!(
            aff,
            Affiliation::Owner | Affiliation::Publisher | Affiliation::Member
        )
}

/// Rule 4: subscribing and retrieving items under the node's access model (§4.5).
fn by_access_model(action: Action, aff: Affiliation, f: &Facts<'_>) -> Decision {
    let config = f.config;
    let verdict = |ok: bool, refusal: Error| {
        if ok {
            Decision::Allow
        } else {
            Decision::Deny(refusal)
        }
    };
    match config.access_model {
        // Open: anyone not banned, except that publish-only may neither subscribe nor
        // retrieve (§4.1 table): the access model opens the node to `none`, it does not
        // widen what an affiliation was granted.
        AccessModel::Open => verdict(aff != Affiliation::PublishOnly, Error::Forbidden),
        // Authorize (§4.5): anyone not banned may ask to subscribe (rule 6 makes the
        // subscription pending); only subscribers and affiliates retrieve items.
        AccessModel::Authorize if action == Action::Subscribe => Decision::Allow,
        AccessModel::Authorize => verdict(
            f.subscribed || (aff != Affiliation::None && allowed(aff, action)),
            Error::NotAuthorizedSubscriber,
        ),
        // Presence and roster (§4.5): affiliates as the table says, plus whoever the
        // owners' rosters admit. A roster not known yet is fetched and the question asked
        // again; no rosters at all (no privilege) admits nobody else.
        AccessModel::Presence | AccessModel::Roster if aff != Affiliation::None => {
            verdict(allowed(aff, action), Error::Forbidden)
        }
        AccessModel::Presence | AccessModel::Roster => {
            let presence = config.access_model == AccessModel::Presence;
            let refusal = if presence {
                Error::PresenceSubscriptionRequired
            } else {
                Error::NotInRosterGroup
            };
            let Some(r) = &f.roster else {
                return Decision::Deny(refusal);
            };
            let admitted = if presence {
                r.sees_presence
            } else {
                config
                    .roster_groups_allowed
                    .iter()
                    .any(|g| r.groups.contains(g))
            };
            if admitted {
                Decision::Allow
            } else if !r.missing.is_empty() {
                // Another owner's roster might admit it.
                Decision::NeedRosters(r.missing.clone())
            } else {
                Decision::Deny(refusal)
            }
        }
        // Whitelist: only the affiliations the table grants, and never `none`.
        AccessModel::Whitelist if aff == Affiliation::None => Decision::Deny(Error::ClosedNode),
        AccessModel::Whitelist => verdict(allowed(aff, action), Error::Forbidden),
    }
}

/// Whether the node shows up for the entity in disco (§5.2, §5.4): open and authorize
/// nodes for anyone not banned (anyone may ask to subscribe to an authorize node), other
/// nodes only for those affiliated with them.
fn see_node(f: &Facts<'_>) -> Decision {
    match f.aff {
        Affiliation::Outcast => Decision::Deny(Error::Outcast),
        Affiliation::None
            if !matches!(
                f.config.access_model,
                AccessModel::Open | AccessModel::Authorize
            ) =>
        {
            Decision::Deny(Error::ClosedNode)
        }
        _ => Decision::Allow,
    }
}
