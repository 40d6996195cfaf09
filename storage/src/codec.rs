//! The binary encoding of stored values.
//!
//! Every record starts with a format byte ([`FORMAT`]) so a record can evolve without
//! rewriting the database; an unknown format byte is reported, never guessed at. Fields
//! follow in a fixed order: integers as big-endian `u64`, booleans as one byte `0`/`1`,
//! strings (and JIDs, and enum values in their XEP-0060 wire spelling) as a `u32` length
//! plus UTF-8, options as a `0`/`1` tag plus the value. Enums are stored by wire name,
//! not by position, so reordering a Rust enum cannot silently change what is read back.
//!
//! Decoding is bounds-checked everywhere and rejects trailing bytes: corrupt input gives a
//! [`StoreError`], never a panic.

use roost_nodes::{
    AccessModel, Affiliation, AssociationPolicy, BareJid, Item, ItemCounters, ItemReply, Jid,
    MaxItems, NodeConfig, NodeRecord, NodeType, NotificationType, PublishModel, SendLastPublished,
    Show, StoreError, SubOptions, SubRow, Subscription, SubscriptionDepth, SubscriptionState,
    SubscriptionType,
};
use std::str::FromStr;

/// The record format this code writes.
pub const FORMAT: u8 = 1;

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(vec![FORMAT])
    }

    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    fn str(&mut self, s: &str) {
        // XMPP limits make a > 4 GiB string impossible here; saturating keeps the writer
        // total, and the reader would then refuse the record instead of misreading it.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
        }
    }

    /// A count, then each string.
    fn strs<'a>(&mut self, v: impl ExactSizeIterator<Item = &'a str>) {
        self.u64(v.len() as u64);
        for s in v {
            self.str(s);
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, v: &'a [u8]) -> Result<Self, StoreError> {
        let mut r = Reader { rest: v, what };
        match r.u8()? {
            FORMAT => Ok(r),
            other => Err(StoreError(format!(
                "{what} record has unknown format {other} (this Roost reads format {FORMAT})"
            ))),
        }
    }

    fn err(&self, why: &str) -> StoreError {
        StoreError(format!("corrupt {} record: {why}", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(self.err("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        <[u8; 8]>::try_from(b)
            .map(u64::from_be_bytes)
            .map_err(|_| self.err("truncated"))
    }

    fn bool(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.err("bad boolean")),
        }
    }

    fn str(&mut self) -> Result<String, StoreError> {
        self.str_ref().map(str::to_owned)
    }

    /// A string borrowed from the record: no allocation.
    fn str_ref(&mut self) -> Result<&'a str, StoreError> {
        let b = self.take(4)?;
        let len = <[u8; 4]>::try_from(b)
            .map(u32::from_be_bytes)
            .map_err(|_| self.err("truncated"))?;
        let len = usize::try_from(len).map_err(|_| self.err("string too long"))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| self.err("invalid UTF-8"))
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(self.err("bad option tag")),
        }
    }

    /// A count, then each string; the count is bounded by what remains, so a corrupt one
    /// fails on the missing bytes rather than allocating.
    fn strs(&mut self) -> Result<Vec<String>, StoreError> {
        let n = self.u64()?;
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(self.rest.len()));
        for _ in 0..n {
            out.push(self.str()?);
        }
        Ok(out)
    }

    fn wire<T: FromStr>(&mut self) -> Result<T, StoreError> {
        let s = self.str_ref()?;
        s.parse()
            .map_err(|_| self.err(&format!("unknown value {s:?}")))
    }

    fn jid(&mut self) -> Result<Jid, StoreError> {
        let s = self.str_ref()?;
        Jid::new(s).map_err(|e| self.err(&format!("bad JID {s:?}: {e}")))
    }

    fn bare_jid(&mut self) -> Result<BareJid, StoreError> {
        let s = self.str_ref()?;
        BareJid::new(s).map_err(|e| self.err(&format!("bad bare JID {s:?}: {e}")))
    }

    fn at_end(&self) -> bool {
        self.rest.is_empty()
    }

    fn end(self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// Parses a JID stored in a key.
pub fn parse_bare_jid(s: &str) -> Result<BareJid, StoreError> {
    BareJid::new(s).map_err(|e| StoreError(format!("corrupt key: bad bare JID {s:?}: {e}")))
}

/// Encodes a node record; the name lives in the key.
pub fn node(rec: &NodeRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(rec.uid);
    w.str(rec.creator.as_str());
    w.u64(rec.created);
    config(&mut w, &rec.config);
    w.0
}

fn config(w: &mut Writer, c: &NodeConfig) {
    // Destructured so that a new NodeConfig field fails to compile here until it is stored.
    let NodeConfig {
        title,
        description,
        payload_type,
        access_model,
        roster_groups_allowed,
        publish_model,
        max_items,
        persist_items,
        deliver_payloads,
        deliver_notifications,
        notify_config,
        notify_delete,
        notify_retract,
        notify_sub,
        presence_based_delivery,
        send_last_published_item,
        item_expire,
        notification_type,
        itemreply,
        max_payload_size,
        node_type,
        collection,
        // Derived from the children's `collection`: not stored.
        children: _,
        children_max,
        children_association_policy,
        children_association_whitelist,
    } = c;
    w.str(title);
    w.str(description);
    w.str(payload_type);
    w.str(access_model.as_str());
    w.str(publish_model.as_str());
    match max_items {
        MaxItems::Count(n) => {
            w.u8(0);
            w.u64(*n);
        }
        MaxItems::Max => w.u8(1),
    }
    w.bool(*persist_items);
    w.bool(*deliver_payloads);
    w.bool(*deliver_notifications);
    w.bool(*notify_config);
    w.bool(*notify_delete);
    w.bool(*notify_retract);
    w.bool(*notify_sub);
    w.bool(*presence_based_delivery);
    w.str(send_last_published_item.as_str());
    w.opt_u64(*item_expire);
    w.str(notification_type.as_str());
    w.str(itemreply.as_str());
    w.u64(*max_payload_size);
    // Appended last, each section only when it or a later one differs from the defaults,
    // so records of leaves that use neither keep the exact bytes they had before these
    // fields existed, and older records decode unchanged.
    let d = NodeConfig::default();
    let collections = *node_type != d.node_type
        || !collection.is_empty()
        || *children_max != d.children_max
        || *children_association_policy != d.children_association_policy
        || !children_association_whitelist.is_empty();
    if !roster_groups_allowed.is_empty() || collections {
        w.strs(roster_groups_allowed.iter().map(String::as_str));
    }
    if collections {
        w.str(node_type.as_str());
        w.strs(collection.iter().map(String::as_str));
        w.opt_u64(*children_max);
        w.str(children_association_policy.as_str());
        w.strs(children_association_whitelist.iter().map(|j| j.as_str()));
    }
}

/// Decodes a node record stored under `name`.
pub fn decode_node(name: String, v: &[u8]) -> Result<NodeRecord, StoreError> {
    let mut r = Reader::new("node", v)?;
    let uid = r.u64()?;
    let creator = r.bare_jid()?;
    let created = r.u64()?;
    let title = r.str()?;
    let description = r.str()?;
    let payload_type = r.str()?;
    let access_model: AccessModel = r.wire()?;
    let publish_model: PublishModel = r.wire()?;
    let max_items = match r.u8()? {
        0 => MaxItems::Count(r.u64()?),
        1 => MaxItems::Max,
        _ => return Err(r.err("bad max_items tag")),
    };
    let mut config = NodeConfig {
        title,
        description,
        payload_type,
        access_model,
        roster_groups_allowed: Vec::new(),
        publish_model,
        max_items,
        persist_items: r.bool()?,
        deliver_payloads: r.bool()?,
        deliver_notifications: r.bool()?,
        notify_config: r.bool()?,
        notify_delete: r.bool()?,
        notify_retract: r.bool()?,
        notify_sub: r.bool()?,
        presence_based_delivery: r.bool()?,
        send_last_published_item: r.wire::<SendLastPublished>()?,
        item_expire: r.opt_u64()?,
        notification_type: r.wire::<NotificationType>()?,
        itemreply: r.wire::<ItemReply>()?,
        max_payload_size: r.u64()?,
        ..NodeConfig::default()
    };
    if !r.at_end() {
        config.roster_groups_allowed = r.strs()?;
    }
    if !r.at_end() {
        config.node_type = r.wire::<NodeType>()?;
        config.collection = r.strs()?;
        config.children_max = r.opt_u64()?;
        config.children_association_policy = r.wire::<AssociationPolicy>()?;
        for j in r.strs()? {
            let j = BareJid::new(&j).map_err(|e| r.err(&format!("bad bare JID {j:?}: {e}")))?;
            config.children_association_whitelist.push(j);
        }
    }
    r.end()?;
    Ok(NodeRecord {
        name,
        uid,
        creator,
        created,
        config,
    })
}

/// Encodes item counters.
pub fn counters(c: &ItemCounters) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(c.count);
    w.u64(c.last_seq);
    w.0
}

