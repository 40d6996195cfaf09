//! Reading the values filters refer to out of a stored payload, in one pass.
//!
//! A [`PathDict`] numbers the paths a set of filters uses and keeps them as a trie of
//! element names. Extraction runs quick-xml's pull parser over the payload and follows the
//! trie: it reads the attributes and collects the text of the elements the trie names, skips
//! every other subtree unparsed beyond its tags, and stops as soon as nothing it looks for
//! can still appear (for filters on the payload element's attributes, right after its start
//! tag).

use std::borrow::Cow;

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use rustc_hash::FxHashMap;

use super::compile::Sym;
use super::syntax::Path;
use super::value::value_number;

/// Index of a path in a [`PathDict`].
pub(crate) type PathId = u32;

/// One extracted value.
#[derive(Debug, Clone)]
pub(crate) struct Value<'p> {
    /// The attribute's value, or the element's text (all text inside it).
    pub(crate) text: Cow<'p, str>,
    /// The text as a number, when it is one.
    pub(crate) num: Option<f64>,
    /// The text's symbol in the index's string table, when some literal has this text
    /// (filled by [`FilterIndex::extract`](super::FilterIndex::extract)).
    pub(crate) sym: Option<Sym>,
}

/// The paths some filters use, numbered, and the trie that reads them.
#[derive(Debug, Default)]
pub(crate) struct PathDict {
    ids: FxHashMap<Path, PathId>,
    /// By id: the path and how many users hold it; `None` for a free id.
    paths: Vec<Option<(Path, u32)>>,
    free: Vec<PathId>,
    trie: Trie,
}

impl PathDict {
    /// Takes one more reference to `path`, numbering it when new.
    pub(crate) fn acquire(&mut self, path: &Path) -> PathId {
        if let Some(&id) = self.ids.get(path) {
            if let Some((_, refs)) = &mut self.paths[id as usize] {
                *refs += 1;
            }
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.paths[id as usize] = Some((path.clone(), 1));
                id
            }
            None => {
                self.paths.push(Some((path.clone(), 1)));
                (self.paths.len() - 1) as PathId
            }
        };
        self.ids.insert(path.clone(), id);
        self.trie = Trie::build(self.iter());
        id
    }

    /// Drops one reference taken by [`PathDict::acquire`].
    pub(crate) fn release(&mut self, id: PathId) {
        let Some(slot) = self.paths.get_mut(id as usize) else {
            return;
        };
        if let Some((path, refs)) = slot {
            *refs -= 1;
            if *refs == 0 {
                self.ids.remove(path);
                *slot = None;
                self.free.push(id);
                self.trie = Trie::build(self.iter());
            }
        }
    }

    pub(crate) fn id(&self, path: &Path) -> Option<PathId> {
        self.ids.get(path).copied()
    }

    /// The paths in use, with their ids.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (PathId, &Path)> {
        self.paths
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|(p, _)| (i as PathId, p)))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Reads the values of every known path out of `payload`, by id. A payload that is not
    /// well-formed yields what was read before the fault (values still being collected
    /// then are dropped): stored payloads were serialized by Roost and are well-formed.
    pub(crate) fn extract<'p>(&self, payload: &'p str) -> Vec<Option<Value<'p>>> {
        let mut out = vec![None; self.paths.len()];
        if !self.is_empty() {
            Walk::new(payload, &self.trie, &mut out).run();
        }
        out
    }
}

/// Values read from one payload, for [`FilterIndex::matches`](super::FilterIndex::matches)
/// and [`Filter::eval`](super::Filter::eval).
///
/// Borrows the payload (`'p`) and the index that read it (`'d`), so the index cannot change
/// while its values are in use.
#[derive(Debug)]
pub struct Extracted<'d, 'p> {
    pub(crate) dict: DictRef<'d>,
    pub(crate) values: Vec<Option<Value<'p>>>,
}

#[derive(Debug)]
pub(crate) enum DictRef<'d> {
    Borrowed(&'d PathDict),
    Owned(Box<PathDict>),
}

impl DictRef<'_> {
    pub(crate) fn get(&self) -> &PathDict {
        match self {
            DictRef::Borrowed(d) => d,
            DictRef::Owned(d) => d,
        }
    }
}

impl<'p> Extracted<'static, 'p> {
    /// Extraction for one filter's paths, with a dictionary of its own.
    pub(crate) fn standalone(paths: impl Iterator<Item = Path>, payload: &'p str) -> Self {
        let mut dict = PathDict::default();
        for p in paths {
            dict.acquire(&p);
        }
        let values = dict.extract(payload);
        Extracted {
            dict: DictRef::Owned(Box::new(dict)),
            values,
        }
    }
}

