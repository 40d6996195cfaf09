//! Who is online, with which `show`: plain data, fed by the component from presence stanzas.

use crate::model::Show;
use crate::{BareJid, FullJid};
use std::collections::{BTreeMap, HashMap};

/// Available resources of each bare JID, with their `show`.
#[derive(Debug, Clone, Default)]
pub struct PresenceTable {
    online: HashMap<BareJid, BTreeMap<String, Show>>,
}

impl PresenceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// `jid` became (or stays) available with `show`. Returns true if it was not available before.
    pub fn available(&mut self, jid: &FullJid, show: Show) -> bool {
        self.online
            .entry(jid.to_bare())
            .or_default()
            .insert(jid.resource().to_string(), show)
            .is_none()
    }

    /// `jid` went offline. Returns true if it was available.
    pub fn unavailable(&mut self, jid: &FullJid) -> bool {
        let bare = jid.to_bare();
        let Some(res) = self.online.get_mut(&bare) else {
            return false;
        };
        let was = res.remove(jid.resource().as_str()).is_some();
        if res.is_empty() {
            self.online.remove(&bare);
        }
        was
    }

    /// Every resource of `jid` went offline (an unavailable presence from the bare JID).
    pub fn all_unavailable(&mut self, jid: &BareJid) {
        self.online.remove(jid);
    }

    /// The available resources of `jid`, with their show.
    pub fn resources(&self, jid: &BareJid) -> impl Iterator<Item = (&str, Show)> {
        self.online
            .get(jid)
            .into_iter()
            .flat_map(|m| m.iter().map(|(r, s)| (r.as_str(), *s)))
    }

    /// The show of one full JID, if it is available.
    pub fn show(&self, jid: &FullJid) -> Option<Show> {
        self.online
            .get(&jid.to_bare())
            .and_then(|m| m.get(jid.resource().as_str()))
            .copied()
    }
}
