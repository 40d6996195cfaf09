//! The commit log: what makes a commit group durable, so that sled's flush is off the path
//! of every sync.
//!
//! A sync used to end in sled's flush: sled seals its log buffer and hands the write to its
//! I/O thread pool (a `pwrite` and a waited-for `sync_file_range`; the pool's seven idle
//! threads all wake at each hand-over), and Roost then ran an `fdatasync` of sled's log. At
//! the small groups of a moderate load that was most of Roost's CPU per publish
//! (docs/benchmarks.md, "The commit log").
//!
//! Now a group is first appended to this log, one record written with one `pwrite` on the
//! syncing thread and made durable with one `fdatasync`; only then do its writes go to sled,
//! which writes them out on its own (a log buffer when it fills, its flusher twice a
//! second). The store may hold a group's writes back a while and apply several groups at
//! once ([`crate::APPLY_BYTES`]): a bucket rewritten by every publish then reaches sled
//! once per many. The log is a file of fixed size ([`CAPACITY`], zero-filled once, so that
//! an `fdatasync` of an overwrite has no file size to record) written from its start; once
//! it is nearly full ([`Wal::needs_checkpoint`]), the store applies everything it holds
//! back and a *checkpoint* flushes sled (plus an `fdatasync` of sled's log: see
//! [`crate::Reopenable`] for why `sync_file_range` is not enough), after which every record
//! in the log is in sled on disk and writing starts again at offset 0.
//!
//! On opening, the records from offset 0 are applied to sled again, in order (each write
//! puts or removes a key outright, so applying a group sled already has changes nothing),
//! sled is checkpointed, and the log is marked empty. Records are chained so that a stale
//! one is never taken for a new one: each carries the log's run (chosen at random when it
//! is opened) and a sequence number, and applying stops at the first record that is torn
//! (length or CRC), from another run, or out of sequence. So the invariant, for a store
//! opened by path: sled never holds a write whose group's record is not on disk, and
//! every group synced since the last checkpoint is in the log.

use crate::journal;
use crate::packed::Writes;
use roost_nodes::StoreError;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The log's name inside sled's directory (`DATA_DIR/v2/`, see [`crate::layout`]).
pub const FILE: &str = "roost-commits";

/// The log's size in bytes. A checkpoint comes after about this many bytes of records;
/// after a crash, opening applies up to this many again (a few hundred milliseconds).
pub const CAPACITY: u64 = 16 * 1024 * 1024;

/// The log asks for a checkpoint once fewer than this many bytes are left: the next group
/// is appended before the checkpoint (only then may the store apply it), so it should fit.
/// A larger one is written past the end, and the file grows.
pub const ROOM: u64 = 1024 * 1024;

/// A record's header: payload length (u32), CRC-32 of the rest of the header and the
/// payload (u32), run (u64), sequence number (u64); all little-endian.
const HEADER: usize = 24;

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("commit log {}: {what}: {e}", path.display()))
}

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// What opening found in the log and applied to sled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Commit groups.
    pub groups: u64,
    /// Their writes.
    pub writes: u64,
}