impl<'p> Extracted<'_, 'p> {
    /// The value at `path`: the attribute's value or the element's text; `None` when the
    /// payload has none there, or when the extractor was not asked for `path`.
    pub fn get(&self, path: &Path) -> Option<&str> {
        self.value(path).map(|v| &*v.text)
    }

    pub(crate) fn value(&self, path: &Path) -> Option<&Value<'p>> {
        let id = self.dict.get().id(path)?;
        self.by_id(id)
    }

    pub(crate) fn by_id(&self, id: PathId) -> Option<&Value<'p>> {
        self.values.get(id as usize)?.as_ref()
    }
}

/// `s` as a slice of `payload`, when it lies in it. quick-xml's attribute values borrow
/// the event, not the payload the event borrows; taking them from the payload again spares
/// a copy per value.
fn within<'p>(payload: &'p str, s: &str) -> Option<&'p str> {
    let start = (s.as_ptr() as usize).checked_sub(payload.as_ptr() as usize)?;
    payload.get(start..start.checked_add(s.len())?)
}

/// The paths as a tree of element names; node 0 is the payload element.
#[derive(Debug, Default)]
struct Trie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    parent: u32,
    children: Vec<(Box<str>, u32)>,
    /// Attributes wanted here (local name, path).
    attrs: Vec<(Box<str>, PathId)>,
    /// The path whose value is this element's text, if one is wanted.
    text: Option<PathId>,
}

impl Trie {
    fn build<'a>(paths: impl Iterator<Item = (PathId, &'a Path)>) -> Trie {
        let mut nodes = vec![TrieNode::default()];
        for (id, path) in paths {
            let mut at = 0usize;
            for step in path.steps.iter() {
                at = match nodes[at].children.iter().find(|(n, _)| n == step) {
                    Some(&(_, c)) => c as usize,
                    None => {
                        nodes.push(TrieNode {
                            parent: at as u32,
                            ..TrieNode::default()
                        });
                        let c = nodes.len() - 1;
                        nodes[at].children.push((step.clone(), c as u32));
                        c
                    }
                };
            }
            match &path.attr {
                Some(a) => nodes[at].attrs.push((a.clone(), id)),
                None => nodes[at].text = Some(id),
            }
        }
        Trie { nodes }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not met yet.
    Waiting,
    /// Its element is open and something is still to be read from it.
    Open,
    /// Nothing more to read: read in full, or its parent closed without it.
    Done,
}

/// One extraction.
struct Walk<'t, 'o, 'p> {
    payload: &'p str,
    trie: &'t Trie,
    out: &'o mut Vec<Option<Value<'p>>>,
    state: Vec<State>,
    unfinished: usize,
    /// Trie nodes whose element's text is being collected.
    capturing: Vec<u32>,
}

impl<'t, 'o, 'p> Walk<'t, 'o, 'p> {
    fn new(payload: &'p str, trie: &'t Trie, out: &'o mut Vec<Option<Value<'p>>>) -> Self {
        Walk {
            payload,
            trie,
            out,
            state: vec![State::Waiting; trie.nodes.len()],
            unfinished: trie.nodes.len(),
            capturing: Vec::new(),
        }
    }