/// Decodes item counters.
pub fn decode_counters(v: &[u8]) -> Result<ItemCounters, StoreError> {
    let mut r = Reader::new("counters", v)?;
    let c = ItemCounters {
        count: r.u64()?,
        last_seq: r.u64()?,
    };
    r.end()?;
    Ok(c)
}

/// What a schema-2 store keeps per node about its items (key `0x02`): the engine's
/// counters, plus the trim floor (items with a lower seq are gone for every read) and the
/// number of items at or above it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    /// As the engine last wrote them.
    pub counters: ItemCounters,
    /// Every item below this seq is gone.
    pub floor: u64,
    /// Items stored at or above `floor`.
    pub live: u64,
}

/// The record format of [`Head`] (a new record, so its own format number: a version-1
/// counters row can never be read as one).
pub const HEAD_FORMAT: u8 = 2;

/// Encodes a [`Head`].
pub fn head(h: &Head) -> Vec<u8> {
    let mut v = Vec::with_capacity(33);
    v.push(HEAD_FORMAT);
    for n in [h.counters.count, h.counters.last_seq, h.floor, h.live] {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v
}

/// Decodes a [`Head`].
pub fn decode_head(v: &[u8]) -> Result<Head, StoreError> {
    let err = || StoreError(format!("corrupt item head record {v:02x?}"));
    let (&format, rest) = v.split_first().ok_or_else(err)?;
    if format != HEAD_FORMAT {
        return Err(StoreError(format!(
            "item head record has unknown format {format} (this Roost reads format {HEAD_FORMAT})"
        )));
    }
    if rest.len() != 32 {
        return Err(err());
    }
    let n = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&rest[i * 8..i * 8 + 8]);
        u64::from_be_bytes(b)
    };
    Ok(Head {
        counters: ItemCounters {
            count: n(0),
            last_seq: n(1),
        },
        floor: n(2),
        live: n(3),
    })
}