/// The open commit log of one database.
pub struct Wal {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    at: u64,
    run: u64,
    /// The next record's sequence number.
    seq: u64,
    db: sled::Db,
    /// sled's log file, synced at checkpoints.
    sled_log: File,
    /// Wait for the disk; off only to measure what durability costs.
    durable: bool,
    /// The record being written (kept to reuse its allocation).
    buf: Vec<u8>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("path", &self.path)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (creating if needed) the log of the database `db` in `sled_dir`, applies to
    /// `tree` the groups it holds, and checkpoints if there were any.
    pub fn open(
        sled_dir: &Path,
        db: &sled::Db,
        tree: &sled::Tree,
    ) -> Result<(Wal, Option<Replayed>), StoreError> {
        let path = sled_dir.join(FILE);
        let sled_log_path = sled_dir.join("db");
        let sled_log = File::open(&sled_log_path).map_err(|e| {
            StoreError(format!(
                "cannot open {} to sync it: {e}",
                sled_log_path.display()
            ))
        })?;
        let existed = path.exists();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| io("cannot read the size of", &path, e))?
            .len();
        if len < CAPACITY {
            zero_fill(&mut file, len, &path)?;
        }
        if !existed {
            crate::layout::sync_dir(sled_dir)?;
        }
        let mut wal = Wal {
            file,
            path,
            at: 0,
            run: random_run(),
            seq: 1,
            db: db.clone(),
            sled_log,
            durable: true,
            buf: Vec::new(),
        };
        let replayed = wal.replay(tree)?;
        if replayed.is_some() {
            wal.checkpoint()?;
        }
        Ok((wal, replayed))
    }

    /// With `false`, appending does not wait for the disk (see
    /// [`crate::SledStore::set_durable`]).
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    /// Makes the group `writes` durable. The caller applies the writes to sled after this
    /// returns `Ok`, and not otherwise; and checkpoints when [`Wal::needs_checkpoint`],
    /// after applying every group appended so far.
    pub fn append(&mut self, writes: &Writes) -> Result<(), StoreError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(HEADER, 0);
        journal::encode_into(&mut buf, writes);
        let r = self.write_record(&mut buf);
        self.buf = buf;
        r
    }

    fn write_record(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        let payload = u32::try_from(buf.len() - HEADER).map_err(|_| {
            StoreError(format!(
                "a commit group of {} bytes is too large for the commit log",
                buf.len()
            ))
        })?;
        buf[0..4].copy_from_slice(&payload.to_le_bytes());
        buf[8..16].copy_from_slice(&self.run.to_le_bytes());
        buf[16..24].copy_from_slice(&self.seq.to_le_bytes());
        let crc = crc32fast::hash(&buf[8..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        // A record that does not fit is written past the end (the file grows); the store
        // checkpoints next, having applied it.
        self.file
            .write_all_at(buf, self.at)
            .map_err(|e| io("cannot write", &self.path, e))?;
        if self.durable {
            self.file
                .sync_data()
                .map_err(|e| io("fdatasync failed", &self.path, e))?;
        }
        self.at += buf.len() as u64;
        self.seq += 1;
        Ok(())
    }

    /// True when the log is nearly full: the caller applies every group appended so far to
    /// sled, then [`Wal::checkpoint`]s.
    pub fn needs_checkpoint(&self) -> bool {
        self.at + ROOM > CAPACITY
    }

    /// Makes everything applied to sled so far durable in sled itself, and empties the log.
    /// Every group appended must have been applied first.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.db.flush().map_err(sled_err)?;
        if self.durable {
            self.sled_log
                .sync_data()
                .map_err(|e| StoreError(format!("fdatasync of sled's log: {e}")))?;
        }
        // A zero length at offset 0 ends the log there: what follows is never applied.
        self.file
            .write_all_at(&[0; HEADER], 0)
            .map_err(|e| io("cannot write", &self.path, e))?;
        if self.durable {
            self.file
                .sync_data()
                .map_err(|e| io("fdatasync failed", &self.path, e))?;
        }
        self.at = 0;
        Ok(())
    }

    /// Applies the chain of records from offset 0 to `tree`. Reads record by record: after
    /// a clean close the log is one zero header, not 16 MiB to read.
    fn replay(&mut self, tree: &sled::Tree) -> Result<Option<Replayed>, StoreError> {
        let mut done = Replayed {
            groups: 0,
            writes: 0,
        };
        let mut chain: Option<(u64, u64)> = None;
        let mut at = 0;
        let size = self
            .file
            .metadata()
            .map_err(|e| io("cannot read the size of", &self.path, e))?
            .len();
        while let Some((run, seq, payload)) = self.record_at(at, size) {
            if let Some((r, s)) = chain {
                if run != r || seq != s + 1 {
                    break;
                }
            }
            chain = Some((run, seq));
            at += (HEADER + payload.len()) as u64;
            let writes = journal::decode(&payload).map_err(|what| {
                StoreError(format!(
                    "commit log {}: record {seq} passed its checksum but is damaged \
                     ({what}); move the file aside to open the store without it (the \
                     groups it holds may be lost) or restore a backup",
                    self.path.display()
                ))
            })?;
            done.groups += 1;
            done.writes += writes.len() as u64;
            journal::apply_each(tree, writes)?;
        }
        Ok((done.groups > 0).then_some(done))
    }

    /// The well-formed record at `at` of the log's `size` bytes, as (run, seq, payload);
    /// `None` where the log ends (a zero length, the end of the file, a torn or damaged
    /// record).
    fn record_at(&self, at: u64, size: u64) -> Option<(u64, u64, Vec<u8>)> {
        let mut head = [0u8; HEADER];
        self.file.read_exact_at(&mut head, at).ok()?;
        let len = u32::from_le_bytes(head[0..4].try_into().ok()?) as usize;
        if len == 0 {
            return None;
        }
        // A torn length may be anything: never allocate past the file's end.
        if at + (HEADER + len) as u64 > size {
            return None;
        }
        let crc = u32::from_le_bytes(head[4..8].try_into().ok()?);
        let mut payload = vec![0u8; len];
        self.file
            .read_exact_at(&mut payload, at + HEADER as u64)
            .ok()?;
        let mut h = crc32fast::Hasher::new();
        h.update(&head[8..]);
        h.update(&payload);
        if h.finalize() != crc {
            return None;
        }
        let run = u64::from_le_bytes(head[8..16].try_into().ok()?);
        let seq = u64::from_le_bytes(head[16..24].try_into().ok()?);
        Some((run, seq, payload))
    }
}