    fn run(mut self) {
        let mut reader = Reader::from_str(self.payload);
        // For each open element, its trie node (None: not one the trie names).
        let mut stack: Vec<Option<u32>> = Vec::new();
        let mut seen_root = false;
        while self.unfinished > 0 {
            let ev = match reader.read_event() {
                Ok(Event::Eof) | Err(_) => break,
                Ok(ev) => ev,
            };
            match ev {
                // A second top-level element: not a payload Roost stored.
                Event::Start(_) | Event::Empty(_) if stack.is_empty() && seen_root => break,
                Event::Start(e) => {
                    let t = self.enter(&e, stack.last().copied(), &mut seen_root);
                    if t.is_none() && self.capturing.is_empty() && !stack.is_empty() {
                        // Nothing inside can matter: skip it without reporting its events.
                        if reader.read_to_end(e.name()).is_err() {
                            break;
                        }
                        continue;
                    }
                    stack.push(t);
                }
                Event::Empty(e) => {
                    let t = self.enter(&e, stack.last().copied(), &mut seen_root);
                    self.leave(t);
                    if stack.is_empty() {
                        break;
                    }
                }
                Event::End(_) => {
                    let t = stack.pop().flatten();
                    self.leave(t);
                    if stack.is_empty() {
                        break;
                    }
                }
                Event::Text(t) => self.text(t.xml10_content()),
                Event::CData(t) => self.text(t.xml10_content()),
                Event::GeneralRef(r) => {
                    if self.capturing.is_empty() {
                        continue;
                    }
                    let s: Cow<'p, str> = match r.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        Ok(None) => match resolve_xml_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
                            None => continue,
                        },
                        Err(_) => continue,
                    };
                    self.text(s);
                }
                _ => {}
            }
        }
        // Text still being collected is incomplete: drop it rather than compare a part.
        for t in std::mem::take(&mut self.capturing) {
            if let Some(id) = self.trie.nodes[t as usize].text {
                self.out[id as usize] = None;
            }
        }
        for v in self.out.iter_mut().flatten() {
            v.num = value_number(&v.text);
        }
    }

    /// An element starts under `parent`; returns its trie node if the trie names it.
    fn enter(
        &mut self,
        e: &BytesStart<'p>,
        parent: Option<Option<u32>>,
        seen_root: &mut bool,
    ) -> Option<u32> {
        let t = match parent {
            None => {
                *seen_root = true;
                0
            }
            Some(None) => return None,
            Some(Some(p)) => {
                let name = e.local_name();
                let name: &str = name.as_ref();
                let &(_, c) = self.trie.nodes[p as usize]
                    .children
                    .iter()
                    .find(|(n, _)| &**n == name)?;
                // Only the first element of that name counts.
                if self.state[c as usize] != State::Waiting {
                    return None;
                }
                c
            }
        };
        self.state[t as usize] = State::Open;
        let node = &self.trie.nodes[t as usize];
        if !node.attrs.is_empty() {
            let mut attrs = e.attributes();
            // Roost serialized the payload: there are no duplicates to look for.
            attrs.with_checks(false);
            for a in attrs.flatten() {
                if a.key.as_namespace_binding().is_some() {
                    continue;
                }
                let local = a.key.local_name();
                let local: &str = local.as_ref();
                let Some(&(_, id)) = node.attrs.iter().find(|(n, _)| &**n == local) else {
                    continue;
                };
                let slot = &mut self.out[id as usize];
                if slot.is_none() {
                    if let Ok(v) = a.normalized_value(XmlVersion::Implicit1_0) {
                        let text = match v {
                            Cow::Borrowed(v) => within(self.payload, v)
                                .map_or_else(|| Cow::Owned(v.to_owned()), Cow::Borrowed),
                            Cow::Owned(v) => Cow::Owned(v),
                        };
                        *slot = Some(Value {
                            text,
                            num: None,
                            sym: None,
                        });
                    }
                }
            }
        }
        if let Some(id) = node.text {
            self.out[id as usize] = Some(Value {
                text: Cow::Borrowed(""),
                num: None,
                sym: None,
            });
            self.capturing.push(t);
        }
        self.settle(t);
        Some(t)
    }

    /// The element of trie node `t` (if any) ends.
    fn leave(&mut self, t: Option<u32>) {
        let Some(t) = t else { return };
        self.capturing.retain(|&c| c != t);
        // Whatever was not met inside it will not be met any more.
        let mut todo = vec![t];
        while let Some(n) = todo.pop() {
            if self.state[n as usize] != State::Done {
                self.state[n as usize] = State::Done;
                self.unfinished -= 1;
            }
            todo.extend(self.trie.nodes[n as usize].children.iter().map(|&(_, c)| c));
        }
        if t != 0 {
            self.settle(self.trie.nodes[t as usize].parent);
        }
    }

    /// Marks open trie nodes from `t` upwards done once nothing is left to read from them:
    /// their attributes are read, their text is not being collected, their children done.
    fn settle(&mut self, mut t: u32) {
        loop {
            let node = &self.trie.nodes[t as usize];
            if self.state[t as usize] != State::Open
                || self.capturing.contains(&t)
                || node
                    .children
                    .iter()
                    .any(|&(_, c)| self.state[c as usize] != State::Done)
            {
                return;
            }
            self.state[t as usize] = State::Done;
            self.unfinished -= 1;
            if t == 0 {
                return;
            }
            t = node.parent;
        }
    }

    fn text(&mut self, s: Cow<'p, str>) {
        for &t in &self.capturing {
            if let Some(id) = self.trie.nodes[t as usize].text {
                if let Some(v) = &mut self.out[id as usize] {
                    if v.text.is_empty() {
                        v.text = s.clone();
                    } else {
                        v.text.to_mut().push_str(&s);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn values_are_borrowed_from_the_payload_only_when_they_lie_in_it() {
        let doc = String::from("<p a='value'/>");
        let payload = &doc[1..];
        let inner = &doc[6..11];
        assert_eq!(
            within(payload, inner).map(str::as_ptr),
            Some(inner.as_ptr())
        );
        assert_eq!(within(payload, &doc[..3]), None);
        let elsewhere = String::from("value");
        assert_eq!(within(payload, &elsewhere), None);
    }
}
