//! A damaged data dir: the sled store, filled by the engine (nodes, a collection, items
//! over several buckets, subscriptions with options and a content filter, affiliations),
//! then changed under it: values replaced, cut short or with a byte flipped, keys removed,
//! added or renamed. Opening the service on it, serving requests from it (which reads
//! items, trims, splits and merges buckets) and opening it again must work or give an
//! error, never panic: what the store reads back from disk is input (a disk or an editor
//! can damage it; sled's checksums only cover sled's own log).
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use roost_nodes::{
    Affiliation, Jid, MaxItems, NewItem, NodeConfigPatch, NodeType, Policy, Request, Service,
    Store, SubOptionsPatch,
};
use roost_storage::SledStore;
use std::sync::OnceLock;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

const NODES: &[&str] = &["news", "logs", "coll"];

fn jid(s: &str) -> Jid {
    s.parse().expect("valid JID")
}

/// A store in a temporary sled database; no flusher thread (nothing here needs one).
fn open() -> SledStore {
    let config = sled::Config::new().temporary(true).flush_every_ms(None);
    SledStore::open_with(config).expect("open a temporary store")
}

/// The store's rows after the engine filled it: what every input starts from.
fn base() -> &'static Pairs {
    static BASE: OnceLock<Pairs> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut svc = Service::open(open(), Policy::default()).expect("open");
        let owner = jid("owner@example.org/desk");
        let mut now = 1;
        let mut ask = |svc: &mut Service<SledStore>, actor: &Jid, req: Request| {
            now += 1;
            svc.handle(actor, req, now)
                .expect("the base requests are valid");
        };
        ask(
            &mut svc,
            &owner,
            Request::Create {
                node: Some("coll".into()),
                config: Some(NodeConfigPatch {
                    node_type: Some(NodeType::Collection),
                    ..NodeConfigPatch::default()
                }),
            },
        );
        for node in &NODES[..2] {
            ask(
                &mut svc,
                &owner,
                Request::Create {
                    node: Some((*node).into()),
                    config: Some(NodeConfigPatch {
                        max_items: Some(MaxItems::Count(40)),
                        collection: Some(vec!["coll".into()]),
                        ..NodeConfigPatch::default()
                    }),
                },
            );
        }
        for (i, who) in ["a@example.org", "b@example.org/r", "c@example.net"]
            .iter()
            .enumerate()
        {
            let options = (i == 1).then(|| SubOptionsPatch {
                include_body: Some(true),
                filter: Some("exists(lat)".into()),
                ..SubOptionsPatch::default()
            });
            for node in NODES {
                ask(
                    &mut svc,
                    &jid(who),
                    Request::Subscribe {
                        node: (*node).into(),
                        jid: jid(who),
                        options: options.clone(),
                    },
                );
            }
        }
        ask(
            &mut svc,
            &owner,
            Request::SetAffiliations {
                node: "news".into(),
                changes: vec![
                    ("pub@example.org".parse().unwrap(), Affiliation::Publisher),
                    ("bad@example.org".parse().unwrap(), Affiliation::Outcast),
                ],
            },
        );
        // Enough items, some large, for several buckets per node.
        for n in 0..60 {
            let size = if n % 7 == 0 { 900 } else { 60 };
            ask(
                &mut svc,
                &owner,
                Request::Publish {
                    node: NODES[n % 2].into(),
                    item: Some(NewItem {
                        id: Some(format!("item-{n}")),
                        payload: Some(format!(
                            "<geo xmlns='urn:x'><lat>{n}</lat>{}</geo>",
                            "x".repeat(size)
                        )),
                    }),
                    options: None,
                },
            );
        }
        svc.store_mut().sync().expect("sync");
        svc.store()
            .raw_tree()
            .iter()
            .map(|r| {
                let (k, v) = r.expect("read the base store");
                (k.to_vec(), v.to_vec())
            })
            .collect()
    })
}