/// Encodes an affiliation.
pub fn affiliation(a: Affiliation) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(a.as_str());
    w.0
}

/// Decodes an affiliation.
pub fn decode_affiliation(v: &[u8]) -> Result<Affiliation, StoreError> {
    let mut r = Reader::new("affiliation", v)?;
    let a = r.wire()?;
    r.end()?;
    Ok(a)
}

/// Encodes a subscription; the node and subid live in the key.
pub fn subscription(s: &Subscription) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(s.jid.as_str());
    w.str(s.state.as_str());
    // Destructured so that a new SubOptions field fails to compile here until it is stored.
    let SubOptions {
        deliver,
        digest,
        digest_frequency,
        expire,
        include_body,
        show_values,
        subscription_type,
        subscription_depth,
        filter,
    } = &s.options;
    w.bool(*deliver);
    w.bool(*digest);
    w.u64(*digest_frequency);
    w.opt_u64(*expire);
    w.bool(*include_body);
    w.u64(show_values.len() as u64);
    for v in show_values {
        w.str(v.as_str());
    }
    // The record's tail: optional sections after the fixed fields, each present only when
    // it or a later one is needed, so a subscription without them keeps the bytes it had
    // before they existed and a record ends after any section (schema version unchanged):
    // 1. the collection options (XEP-0248), when not the defaults or a filter follows;
    // 2. the content filter (`x-roost#filter`, canonical text), when there is one.
    // Records written before filters existed (with or without section 1) decode unchanged.
    let d = SubOptions::default();
    if *subscription_type != d.subscription_type
        || *subscription_depth != d.subscription_depth
        || filter.is_some()
    {
        w.str(subscription_type.as_str());
        w.opt_u64(match subscription_depth {
            SubscriptionDepth::Depth(n) => Some(*n),
            SubscriptionDepth::All => None,
        });
    }
    if let Some(f) = filter {
        w.str(f);
    }
    w.0
}

