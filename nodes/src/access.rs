//! The capability table (§4.1) and the one `may()` check every operation calls first.
//!
//! Two questions decide whether an entity may act on a node:
//! - its affiliation, looked up in [`allowed`] (the §4.1 table, one row per affiliation);
//! - for subscribing and retrieving, the node's access model; for publishing, its publish
//!   model. Both are decided in [`may`] and nowhere else.
//!
//! Service admins are treated as owners by the caller (it passes `Affiliation::Owner`).

use crate::model::{AccessModel, Affiliation, NodeConfig, PublishModel};
use crate::roster::RosterStanding;
use crate::Error;

/// Something an entity may or may not do on a node: the columns of the §4.1 table, with
/// "Delete Single Item" split by whose item it is (see the table's footnote) and the two
/// owner-only management use cases (§8.8, §8.9) added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Subscribe (§6.1).
    Subscribe,
    /// Retrieve items (§6.5), list item ids, see the node in disco.
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
    /// List and change subscriptions (§8.8).
    ManageSubscriptions,
    /// List and change affiliations (§8.9).
    ManageAffiliations,
}

impl Action {
    /// Every action, in table column order.
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

/// The §4.1 table: may an entity with `aff` do `action`, affiliation alone considered?
///
/// Footnote choices: a publisher may delete any item and purge; a publish-only entity
/// may delete only its own items and may not purge. Access and publish models can widen
/// Subscribe/RetrieveItems/PublishItems beyond this table; [`may`] applies them.
pub fn allowed(aff: Affiliation, action: Action) -> bool {
    use Action::*;
    use Affiliation as A;
    match aff {
        A::Owner => true,
        A::Publisher => matches!(
            action,
            Subscribe | RetrieveItems | PublishItems | DeleteOwnItem | DeleteAnyItem | PurgeNode
        ),
        A::PublishOnly => matches!(action, PublishItems | DeleteOwnItem),
        A::Member => matches!(action, Subscribe | RetrieveItems),
        // §4.1 lets `none` subscribe; whether it actually may depends on the access model.
        A::None => matches!(action, Subscribe),
        A::Outcast => false,
    }
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

/// [`may_in_roster`] for checks where the owners' rosters do not matter, or are not known:
/// `presence` and `roster` nodes then admit only their affiliates.
pub fn may(
    aff: Affiliation,
    action: Action,
    config: &NodeConfig,
    subscribed: bool,
) -> Result<(), Error> {
    may_in_roster(aff, action, config, subscribed, None)
}

/// The one authorization check: may an entity with effective affiliation `aff` (admins
/// pass `Owner`) do `action` on a node configured as `config`? `subscribed` says whether
/// it holds a subscription in state subscribed (it matters for `publish_model=subscribers`
/// and for retrieving items from an authorize node). `roster` is what the entity is to the
/// node's owners (their rosters), for the `presence` and `roster` access models; `None`
/// when rosters are not available, which shuts out everyone not affiliated.
pub fn may_in_roster(
    aff: Affiliation,
    action: Action,
    config: &NodeConfig,
    subscribed: bool,
    roster: Option<&RosterStanding>,
) -> Result<(), Error> {
    if aff == Affiliation::Outcast {
        return Err(Error::Outcast);
    }
    match action {
        Action::Subscribe | Action::RetrieveItems => match config.access_model {
            // Open: anyone not banned, except that publish-only may neither subscribe nor
            // retrieve (§4.1 table): the access model opens the node to `none`, it does not
            // widen what an affiliation was granted.
            AccessModel::Open if aff == Affiliation::PublishOnly => Err(Error::Forbidden),
            AccessModel::Open => Ok(()),
            // Authorize (§4.5): anyone not banned may ask to subscribe (the engine makes
            // the subscription pending); only subscribers and affiliates retrieve items.
            AccessModel::Authorize if action == Action::Subscribe => Ok(()),
            AccessModel::Authorize if subscribed => Ok(()),
            AccessModel::Authorize if aff != Affiliation::None && allowed(aff, action) => Ok(()),
            AccessModel::Authorize => Err(Error::NotAuthorizedSubscriber),
            // Presence and roster (§4.5): affiliates as the table says, plus whoever the
            // owners' rosters admit. A roster not known yet is fetched and the question
            // asked again; no rosters at all (no privilege) admits nobody else.
            AccessModel::Presence | AccessModel::Roster if aff != Affiliation::None => {
                if allowed(aff, action) {
                    Ok(())
                } else {
                    Err(Error::Forbidden)
                }
            }
            AccessModel::Presence | AccessModel::Roster => {
                let refusal = if config.access_model == AccessModel::Presence {
                    Error::PresenceSubscriptionRequired
                } else {
                    Error::NotInRosterGroup
                };
                let Some(r) = roster else {
                    return Err(refusal);
                };
                let admitted = if config.access_model == AccessModel::Presence {
                    r.sees_presence
                } else {
                    config
                        .roster_groups_allowed
                        .iter()
                        .any(|g| r.groups.contains(g))
                };
                if admitted {
                    Ok(())
                } else if !r.missing.is_empty() {
                    // Another owner's roster might admit it.
                    Err(Error::RosterNeeded(r.missing.clone()))
                } else {
                    Err(refusal)
                }
            }
            // Whitelist (and, failing closed, models not implemented yet): only the
            // affiliations the table grants, and never `none`.
            _ if aff == Affiliation::None => Err(Error::ClosedNode),
            _ if allowed(aff, action) => Ok(()),
            _ => Err(Error::Forbidden),
        },
        Action::PublishItems => {
            let ok = match config.publish_model {
                PublishModel::Publishers => allowed(aff, action),
                PublishModel::Subscribers => allowed(aff, action) || subscribed,
                PublishModel::Open => true,
            };
            if ok {
                Ok(())
            } else {
                Err(Error::PublishForbidden)
            }
        }
        _ if allowed(aff, action) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// Whether the node shows up for the entity in disco#items (§5.2): open and authorize
/// nodes for anyone not banned, other nodes only for those affiliated with them.
pub fn visible(aff: Affiliation, config: &NodeConfig) -> bool {
    match aff {
        Affiliation::Outcast => false,
        // Authorize nodes are listed: anyone may ask to subscribe to them.
        Affiliation::None => matches!(
            config.access_model,
            AccessModel::Open | AccessModel::Authorize
        ),
        _ => true,
    }
}
