//! Typed discovery: listing nodes by their `pubsub#type` (XEP-0462) and retrieving items in
//! another order than publish order (XEP-0413). Pure rules; the service applies them in
//! `service/items.rs`, the component reads and writes the elements.

use std::cmp::Ordering;

use crate::model::{Item, NodeConfig};

/// An XEP-0462 filter on the nodes a disco#items lists, by their `pubsub#type`
/// ([`NodeConfig::payload_type`]). An empty string stands for nodes without a type
/// (XEP-0462: "an empty value to designate nodes with an empty pubsub#type").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    /// `included-types`: only nodes of one of these types.
    Include(Vec<String>),
    /// `excluded-types`: every node but those of these types.
    Exclude(Vec<String>),
}

impl TypeFilter {
    /// Whether a node configured as `c` is listed.
    pub fn admits(&self, c: &NodeConfig) -> bool {
        match self {
            TypeFilter::Include(types) => types.contains(&c.payload_type),
            TypeFilter::Exclude(types) => !types.contains(&c.payload_type),
        }
    }
}

/// An XEP-0413 order field (the `by` attribute). Roost's dates are its own (XEP-0413
/// §general: "the one set by the Pubsub service itself"), and it orders by the publish
/// sequence behind them, which never goes back even if the clock does and breaks every
/// tie: so no two items are ever equal and a second `<order/>` never has to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    /// `creation`: when the item's id was first published in the node (an overwrite by
    /// the same id keeps it; a retraction forgets it): [`Item::created_seq`].
    Creation,
    /// `modification`: when the item was last published, the same as `creation` for an
    /// item never overwritten: [`Item::seq`]. This is XEP-0060's publish order.
    Modification,
}

impl OrderField {
    /// The field as XEP-0413 names it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderField::Creation => "creation",
            OrderField::Modification => "modification",
        }
    }

    fn key(self, i: &Item) -> u64 {
        match self {
            OrderField::Creation => i.created_seq(),
            OrderField::Modification => i.seq,
        }
    }
}

/// One `<order/>` of XEP-0413: a field, ascending unless `desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBy {
    /// The field.
    pub by: OrderField,
    /// Descending (`desc='true'` or `'1'`).
    pub desc: bool,
}

/// Compares two items by `order`, the first `<order/>` deciding and each next one breaking
/// the ties of those before it (XEP-0413 §rules); publish order last, so that the order is
/// total and the same across requests.
pub fn compare(order: &[OrderBy], a: &Item, b: &Item) -> Ordering {
    order
        .iter()
        .map(|o| {
            let c = o.by.key(a).cmp(&o.by.key(b));
            if o.desc {
                c.reverse()
            } else {
                c
            }
        })
        .find(|c| c.is_ne())
        .unwrap_or_else(|| a.seq.cmp(&b.seq))
}

