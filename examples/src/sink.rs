//! What `roost-log-sink` writes, and how it stays exact across crashes: the lines of each
//! source (a shipper on a node), each written once and in order, into one file or one file
//! per source, with a state file that never claims an unwritten line.
//!
//! Sources are told apart by node as well as by shipper id, so that a sink collecting a
//! collection (XEP-0248: every leaf below it) keeps two shippers that chose the same id on
//! different leaves apart. The state file keeps the sink's own node's entries under the
//! keys a single-node sink always used (`size`, `last_item`, `line.SHIPPER`), so existing
//! state files read the same; other nodes' entries are `item.NODE` and
//! `src.NODE.SHIPPER`, and per-source files `size.PATH`, with the names
//! percent-encoded ([`enc`]). A filtered sink (`--filter`) also keeps its subscription's
//! subid, `subid`, so that it finds the same subscription again instead of making a new
//! one on every start.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _};

use crate::{decode, load_state, open_append, save_state, shipper_of, Unit};

/// Items waiting behind gaps, at most; beyond, they are dropped and refetched.
pub const MAX_WAITING: usize = 100_000;

/// Where the lines of a source come from: a shipper publishing to a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// The leaf node the lines were published to.
    pub node: String,
    /// The shipper's id (the prefix of its item ids).
    pub shipper: String,
}

/// Where the lines go.
#[derive(Debug, Clone)]
pub enum Dest {
    /// Every source into one file.
    File(PathBuf),
    /// One file per source: `DIR/NODE/SHIPPER.log`, the node's `/`-separated segments as
    /// directories, every segment and the shipper id percent-encoded ([`enc`]).
    Dir(PathBuf),
}

struct OutFile {
    file: BufWriter<File>,
    /// Bytes written (flushed or not).
    size: u64,
    dirty: bool,
}

/// The output and what was written to it.
pub struct Output {
    dest: Dest,
    /// The sink's `--node`: its entries keep the single-node state keys.
    node: String,
    state_path: PathBuf,
    files: BTreeMap<PathBuf, OutFile>,
    /// Sizes recorded in the state file, for files not opened yet.
    recorded: BTreeMap<PathBuf, u64>,
    /// Last line number written, per source.
    pub last: BTreeMap<Source, u64>,
    /// Per node, the item that brought its newest line: where catching up resumes.
    pub last_item: BTreeMap<String, String>,
    /// Items waiting behind a gap, by (source, first line number).
    pub waiting: BTreeMap<(Source, u64), Vec<Unit>>,
    /// Since when something has been waiting.
    pub waiting_since: Option<Instant>,
    /// The subid of the sink's own (filtered) subscription, when it has one.
    subscription: Option<String>,
    dirty: bool,
}

/// Percent-encodes every byte but ASCII letters, digits, `_` and `-`; the empty string
/// is `%` (which no encoding produces otherwise), so that no name becomes `.`, `..`, an
/// empty path segment, or a state key with `.`, `=` or a newline in it.
pub fn enc(s: &str) -> String {
    if s.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`enc`]; `None` for text it cannot have produced.
