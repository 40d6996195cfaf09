//! Online backup: a copy of the whole database, taken while nothing is being committed.
//!
//! The service loop is the only writer and commits each request as one sled batch; it
//! calls [`SledStore::backup_to`] between batches (after a sync), so the copy holds
//! exactly the commits made before it and none after: a state the service was in. The
//! copy is a data directory of its own (`DIR/v2/`), written in `DIR.tmp` and renamed to
//! `DIR` once flushed, so a `DIR` that exists is complete. Restoring is pointing
//! `--data-dir` at it (or a copy of it). Buckets are copied as they are, without decoding.

use crate::bulk::Writer;
use crate::progress::Progress;
use crate::{layout, SledStore};
use roost_nodes::StoreError;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// sled keys copied (buckets, not items: see [`crate::keys`]).
    pub keys: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
    /// How long the copy took (the service waits meanwhile).
    pub took: Duration,
}

impl SledStore {
    /// Copies the database into the new data directory `dir` (which must not exist). Call
    /// it only between commits; see the module documentation.
    pub fn backup_to(&self, dir: &Path) -> Result<BackupReport, StoreError> {
        let started = Instant::now();
        self.settle()?;
        if dir.exists() {
            return Err(StoreError(format!(
                "{} exists already: a backup goes into a new directory",
                dir.display()
            )));
        }
        let mut tmp = dir.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| StoreError(format!("cannot remove {}: {e}", tmp.display())))?;
        }
        let v2 = tmp.join(layout::V2);
        std::fs::create_dir_all(&v2)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", v2.display())))?;
        let copy = SledStore::open_with(crate::sled_config(&v2))?;
        let mut w = Writer::new(copy.raw_tree().clone());
        let mut bytes = 0u64;
        // sled's size on disk (log included) is an upper bound of what is copied: enough
        // for a progress estimate, and counting keys would read everything twice.
        let total = self.db.size_on_disk().unwrap_or(0);
        let mut progress = Progress::new("backing up", "bytes", total);
        for (n, kv) in self.raw_tree().iter().enumerate() {
            let (k, v) = kv.map_err(|e| StoreError(format!("sled: {e}")))?;
            bytes += (k.len() + v.len()) as u64;
            w.put(k.to_vec(), v.to_vec())?;
            if (n as u64).is_multiple_of(4096) {
                progress.at(bytes.min(total));
            }
        }
        w.flush()?;
        progress.done();
        copy.flush()?;
        let keys = w.keys;
        drop(w);
        drop(copy);
        layout::sync_dir(&v2)?;
        layout::sync_dir(&tmp)?;
        std::fs::rename(&tmp, dir).map_err(|e| {
            StoreError(format!(
                "cannot rename {} to {}: {e}",
                tmp.display(),
                dir.display()
            ))
        })?;
        if let Some(parent) = dir.parent() {
            layout::sync_dir(parent)?;
        }
        Ok(BackupReport {
            keys,
            bytes,
            took: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_nodes::{Change, ChangeSet, Item, Jid, NodeConfig, NodeRecord, Store};

    #[test]
    fn a_backup_is_the_same_database_and_complete_once_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SledStore::open(&dir.path().join("data")).unwrap();
        let mut c = ChangeSet::default();
        c.push(Change::PutNode(NodeRecord {
            name: "n".into(),
            uid: 1,
            creator: "a@example.org".parse().unwrap(),
            created: 5,
            config: NodeConfig::default(),
        }));
        for seq in 1..=2000 {
            c.push(Change::PutItem {
                uid: 1,
                item: Item {
                    id: format!("i{seq}"),
                    seq,
                    first_seq: None,
                    publisher: Jid::new("a@example.org/r").unwrap(),
                    published: seq,
                    payload: format!("<p xmlns='urn:x'>{seq}</p>"),
                },
            });
        }
        s.commit(&c).unwrap();
        let to = dir.path().join("backups").join("one");
        let r = s.backup_to(&to).unwrap();
        assert!(r.keys > 2);
        assert!(!dir.path().join("backups").join("one.tmp").exists());
        assert!(s.backup_to(&to).is_err(), "never over an existing backup");
        let mut copy = SledStore::open(&to).unwrap();
        assert_eq!(copy.load().unwrap(), s.load().unwrap());
        assert_eq!(
            copy.latest_items(1, None).unwrap(),
            s.latest_items(1, None).unwrap()
        );
        assert_eq!(copy.item(1, "i1999").unwrap().unwrap().seq, 1999);
    }
}