/// `items` in `order`, then cut to `max_items`. XEP-0060's `max_items` asks for the most
/// recent items, and XEP-0413 keeps that meaning (its examples ask for "the 3 most recent
/// ones by date of creation"): the kept items are the `max_items` most recent by the first
/// order field, shown in the requested order. Without `max_items`, all of them.
pub fn ordered(mut items: Vec<Item>, order: &[OrderBy], max_items: Option<u64>) -> Vec<Item> {
    if let (Some(max), Some(first)) = (max_items, order.first()) {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if items.len() > max {
            // Most recent first by the first field, keep `max`.
            let newest_first = [OrderBy {
                by: first.by,
                desc: true,
            }];
            items.sort_by(|a, b| compare(&newest_first, a, b));
            items.truncate(max);
        }
    }
    items.sort_by(|a, b| compare(order, a, b));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Jid;

    /// Items `A`..`D` as XEP-0413 §use_with_rsm describes them: created in that order,
    /// `C` overwritten after `D` was created, `A` overwritten later still.
    fn rsm_example() -> Vec<Item> {
        let item = |id: &str, seq: u64, first: Option<u64>| Item {
            id: id.to_owned(),
            seq,
            first_seq: first,
            publisher: "romeo@montaigu.lit/456".parse::<Jid>().unwrap(),
            published: seq,
            payload: String::new(),
        };
        // Publish order: A1 B2 C3 D4 C5 A6; stored by seq: B2 D4 C5 A6.
        vec![
            item("B", 2, None),
            item("D", 4, None),
            item("C", 5, Some(3)),
            item("A", 6, Some(1)),
        ]
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.id.as_str()).collect()
    }

    fn by(by: OrderField, desc: bool) -> OrderBy {
        OrderBy { by, desc }
    }

    #[test]
    fn xep_0413_rsm_example_orders() {
        use OrderField::*;
        let all = rsm_example();
        // "when ascending creation order is requested, items are in order A, B, C, D.
        // When ascending modification order is requested, items are in order B, D, C, A."
        let o = ordered(all.clone(), &[by(Creation, false)], None);
        assert_eq!(ids(&o), ["A", "B", "C", "D"]);
        let o = ordered(all.clone(), &[by(Modification, false)], None);
        assert_eq!(ids(&o), ["B", "D", "C", "A"]);
        // Examples rsm_3 and rsm_4: descending creation is D, C, B, A.
        let o = ordered(all.clone(), &[by(Creation, true)], None);
        assert_eq!(ids(&o), ["D", "C", "B", "A"]);
        let o = ordered(all, &[by(Modification, true)], None);
        assert_eq!(ids(&o), ["A", "C", "D", "B"]);
    }

    #[test]
    fn max_items_keeps_the_most_recent_by_the_first_field() {
        use OrderField::*;
        let all = rsm_example();
        // §creation: the 3 most recently created, the most recent first.
        let o = ordered(all.clone(), &[by(Creation, true)], Some(3));
        assert_eq!(ids(&o), ["D", "C", "B"]);
        // Ascending: the same 3, oldest first.
        let o = ordered(all.clone(), &[by(Creation, false)], Some(3));
        assert_eq!(ids(&o), ["B", "C", "D"]);
        // §modification: the 3 most recently modified, the most recent first.
        let o = ordered(all.clone(), &[by(Modification, true)], Some(3));
        assert_eq!(ids(&o), ["A", "C", "D"]);
        let o = ordered(all, &[by(Modification, false)], Some(0));
        assert!(o.is_empty());
    }

    #[test]
    fn later_orders_break_ties_only() {
        use OrderField::*;
        // The first field never ties (seqs are unique): a second one changes nothing.
        let all = rsm_example();
        let o = ordered(all, &[by(Creation, false), by(Modification, true)], None);
        assert_eq!(ids(&o), ["A", "B", "C", "D"]);
    }

    #[test]
    fn type_filter_include_exclude_and_empty() {
        let typed = |t: &str| NodeConfig {
            payload_type: t.to_owned(),
            ..NodeConfig::default()
        };
        let mb = typed("urn:xmpp:microblog:0");
        let none = typed("");
        let other = typed("urn:example");
        // XEP-0462 example 1: microblog nodes and untyped ones.
        let f = TypeFilter::Include(vec!["urn:xmpp:microblog:0".into(), String::new()]);
        assert!(f.admits(&mb) && f.admits(&none) && !f.admits(&other));
        let f = TypeFilter::Include(vec!["urn:xmpp:microblog:0".into()]);
        assert!(f.admits(&mb) && !f.admits(&none) && !f.admits(&other));
        let f = TypeFilter::Exclude(vec![String::new()]);
        assert!(f.admits(&mb) && !f.admits(&none) && f.admits(&other));
        let f = TypeFilter::Exclude(vec![]);
        assert!(f.admits(&mb) && f.admits(&none));
        assert!(!TypeFilter::Include(vec![]).admits(&mb));
    }
}