pub fn dec(s: &str) -> Option<String> {
    if s == "%" {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Output {
    /// Open the output as the state file at `state_path` records it: every file is cut
    /// back to the size the state says was durably written (lines written after the last
    /// commit come again); in a directory, files the state does not know are emptied.
    pub fn open(dest: Dest, node: &str, state_path: PathBuf) -> anyhow::Result<Output> {
        let st = load_state(&state_path)
            .with_context(|| format!("reading state file {}", state_path.display()))?;
        let mut out = Output {
            dest: dest.clone(),
            node: node.to_owned(),
            state_path,
            files: BTreeMap::new(),
            recorded: BTreeMap::new(),
            last: BTreeMap::new(),
            last_item: BTreeMap::new(),
            waiting: BTreeMap::new(),
            waiting_since: None,
            subscription: None,
            dirty: false,
        };
        for (k, v) in &st {
            let n = || v.parse::<u64>().ok();
            if let Some(shipper) = k.strip_prefix("line.") {
                if let Some(n) = n() {
                    out.last.insert(out.source(node, shipper), n);
                }
            } else if let Some(rest) = k.strip_prefix("src.") {
                let (Some((node, shipper)), Some(n)) = (rest.split_once('.'), n()) else {
                    continue;
                };
                if let (Some(node), Some(shipper)) = (dec(node), dec(shipper)) {
                    out.last.insert(Source { node, shipper }, n);
                }
            } else if k == "subid" {
                out.subscription = Some(v.clone());
            } else if k == "last_item" {
                out.last_item.insert(node.to_owned(), v.clone());
            } else if let Some(node) = k.strip_prefix("item.").and_then(dec) {
                out.last_item.insert(node, v.clone());
            } else if k == "size" {
                if let (Dest::File(p), Some(n)) = (&dest, n()) {
                    out.recorded.insert(p.clone(), n);
                }
            } else if let Some(rel) = k.strip_prefix("size.").and_then(dec) {
                if let (Dest::Dir(d), Some(n)) = (&dest, n()) {
                    out.recorded.insert(d.join(rel), n);
                }
            }
        }
        match &dest {
            Dest::File(p) => {
                let size = out.recorded.get(p).copied().unwrap_or(0);
                cut(p, size, &out.state_path)?;
                out.recorded.insert(p.clone(), size);
            }
            Dest::Dir(d) => {
                fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                for f in log_files(d)? {
                    let size = out.recorded.get(&f).copied().unwrap_or(0);
                    cut(&f, size, &out.state_path)?;
                }
            }
        }
        Ok(out)
    }

    fn source(&self, node: &str, shipper: &str) -> Source {
        Source {
            node: node.to_owned(),
            shipper: shipper.to_owned(),
        }
    }

    /// The file a source's lines go to.
    pub fn path_of(&self, src: &Source) -> PathBuf {
        match &self.dest {
            Dest::File(p) => p.clone(),
            Dest::Dir(d) => {
                let mut p = d.clone();
                for seg in src.node.split('/') {
                    p.push(enc(seg));
                }
                p.push(format!("{}.log", enc(&src.shipper)));
                p
            }
        }
    }

    /// Bytes written so far to every file.
    pub fn size(&self) -> u64 {
        let open: u64 = self.files.values().map(|f| f.size).sum();
        let closed: u64 = self
            .recorded
            .iter()
            .filter(|(p, _)| !self.files.contains_key(*p))
            .map(|(_, n)| n)
            .sum();
        open + closed
    }

    /// The subid of the sink's own subscription, as last recorded.
    pub fn subscription(&self) -> Option<&str> {
        self.subscription.as_deref()
    }

    /// Record the subid of the sink's own subscription (saved with the next commit).
    pub fn set_subscription(&mut self, subid: Option<String>) {
        if self.subscription != subid {
            self.subscription = subid;
            self.dirty = true;
        }
    }

    /// Take one item of `node`: write what follows on from its source's last line, keep
    /// what is ahead of a gap, drop what was written already. Returns the item's first
    /// line number (`None` when it is not a log batch).
    pub fn deliver(
        &mut self,
        node: &str,
        id: &str,
        payload: &minidom::Element,
    ) -> io::Result<Option<u64>> {
        self.take(node, id, payload, true)
    }

    /// Take one item of `node` that the sink's filter does not select: none of its lines
    /// is written, but where it follows on from its source's last line it counts as
    /// handled, so that selected lines numbered after it (a filter that selects items
    /// rather than whole streams) do not wait for it. Nothing of it waits behind a gap: a
    /// later read of the history passes it again. Returns the item's first line number.
    pub fn pass(
        &mut self,
        node: &str,
        id: &str,
        payload: &minidom::Element,
    ) -> io::Result<Option<u64>> {
        self.take(node, id, payload, false)
    }

    fn take(
        &mut self,
        node: &str,
        id: &str,
        payload: &minidom::Element,
        write: bool,
    ) -> io::Result<Option<u64>> {
        let (Some(shipper), Some((first, units))) = (shipper_of(id), decode(payload)) else {
            tracing::warn!(id, node, "item is not a roost-log-ship batch; ignored");
            return Ok(None);
        };
        if units.is_empty() {
            return Ok(Some(first));
        }
        let src = self.source(node, shipper);
        if self.apply(&src, first, &units, write)? {
            self.last_item.insert(node.to_owned(), id.to_owned());
            self.drain_waiting(&src)?;
        } else if write
            && first > self.last.get(&src).copied().unwrap_or(0) + 1
            && self.waiting.len() < MAX_WAITING
        {
            let slot = self.waiting.entry((src, first)).or_default();
            if units.len() > slot.len() {
                *slot = units;
            }
        }
        self.waiting_since = match (self.waiting.is_empty(), self.waiting_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
        Ok(Some(first))
    }

    /// Write whatever waited for the lines of `src` written so far.
    fn drain_waiting(&mut self, src: &Source) -> io::Result<()> {
        loop {
            let next = self.last.get(src).copied().unwrap_or(0) + 1;
            let ready: Vec<(Source, u64)> = self
                .waiting
                .range((src.clone(), 0)..=(src.clone(), next))
                .map(|(k, _)| k.clone())
                .collect();
            if ready.is_empty() {
                return Ok(());
            }
            for k in ready {
                if let Some(u) = self.waiting.remove(&k) {
                    self.apply(src, k.1, &u, true)?;
                }
            }
        }
    }

    /// Write the units numbered after the source's last line (or, without `write`, only
    /// count them as handled), if they follow on from it; true when the source advanced.
    fn apply(&mut self, src: &Source, first: u64, units: &[Unit], write: bool) -> io::Result<bool> {
        let last = self.last.get(src).copied().unwrap_or(0);
        let end = first + units.len() as u64 - 1;
        if first > last + 1 || end <= last {
            return Ok(false);
        }
        if !write {
            self.last.insert(src.clone(), end);
            self.dirty = true;
            return Ok(true);
        }
        let path = self.path_of(src);
        let f = self.file(&path)?;
        for u in &units[(last + 1 - first) as usize..] {
            let bytes = u.to_log_bytes();
            f.file.write_all(&bytes)?;
            f.size += bytes.len() as u64;
        }
        f.dirty = true;
        self.last.insert(src.clone(), end);
        self.dirty = true;
        Ok(true)
    }

    /// The open file at `path`, opened (and created, durably) on first use.
    fn file(&mut self, path: &Path) -> io::Result<&mut OutFile> {
        if !self.files.contains_key(path) {
            let fresh = !path.exists();
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let file = open_append(path)?;
            if fresh {
                // The new name must survive a crash as well as its contents.
                if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
                    let _ = dir.sync_all();
                }
            }
            let size = file.metadata()?.len();
            self.files.insert(
                path.to_owned(),
                OutFile {
                    file: BufWriter::with_capacity(1 << 16, file),
                    size,
                    dirty: false,
                },
            );
        }
        Ok(self.files.get_mut(path).expect("just inserted"))
    }

    /// After reading a node's whole history: give up on the lines it no longer has, those
    /// before `oldest[source]`, the first line of the source's oldest item in it (older
    /// items were dropped for `max_items`). A gap *after* that is not skipped: the lines
    /// are late, not gone (a publish being retried while later ones went through, as
    /// around a Roost restart), and come live or with a later read. Returns whether a gap
    /// remains.
    pub fn skip_expired(&mut self, oldest: &BTreeMap<Source, u64>) -> io::Result<bool> {
        for (src, &h) in oldest {
            let last = self.last.get(src).copied().unwrap_or(0);
            if h > last + 1 {
                eprintln!(
                    "roost-log-sink: lines {}..{} of shipper {} on {} are no longer in the \
                     node's history; skipped",
                    last + 1,
                    h - 1,
                    src.shipper,
                    src.node
                );
                self.last.insert(src.clone(), h - 1);
                self.dirty = true;
                self.drain_waiting(src)?;
            }
        }
        if self.waiting.is_empty() {
            self.waiting_since = None;
        }
        Ok(!self.waiting.is_empty())
    }

    /// Make the output durable, then record it: the state never claims unwritten lines.
    pub fn commit(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        for f in self.files.values_mut().filter(|f| f.dirty) {
            f.file.flush()?;
            f.file.get_ref().sync_data()?;
            f.dirty = false;
        }
        let mut st = BTreeMap::new();
        let mut sizes = self.recorded.clone();
        sizes.extend(self.files.iter().map(|(p, f)| (p.clone(), f.size)));
        for (p, n) in sizes {
            match &self.dest {
                Dest::File(_) => st.insert("size".to_owned(), n.to_string()),
                Dest::Dir(d) => {
                    let rel = p
                        .strip_prefix(d)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .into_owned();
                    st.insert(format!("size.{}", enc(&rel)), n.to_string())
                }
            };
        }
        for (node, id) in &self.last_item {
            let key = if *node == self.node {
                "last_item".to_owned()
            } else {
                format!("item.{}", enc(node))
            };
            st.insert(key, id.clone());
        }
        if let Some(subid) = &self.subscription {
            st.insert("subid".to_owned(), subid.clone());
        }
        for (src, n) in &self.last {
            let key = if src.node == self.node {
                format!("line.{}", src.shipper)
            } else {
                format!("src.{}.{}", enc(&src.node), enc(&src.shipper))
            };
            st.insert(key, n.to_string());
        }
        save_state(&self.state_path, &st).context("saving state")?;
        self.dirty = false;
        Ok(())
    }
}

/// Cut `path` back to `size` (creating it empty when missing); refuse a file shorter than
/// what was recorded as written, which someone changed behind the sink's back.
fn cut(path: &Path, size: u64, state: &Path) -> anyhow::Result<()> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    if len < size {
        bail!(
            "{} has {len} bytes but {size} were written to it: it was changed behind the \
             sink's back (remove {} to start over)",
            path.display(),
            state.display()
        );
    }
    if len > size {
        f.set_len(size)?;
        f.sync_all()?;
    }
    Ok(())
}

/// Every `*.log` file below `dir`.
fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                out.push(p);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, item_id};

    fn units(texts: &[&str]) -> Vec<Unit> {
        texts
            .iter()
            .map(|t| Unit {
                bytes: t.as_bytes().to_vec(),
                newline: true,
            })
            .collect()
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("roost-sink-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn names_encode_reversibly_and_safely() {
        for s in [
            "",
            ".",
            "..",
            "logs/web",
            "a.b=c\nd",
            "caf\u{e9}",
            "%",
            "x-y_z",
        ] {
            let e = enc(s);
            assert_eq!(dec(&e).as_deref(), Some(s));
            assert!(!e.contains(['.', '/', '=', '\n']) && e != "." && !e.is_empty());
        }
        assert_eq!(enc("logs"), "logs");
        assert_eq!(dec("%4"), None);
    }

    #[test]
    fn one_file_per_source_in_order_and_cut_back_to_the_state_after_a_crash() {
        let d = tmp("dir");
        let state = d.join("state");
        let out_dir = d.join("out");
        let mut out = Output::open(Dest::Dir(out_dir.clone()), "logs", state.clone()).unwrap();
        let nginx = "logs/web/nginx";
        // Two shippers on one leaf, one with the same id on another leaf.
        out.deliver(
            nginx,
            &item_id("a", 1),
            &encode(1, &units(&["a1", "a2"]), &[]),
        )
        .unwrap();
        out.deliver(nginx, &item_id("b", 2), &encode(2, &units(&["b2"]), &[]))
            .unwrap(); // ahead of a gap: waits
        out.deliver(
            "logs/db",
            &item_id("a", 1),
            &encode(1, &units(&["x1"]), &[]),
        )
        .unwrap();
        out.deliver(nginx, &item_id("b", 1), &encode(1, &units(&["b1"]), &[]))
            .unwrap();
        out.commit().unwrap();
        let read = |p: &str| fs::read_to_string(out_dir.join(p)).unwrap();
        assert_eq!(read("logs/web/nginx/a.log"), "a1\na2\n");
        assert_eq!(read("logs/web/nginx/b.log"), "b1\nb2\n");
        assert_eq!(read("logs/db/a.log"), "x1\n");
        // Written but not committed, then a crash: cut back, and the line comes again.
        out.deliver(nginx, &item_id("a", 3), &encode(3, &units(&["a3"]), &[]))
            .unwrap();
        out.files.values_mut().for_each(|f| f.file.flush().unwrap());
        drop(out);
        let mut out = Output::open(Dest::Dir(out_dir.clone()), "logs", state.clone()).unwrap();
        assert_eq!(read("logs/web/nginx/a.log"), "a1\na2\n");
        assert_eq!(
            out.last_item.get(nginx).map(String::as_str),
            Some(&*item_id("b", 1))
        );
        out.deliver(
            nginx,
            &item_id("a", 2),
            &encode(2, &units(&["a2", "a3"]), &[]),
        )
        .unwrap();
        out.commit().unwrap();
        assert_eq!(read("logs/web/nginx/a.log"), "a1\na2\na3\n");
        // A file the state never recorded (created, then a crash before the commit) is
        // emptied, and a file cut behind the sink's back is refused.
        fs::write(out_dir.join("stray.log"), "zz").unwrap();
        drop(out);
        Output::open(Dest::Dir(out_dir.clone()), "logs", state.clone()).unwrap();
        assert_eq!(read("stray.log"), "");
        fs::write(out_dir.join("logs/db/a.log"), "").unwrap();
        assert!(Output::open(Dest::Dir(out_dir), "logs", state).is_err());
    }

    #[test]
    fn passed_items_let_later_lines_through_and_the_subid_is_kept() {
        let d = tmp("pass");
        let state = d.join("state");
        let file = d.join("out.log");
        let mut out = Output::open(Dest::File(file.clone()), "logs", state.clone()).unwrap();
        // Lines 2..3 wait for line 1, which the filter does not select: passing it writes
        // nothing and lets them through.
        out.deliver(
            "logs",
            &item_id("a", 2),
            &encode(2, &units(&["a2", "a3"]), &[]),
        )
        .unwrap();
        assert_eq!(out.waiting.len(), 1);
        assert_eq!(
            out.pass("logs", &item_id("a", 1), &encode(1, &units(&["a1"]), &[]))
                .unwrap(),
            Some(1)
        );
        assert!(out.waiting.is_empty());
        // A passed item ahead of a gap does not wait (a later read passes it again), and
        // one passed twice changes nothing.
        out.pass("logs", &item_id("b", 5), &encode(5, &units(&["b5"]), &[]))
            .unwrap();
        out.pass("logs", &item_id("a", 1), &encode(1, &units(&["a1"]), &[]))
            .unwrap();
        assert!(out.waiting.is_empty());
        assert_eq!(out.last_item["logs"], item_id("a", 1));
        assert_eq!(out.subscription(), None);
        out.set_subscription(Some("sub-7".to_owned()));
        out.commit().unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "a2\na3\n");
        let st = load_state(&state).unwrap();
        assert_eq!(
            (st["line.a"].as_str(), st["subid"].as_str()),
            ("3", "sub-7")
        );
        assert!(!st.contains_key("line.b"));
        let out = Output::open(Dest::File(file), "logs", state).unwrap();
        assert_eq!(out.subscription(), Some("sub-7"));
    }

    #[test]
    fn a_single_node_sink_keeps_its_state_keys() {
        let d = tmp("file");
        let state = d.join("state");
        let file = d.join("out.log");
        save_state(
            &state,
            &BTreeMap::from([
                ("size".to_owned(), "3".to_owned()),
                ("line.app".to_owned(), "1".to_owned()),
                ("last_item".to_owned(), item_id("app", 1)),
            ]),
        )
        .unwrap();
        fs::write(&file, "l1\n").unwrap();
        let mut out = Output::open(Dest::File(file.clone()), "logs", state.clone()).unwrap();
        out.deliver("logs", &item_id("app", 2), &encode(2, &units(&["l2"]), &[]))
            .unwrap();
        out.commit().unwrap();
        let st = load_state(&state).unwrap();
        assert_eq!(st["size"], "6");
        assert_eq!(st["line.app"], "2");
        assert_eq!(st["last_item"], item_id("app", 2));
        assert_eq!(st.len(), 3);
        assert_eq!(fs::read_to_string(file).unwrap(), "l1\nl2\n");
    }
}