/// Decodes a subscription stored under `subid`. Its JID is parsed from the record's
/// bytes in place (one allocation, the JID's own).
pub fn decode_subscription(subid: String, v: &[u8]) -> Result<Subscription, StoreError> {
    let mut r = Reader::new("subscription", v)?;
    let jid = r.jid()?;
    let (state, options) = sub_rest(r)?;
    Ok(Subscription {
        jid,
        subid,
        state,
        options,
    })
}

/// Decodes a subscription stored under `subid` as a row borrowed from the record: the
/// JID is left as stored text, for the engine to parse once per distinct JID, and
/// options are `None` when they are the defaults, so that most rows allocate nothing.
pub fn decode_sub_row<'a>(subid: &'a str, v: &'a [u8]) -> Result<SubRow<'a>, StoreError> {
    let mut r = Reader::new("subscription", v)?;
    let jid = r.str_ref()?;
    let (state, options) = sub_rest(r)?;
    Ok(SubRow {
        jid,
        subid,
        state,
        options: (options != SubOptions::default()).then_some(options),
    })
}

/// The fields of a subscription record after its JID.
fn sub_rest(mut r: Reader<'_>) -> Result<(SubscriptionState, SubOptions), StoreError> {
    let state: SubscriptionState = r.wire()?;
    let deliver = r.bool()?;
    let digest = r.bool()?;
    let digest_frequency = r.u64()?;
    let expire = r.opt_u64()?;
    let include_body = r.bool()?;
    let n = r.u64()?;
    // Bounded by what remains so a corrupt count cannot make us allocate wildly.
    let mut show_values = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(r.rest.len()));
    for _ in 0..n {
        show_values.push(r.wire::<Show>()?);
    }
    let mut options = SubOptions {
        deliver,
        digest,
        digest_frequency,
        expire,
        include_body,
        show_values,
        ..SubOptions::default()
    };
    // The tail's sections in order (see `subscription`).
    if !r.at_end() {
        options.subscription_type = r.wire::<SubscriptionType>()?;
        options.subscription_depth = match r.opt_u64()? {
            Some(n) => SubscriptionDepth::Depth(n),
            None => SubscriptionDepth::All,
        };
    }
    if !r.at_end() {
        options.filter = Some(r.str()?);
    }
    r.end()?;
    Ok((state, options))
}

/// Encodes an item; the seq lives in the key. The record's optional tail: the seq it was
/// created at (XEP-0413), only for an item since overwritten, so that every other item
/// keeps the bytes it had before the field existed (schema version unchanged).
pub fn item(i: &Item) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(&i.id);
    w.str(i.publisher.as_str());
    w.u64(i.published);
    w.str(&i.payload);
    if let Some(first) = i.first_seq {
        w.u64(first);
    }
    w.0
}

/// Decodes only an item's id, for index maintenance.
pub fn decode_item_id(v: &[u8]) -> Result<String, StoreError> {
    Reader::new("item", v)?.str()
}

