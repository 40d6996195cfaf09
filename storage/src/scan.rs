//! Whole-store reads for offline tools (export, check): every item of a node in publish
//! order and every expiry entry, streamed bucket by bucket, never collected.

use crate::{keys, load, SledStore};
use roost_nodes::{Expiry, Item, StoreError};

impl SledStore {
    /// Every live item of node `uid`, oldest first, decoded one bucket at a time.
    pub fn items_of(
        &self,
        uid: u64,
    ) -> Result<impl Iterator<Item = Result<Item, StoreError>> + '_, StoreError> {
        Ok(self.walk(uid, 0, u64::MAX, false)?.map(|r| {
            let (seq, bucket, at) = r?;
            crate::codec::decode_item(seq, &bucket[at])
        }))
    }

    /// The live item of node `uid` at `seq`, if any.
    pub fn item_at(&self, uid: u64, seq: u64) -> Result<Option<Item>, StoreError> {
        match self.walk(uid, seq, seq, false)?.next() {
            Some(r) => {
                let (seq, bucket, at) = r?;
                crate::codec::decode_item(seq, &bucket[at]).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Every expiry entry, earliest first, stale ones included (see [`keys`]): check each
    /// with [`SledStore::item_at`].
    pub fn expiries(&self) -> impl Iterator<Item = Result<Expiry, StoreError>> + '_ {
        self.raw_tree().scan_prefix([keys::EXPIRY]).keys().map(|k| {
            let k = k.map_err(|e| StoreError(format!("sled: {e}")))?;
            keys::decode_expiry(&k)
        })
    }

    /// The raw walk over a node's items, for [`crate::check`].
    pub(crate) fn raw_walk(&self, uid: u64) -> load::Walk<'_> {
        load::Walk::new(self.raw_tree(), self.ops(), uid, 0, u64::MAX, false)
    }
}
