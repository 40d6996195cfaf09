//! What an operator reads and changes outside the XEP-0060 use cases: totals over the
//! service and one node (metrics, the admin commands), and the policy replaced on reload.
//! Who may ask is the component's business (its admin commands check `Policy::is_admin`).

use super::Service;
use crate::policy::Policy;
use crate::store::Store;

/// Totals over the whole service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Nodes.
    pub nodes: u64,
    /// Subscriptions in any state.
    pub subscriptions: u64,
    /// Subscriptions in state `subscribed`.
    pub subscribed: u64,
    /// Items stored.
    pub items: u64,
}

/// Totals over one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Items stored.
    pub items: u64,
    /// Subscriptions in any state.
    pub subscriptions: u64,
    /// Subscriptions in state `subscribed`.
    pub subscribed: u64,
}

impl<S: Store> Service<S> {
    /// Totals over every node. One pass over the nodes (no store read): cheap enough for a
    /// metrics refresh once a second even at 100 000 nodes.
    pub fn stats(&self) -> ServiceStats {
        self.state
            .nodes()
            .fold(ServiceStats::default(), |mut t, n| {
                t.nodes += 1;
                t.subscriptions += n.sub_count() as u64;
                t.subscribed += n.subscribed;
                t.items += n.counters.count;
                t
            })
    }

    /// Totals over `node`; `None` when there is no such node.
    pub fn node_stats(&self, node: &str) -> Option<NodeStats> {
        self.state.node(node).map(|n| NodeStats {
            items: n.counters.count,
            subscriptions: n.sub_count() as u64,
            subscribed: n.subscribed,
        })
    }

    /// Replace the policy (limits, admins, who may create nodes), e.g. on a configuration
    /// reload. It holds for requests decided from now on; what exists already (items over a
    /// lowered cap, subscriptions over a lowered limit) stays until a request changes it.
    /// Fan-outs in flight are walked to their end first: they see the policy of their
    /// commit, as they see its state.
    pub fn set_policy(&mut self, policy: Policy) {
        self.settle();
        self.policy = policy;
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, Jid, NewItem};
    use crate::{MemStore, Policy, Request, Service};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn stats_count_nodes_subscriptions_and_items() {
        let mut svc = Service::open(MemStore::default(), Policy::default()).unwrap();
        let alice = jid("alice@example.org/r");
        assert_eq!(svc.stats(), Default::default());
        for node in ["a", "b"] {
            let create = Request::Create {
                node: Some(node.into()),
                config: None,
            };
            svc.handle(&alice, create, 1).unwrap();
        }
        for who in ["bob@example.org", "carol@example.org"] {
            let sub = Request::Subscribe {
                node: "a".into(),
                jid: jid(who),
                options: None,
            };
            svc.handle(&jid(who), sub, 1).unwrap();
        }
        for id in ["1", "2", "3"] {
            let publish = Request::Publish {
                node: "b".into(),
                item: Some(NewItem {
                    id: Some(id.into()),
                    payload: Some("<x xmlns='urn:x'/>".into()),
                }),
                options: None,
            };
            svc.handle(&alice, publish, 1).unwrap();
        }
        let s = svc.stats();
        assert_eq!(
            (s.nodes, s.subscriptions, s.subscribed, s.items),
            (2, 2, 2, 3)
        );
        let a = svc.node_stats("a").unwrap();
        assert_eq!((a.items, a.subscriptions, a.subscribed), (0, 2, 2));
        assert_eq!(svc.node_stats("b").unwrap().items, 3);
        assert!(svc.node_stats("nope").is_none());
    }

    #[test]
    fn a_new_policy_holds_for_the_next_request() {
        let mut svc = Service::open(MemStore::default(), Policy::default()).unwrap();
        let alice = jid("alice@example.org/r");
        let create = |n: &str| Request::Create {
            node: Some(n.into()),
            config: None,
        };
        svc.handle(&alice, create("a"), 1).unwrap();
        let policy = Policy {
            max_nodes_per_jid: 1,
            ..Policy::default()
        };
        svc.set_policy(policy.clone());
        assert_eq!(svc.policy(), &policy);
        assert!(matches!(
            svc.handle(&alice, create("b"), 1),
            Err(Error::LimitReached("nodes per JID"))
        ));
        assert_eq!(svc.stats().nodes, 1);
    }
}