/// Extends the log with zeros to [`CAPACITY`] and makes that durable, once per database.
fn zero_fill(file: &mut File, from: u64, path: &Path) -> Result<(), StoreError> {
    std::io::Seek::seek(file, std::io::SeekFrom::Start(from))
        .map_err(|e| io("cannot write", path, e))?;
    // A page per write: the page cache then holds the file in single pages. Written a
    // megabyte at a time it is held in large folios, and every record's `pwrite` walks
    // the buffers of a whole folio (ext4's write_begin) and its `fdatasync` writes the folio
    // out: ~2 + 5 µs more per sync here (docs/benchmarks.md, "Holding groups back").
    let chunk = vec![0u8; 4096];
    let mut left = CAPACITY - from;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])
            .map_err(|e| io("cannot write", path, e))?;
        left -= n as u64;
    }
    file.sync_all().map_err(|e| io("fsync failed", path, e))
}

/// A run number unlikely to repeat: std's hasher keys are random per process and per call.
fn random_run() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::writes as group;

    fn open_db(dir: &Path) -> (sled::Db, sled::Tree) {
        // Through open_sled: a database just dropped may keep its lock a moment (sled's flusher).
        let db = crate::open_sled(&crate::sled_config(dir)).unwrap();
        let tree = db.open_tree(crate::keys::TREE).unwrap();
        (db, tree)
    }

    fn contents(tree: &sled::Tree) -> Vec<(String, String)> {
        tree.iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What a crash leaves when sled had none of the logged groups on disk: opening applies
    /// them all, in order, and empties the log.
    #[test]
    fn groups_sled_lost_are_applied_again_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, tree) = open_db(dir.path());
            let (mut wal, replayed) = Wal::open(dir.path(), &db, &tree).unwrap();
            assert_eq!(replayed, None);
            wal.append(&group(&[("a", Some("1")), ("b", Some("1"))]))
                .unwrap();
            wal.append(&group(&[("a", None), ("c", Some("2"))]))
                .unwrap();
            wal.append(&group(&[("b", Some("3"))])).unwrap();
        }
        let (db, tree) = open_db(dir.path());
        assert_eq!(contents(&tree), vec![]);
        let (_wal, replayed) = Wal::open(dir.path(), &db, &tree).unwrap();
        assert_eq!(
            replayed,
            Some(Replayed {
                groups: 3,
                writes: 5
            })
        );
        assert_eq!(contents(&tree), kv(&[("b", "3"), ("c", "2")]));
        drop(_wal);
        let (_wal, replayed) = Wal::open(dir.path(), &db, &tree).unwrap();
        assert_eq!(
            replayed, None,
            "the checkpoint after replaying empties the log"
        );
    }

    /// A record cut short or damaged ends the log: the groups before it are applied, it and
    /// whatever follows are not (it was never acknowledged: its fdatasync had not returned).
    #[test]
    fn a_torn_record_ends_the_log() {
        // Bytes into the last record: the high byte of its length (which then claims ~4 GiB:
        // nothing is allocated past the file's end), its CRC, its sequence number, its payload.
        for at in [3u64, 5, 20, 30] {
            let dir = tempfile::tempdir().unwrap();
            let last;
            {
                let (db, tree) = open_db(dir.path());
                let (mut wal, _) = Wal::open(dir.path(), &db, &tree).unwrap();
                wal.append(&group(&[("a", Some("1"))])).unwrap();
                wal.append(&group(&[("a", Some("2")), ("b", Some("2"))]))
                    .unwrap();
                last = wal.at;
                wal.append(&group(&[("a", Some("3"))])).unwrap();
                assert!(wal.at > last + at);
            }
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.path().join(FILE))
                .unwrap();
            f.write_all_at(&[0xff], last + at).unwrap();
            let (db, tree) = open_db(dir.path());
            let (_wal, replayed) = Wal::open(dir.path(), &db, &tree).unwrap();
            assert_eq!(
                replayed,
                Some(Replayed {
                    groups: 2,
                    writes: 3
                }),
                "damaged at byte {at}"
            );
            assert_eq!(contents(&tree), kv(&[("a", "2"), ("b", "2")]));
        }
    }

    /// Records from an earlier pass over the file (lower sequence numbers) or an earlier
    /// opening (another run) are never applied, even where they follow a new record whole.
    #[test]
    fn stale_records_are_not_taken_for_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (db, tree) = open_db(dir.path());
        let (mut wal, _) = Wal::open(dir.path(), &db, &tree).unwrap();
        let g = group(&[("k", Some("stale"))]);
        let mut rec = Vec::new();
        for (run, seq) in [(wal.run, wal.seq - 1), (wal.run ^ 1, wal.seq + 1)] {
            // A record as `append` writes it, with another run or sequence number.
            let (saved_run, saved_seq) = (wal.run, wal.seq);
            (wal.run, wal.seq) = (run, seq);
            wal.append(&g).unwrap();
            rec = wal.file_bytes(wal.at - wal.buf.len() as u64, wal.buf.len());
            (wal.run, wal.seq) = (saved_run, saved_seq);
            wal.checkpoint().unwrap();
            wal.append(&group(&[("k", Some("new"))])).unwrap();
            wal.file.write_all_at(&rec, wal.at).unwrap();
            drop(std::mem::replace(
                &mut wal,
                Wal::open(dir.path(), &db, &tree).unwrap().0,
            ));
            assert_eq!(contents(&tree), kv(&[("k", "new")]));
            tree.clear().unwrap();
        }
        assert!(!rec.is_empty());
    }

    /// When the log is nearly full, sled is checkpointed and the log starts again at offset
    /// 0: after that only the records written since are applied on opening.
    #[test]
    fn a_full_log_is_checkpointed_and_written_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let big = "x".repeat(1 << 20);
        let n = CAPACITY as usize / big.len() + 2;
        {
            let (db, tree) = open_db(dir.path());
            let (mut wal, _) = Wal::open(dir.path(), &db, &tree).unwrap();
            for i in 0..n {
                let g = group(&[("big", Some(&big)), ("i", Some(&i.to_string()))]);
                wal.append(&g).unwrap();
                for (k, v) in g {
                    tree.insert(k, v.unwrap()).unwrap();
                }
                if wal.needs_checkpoint() {
                    wal.checkpoint().unwrap();
                }
            }
            assert!(wal.at < CAPACITY / 4, "wrapped: {}", wal.at);
        }
        let (db, tree) = open_db(dir.path());
        let (_wal, replayed) = Wal::open(dir.path(), &db, &tree).unwrap();
        let r = replayed.unwrap();
        assert!(r.groups >= 1 && r.groups < 4, "{r:?}");
        assert_eq!(
            tree.get("i").unwrap().unwrap(),
            (n - 1).to_string().as_bytes()
        );
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE)).unwrap().len(),
            CAPACITY
        );
    }

    /// A group larger than the whole log is written past its end and applied on opening.
    #[test]
    fn a_group_larger_than_the_log_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let huge = "y".repeat(CAPACITY as usize + 10);
        {
            let (db, tree) = open_db(dir.path());
            let (mut wal, _) = Wal::open(dir.path(), &db, &tree).unwrap();
            wal.append(&group(&[("a", Some("1"))])).unwrap();
            wal.append(&group(&[("huge", Some(&huge))])).unwrap();
            assert!(wal.needs_checkpoint());
        }
        let (db, tree) = open_db(dir.path());
        let (_wal, replayed) = Wal::open(dir.path(), &db, &tree).unwrap();
        assert_eq!(
            replayed,
            Some(Replayed {
                groups: 2,
                writes: 2
            })
        );
        assert_eq!(tree.get("a").unwrap().unwrap(), &b"1"[..]);
        assert_eq!(tree.get("huge").unwrap().unwrap().len(), huge.len());
    }

    impl Wal {
        fn file_bytes(&self, at: u64, len: usize) -> Vec<u8> {
            let mut b = vec![0; len];
            self.file.read_exact_at(&mut b, at).unwrap();
            b
        }
    }
}