/// The base rows with the input's changes.
fn damaged(u: &mut Unstructured<'_>) -> arbitrary::Result<Pairs> {
    let mut rows = base().clone();
    let changes = u.int_in_range(1..=4)?;
    for _ in 0..changes {
        if rows.is_empty() {
            break;
        }
        let i = u.choose_index(rows.len())?;
        match u.int_in_range(0..=6)? {
            0 => rows[i].1 = u.arbitrary()?,
            1 => {
                let cut = u.int_in_range(0..=rows[i].1.len())?;
                rows[i].1.truncate(cut);
            }
            2 => {
                let v = &mut rows[i].1;
                if !v.is_empty() {
                    let at = u.choose_index(v.len())?;
                    v[at] ^= u.int_in_range(1..=255)?;
                }
            }
            3 => {
                rows.remove(i);
            }
            4 => {
                // A copy under a neighbouring key: a row where the layout expects none.
                let (mut k, v) = rows[i].clone();
                if let Some(last) = k.last_mut() {
                    *last = last.wrapping_add(u.int_in_range(1..=3)?);
                }
                rows.push((k, v));
            }
            5 => {
                // A value taken from another row (of another kind, usually).
                let j = u.choose_index(rows.len())?;
                rows[i].1 = rows[j].1.clone();
            }
            _ => {
                let k = &mut rows[i].0;
                if !k.is_empty() {
                    let at = u.choose_index(k.len())?;
                    k[at] ^= u.int_in_range(1..=255)?;
                }
            }
        }
    }
    Ok(rows)
}

/// Requests that read and rewrite what the store holds.
fn serve(svc: &mut Service<SledStore>) {
    let owner = jid("owner@example.org/desk");
    let reader = jid("a@example.org");
    let mut now = 1_000;
    let mut ask = |svc: &mut Service<SledStore>, actor: &Jid, req: Request| {
        now += 1;
        // Refusals and storage errors are fine; only a panic is a finding.
        let _ = svc.handle(actor, req, now);
    };
    ask(svc, &reader, Request::DiscoNodes);
    ask(svc, &reader, Request::Subscriptions { node: None });
    ask(svc, &reader, Request::Affiliations { node: None });
    for node in NODES {
        let node = (*node).to_owned();
        // All items, then two by id.
        for ids in [Vec::new(), vec!["item-3".into(), "item-8".into()]] {
            ask(
                svc,
                &reader,
                Request::Items {
                    node: node.clone(),
                    max_items: None,
                    ids,
                    subid: None,
                },
            );
        }
        ask(svc, &owner, Request::DiscoItems { node: node.clone() });
        ask(
            svc,
            &owner,
            Request::GetSubscriptions { node: node.clone() },
        );
        ask(svc, &owner, Request::GetAffiliations { node: node.clone() });
        ask(svc, &owner, Request::GetConfig { node: node.clone() });
        for n in 0..3 {
            ask(
                svc,
                &owner,
                Request::Publish {
                    node: node.clone(),
                    item: Some(NewItem {
                        id: Some(format!("item-{}", n * 5)),
                        payload: Some(format!("<geo xmlns='urn:x'><lat>{n}</lat></geo>")),
                    }),
                    options: None,
                },
            );
        }
        ask(
            svc,
            &owner,
            Request::Retract {
                node: node.clone(),
                ids: vec!["item-2".into(), "item-9".into()],
                notify: true,
            },
        );
        ask(
            svc,
            &reader,
            Request::Unsubscribe {
                node: node.clone(),
                jid: reader.clone(),
                subid: None,
            },
        );
    }
    ask(
        svc,
        &owner,
        Request::Purge {
            node: "logs".into(),
        },
    );
    ask(
        svc,
        &owner,
        Request::Delete {
            node: "news".into(),
            redirect: None,
        },
    );
    let _ = svc.store_mut().sync();
}

/// A fresh store holding `rows`.
fn filled(rows: &Pairs) -> SledStore {
    let store = open();
    let tree = store.raw_tree();
    for (k, v) in rows {
        tree.insert(k.as_slice(), v.as_slice())
            .expect("write a row");
    }
    store
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(rows) = damaged(&mut u) else {
        return;
    };
    let Ok(mut svc) = Service::open(filled(&rows), Policy::default()) else {
        return;
    };
    serve(&mut svc);
    // What the requests wrote over the damage, read back by a fresh engine.
    let rows: Pairs = svc
        .store()
        .raw_tree()
        .iter()
        .filter_map(Result::ok)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    drop(svc);
    if let Ok(mut svc) = Service::open(filled(&rows), Policy::default()) {
        serve(&mut svc);
    }
});