/// Decodes an item stored at `seq`.
pub fn decode_item(seq: u64, v: &[u8]) -> Result<Item, StoreError> {
    let mut r = Reader::new("item", v)?;
    let mut item = Item {
        id: r.str()?,
        seq,
        first_seq: None,
        publisher: r.jid()?,
        published: r.u64()?,
        payload: r.str()?,
    };
    if !r.at_end() {
        item.first_seq = Some(r.u64()?);
    }
    r.end()?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> NodeRecord {
        NodeRecord {
            name: "n".into(),
            uid: 42,
            creator: BareJid::new("a@example.org").unwrap(),
            created: 1234,
            config: NodeConfig {
                title: "t".into(),
                item_expire: Some(5),
                max_items: MaxItems::Max,
                ..NodeConfig::default()
            },
        }
    }

    #[test]
    fn item_creation_is_an_optional_tail() {
        let mut i = Item {
            id: "x".into(),
            seq: 7,
            first_seq: None,
            publisher: "a@b/c".parse().unwrap(),
            published: 42,
            payload: "<p/>".into(),
        };
        let plain = item(&i);
        assert_eq!(decode_item(7, &plain).unwrap(), i);
        i.first_seq = Some(3);
        let overwritten = item(&i);
        // An item never overwritten keeps the bytes of before the field existed.
        assert_eq!(&overwritten[..plain.len()], &plain[..]);
        assert_eq!(decode_item(7, &overwritten).unwrap(), i);
        assert_eq!(decode_item_id(&overwritten).unwrap(), "x");
    }

    #[test]
    fn node_round_trips() {
        let r = rec();
        assert_eq!(decode_node("n".into(), &node(&r)).unwrap(), r);
    }

    #[test]
    fn roster_groups_round_trip_and_are_absent_from_records_without_them() {
        let mut r = rec();
        let without = node(&r);
        r.config.roster_groups_allowed = vec!["Friends".into(), "Work".into()];
        let with = node(&r);
        assert_eq!(decode_node("n".into(), &with).unwrap(), r);
        // A record without groups is a prefix: what older Roosts wrote still decodes.
        assert!(with.starts_with(&without));
        assert!(decode_node("n".into(), &with[..with.len() - 1]).is_err());
    }

    #[test]
    fn collection_fields_round_trip_and_are_absent_from_plain_leaves() {
        let mut r = rec();
        let plain = node(&r);
        r.config.node_type = NodeType::Collection;
        r.config.collection = vec!["a".into(), "b/c".into()];
        r.config.children_max = Some(7);
        r.config.children_association_policy = AssociationPolicy::Whitelist;
        r.config.children_association_whitelist = vec![BareJid::new("w@example.org").unwrap()];
        let coll = node(&r);
        assert_eq!(decode_node("n".into(), &coll).unwrap(), r);
        // A leaf without them keeps the old bytes; one with them has both sections.
        assert!(coll.starts_with(&plain));
        r.config.roster_groups_allowed = vec!["Friends".into()];
        assert_eq!(decode_node("n".into(), &node(&r)).unwrap(), r);
        // Children are derived, never stored.
        r.config.children = vec!["x".into()];
        let back = decode_node("n".into(), &node(&r)).unwrap();
        assert!(back.config.children.is_empty());
        let v = node(&r);
        for n in 0..v.len() {
            // A record cut exactly before a section is an older, shorter record.
            let _ = decode_node("n".into(), &v[..n]);
        }
        let mut s = Subscription {
            jid: Jid::new("a@b").unwrap(),
            subid: "s".into(),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        };
        let plain = subscription(&s);
        s.options.subscription_type = SubscriptionType::Items;
        s.options.subscription_depth = SubscriptionDepth::All;
        let v = subscription(&s);
        assert!(v.starts_with(&plain));
        assert_eq!(decode_subscription("s".into(), &v).unwrap(), s);
        s.options.subscription_depth = SubscriptionDepth::Depth(3);
        let v = subscription(&s);
        assert_eq!(decode_subscription("s".into(), &v).unwrap(), s);
        assert!(decode_subscription("s".into(), &v[..v.len() - 1]).is_err());
    }

    /// The subscription record's tail in each combination of its sections: none,
    /// collection options only, filter only, both. The first two are the bytes Roost wrote
    /// before filters existed (spelled out here with the writer, as that encoder did), so
    /// such records decode unchanged.
    #[test]
    fn subscription_tail_sections_in_every_combination() {
        let base = Subscription {
            jid: Jid::new("a@b/c").unwrap(),
            subid: "s".into(),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        };
        let fixed = subscription(&base);
        let filter = "@level = 'error' and host ^= \"wéb-\"";
        let mut coll_tail = Writer::new();
        coll_tail.str(SubscriptionType::Items.as_str());
        coll_tail.opt_u64(Some(3));
        let coll_tail = coll_tail.0[1..].to_vec(); // without the format byte
        let coll_len = coll_tail.len();
        let mut default_coll_tail = Writer::new();
        default_coll_tail.str(SubOptions::default().subscription_type.as_str());
        default_coll_tail.opt_u64(Some(1));
        let default_coll_tail = default_coll_tail.0[1..].to_vec();
        let mut filter_tail = Writer::new();
        filter_tail.str(filter);
        let filter_tail = filter_tail.0[1..].to_vec();

        let cases: [(bool, bool, Vec<u8>); 4] = [
            (false, false, Vec::new()),
            (true, false, coll_tail.clone()),
            // A filter alone is preceded by the default collection options.
            (
                false,
                true,
                [default_coll_tail, filter_tail.clone()].concat(),
            ),
            (true, true, [coll_tail, filter_tail].concat()),
        ];
        for (coll, filtered, tail) in cases {
            let mut s = base.clone();
            if coll {
                s.options.subscription_type = SubscriptionType::Items;
                s.options.subscription_depth = SubscriptionDepth::Depth(3);
            }
            if filtered {
                s.options.filter = Some(filter.into());
            }
            let want = [fixed.clone(), tail].concat();
            assert_eq!(subscription(&s), want, "coll {coll} filter {filtered}");
            assert_eq!(decode_subscription("s".into(), &want).unwrap(), s);
            // Cut inside a section, or with a byte too many: an error. (Cut exactly
            // before a section it is an older, shorter record, as for nodes.)
            let boundaries = [fixed.len(), fixed.len() + coll_len];
            for n in fixed.len()..want.len() {
                if !boundaries.contains(&n) {
                    let cut = decode_subscription("s".into(), &want[..n]);
                    assert!(cut.is_err(), "coll {coll} filter {filtered} len {n}");
                }
            }
            let mut longer = want.clone();
            longer.push(0);
            assert!(decode_subscription("s".into(), &longer).is_err());
        }
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        let v = node(&rec());
        for n in 0..v.len() {
            assert!(decode_node("n".into(), &v[..n]).is_err(), "len {n}");
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(decode_node("n".into(), &longer).is_err());
        let s = Subscription {
            jid: Jid::new("a@b/c").unwrap(),
            subid: "s".into(),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        };
        let v = subscription(&s);
        assert_eq!(decode_subscription("s".into(), &v).unwrap(), s);
        for n in 0..v.len() {
            assert!(decode_subscription("s".into(), &v[..n]).is_err());
            assert!(decode_sub_row("s", &v[..n]).is_err());
        }
    }

    #[test]
    fn a_sub_row_is_the_subscription_with_default_options_left_out() {
        let mut s = Subscription {
            jid: Jid::new("a@b/c").unwrap(),
            subid: "s".into(),
            state: SubscriptionState::Pending,
            options: SubOptions::default(),
        };
        let v = subscription(&s);
        let row = decode_sub_row("s", &v).unwrap();
        assert_eq!((row.jid, row.options.as_ref()), ("a@b/c", None));
        assert_eq!(row.to_subscription().unwrap(), s);
        s.options.digest = true;
        s.options.show_values = vec![Show::Away];
        let v = subscription(&s);
        let row = decode_sub_row("s", &v).unwrap();
        assert_eq!(row.options.as_ref(), Some(&s.options));
        assert_eq!(row.to_subscription().unwrap(), s);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..200 {
            let mut v = vec![FORMAT];
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(x as u8);
            }
            let _ = decode_node("n".into(), &v);
            let _ = decode_subscription("s".into(), &v);
            let _ = decode_sub_row("s", &v);
            let _ = decode_item(1, &v);
            let _ = decode_counters(&v);
            let _ = decode_affiliation(&v);
        }
        assert!(decode_counters(&[9, 0]).is_err());
        // A huge show-values count must fail on the missing bytes, not allocate.
        let mut v = subscription(&Subscription {
            jid: Jid::new("a@b").unwrap(),
            subid: "s".into(),
            state: SubscriptionState::None,
            options: SubOptions {
                show_values: vec![],
                ..SubOptions::default()
            },
        });
        let n = v.len();
        v[n - 8..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(decode_subscription("s".into(), &v).is_err());
    }
}
