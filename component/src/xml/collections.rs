//! XEP-0248 elements xmpp-parsers 0.23 has no type for: the node events a collection's
//! subscribers get (`<create/>`, §notify-nodes; `<collection/>` with `<associate/>` or
//! `<dissociate/>`, §notify-associate-dissociate), and the owner's `<collection/>`
//! association request (§owner-associate, §owner-dissociate).

use xmpp_parsers::ns;
use xmpp_parsers::pubsub::NodeName;
use xso::{AsXml, FromXml};

/// A change of a collection's children: `<associate node='…'/>` or
/// `<dissociate node='…'/>`, in the namespace of the element around it.
macro_rules! association {
    ($ns:expr, $name:ident, $what:literal) => {
        #[doc = concat!("`<associate/>` or `<dissociate/>` in the ", $what, " namespace.")]
        #[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
        #[xml(namespace = $ns, exhaustive)]
        pub enum $name {
            /// `<associate node='…'/>`: the child joins.
            #[xml(name = "associate")]
            Associate {
                /// The child.
                #[xml(attribute)]
                node: NodeName,
            },
            /// `<dissociate node='…'/>`: the child leaves.
            #[xml(name = "dissociate")]
            Dissociate {
                /// The child.
                #[xml(attribute)]
                node: NodeName,
            },
        }
    };
}

association!(ns::PUBSUB_EVENT, EventAssociation, "event");
association!(ns::PUBSUB_OWNER, OwnerAssociation, "owner");

/// What happened to a node, as told to the subscribers of the collections above it.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB_EVENT, exhaustive)]
pub enum NodeChange {
    /// `<create node='…'/>`: the node was created (example 8).
    #[xml(name = "create")]
    Create {
        /// The new node.
        #[xml(attribute)]
        node: NodeName,
    },
    /// `<collection node='…'>`: a child joined or left the collection (examples 9, 10).
    #[xml(name = "collection")]
    Collection {
        /// The collection.
        #[xml(attribute)]
        node: NodeName,
        /// The change.
        #[xml(child)]
        change: EventAssociation,
    },
}

/// `<event xmlns='http://jabber.org/protocol/pubsub#event'/>` with a [`NodeChange`].
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB_EVENT, name = "event")]
pub struct NodeEvent {
    /// What happened.
    #[xml(child)]
    pub change: NodeChange,
}

/// The owner's `<collection node='…'>` with one `<associate/>` or `<dissociate/>`
/// (examples 47, 52).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::PUBSUB_OWNER, name = "collection")]
pub struct OwnerCollection {
    /// The collection.
    #[xml(attribute)]
    pub node: NodeName,
    /// The change.
    #[xml(child)]
    pub change: OwnerAssociation,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::round_trip;

    fn n(s: &str) -> NodeName {
        NodeName(s.into())
    }

    #[test]
    fn example_8_create() {
        round_trip(
            "<event xmlns='http://jabber.org/protocol/pubsub#event'>
    <create node='princely_musings'/>
  </event>",
            &NodeEvent {
                change: NodeChange::Create {
                    node: n("princely_musings"),
                },
            },
        );
    }

    // Examples 9 and 10 leave `<associate>`/`<dissociate>` unclosed (a typo in the XEP):
    // closed here.
    #[test]
    fn examples_9_and_10_association() {
        round_trip(
            "<event xmlns='http://jabber.org/protocol/pubsub#event'>
    <collection node='some-collection'>
      <associate node='new-node-id'/>
    </collection>
  </event>",
            &NodeEvent {
                change: NodeChange::Collection {
                    node: n("some-collection"),
                    change: EventAssociation::Associate {
                        node: n("new-node-id"),
                    },
                },
            },
        );
        round_trip(
            "<event xmlns='http://jabber.org/protocol/pubsub#event'>
    <collection node='some-collection'>
      <dissociate node='old-node-id'/>
    </collection>
  </event>",
            &NodeEvent {
                change: NodeChange::Collection {
                    node: n("some-collection"),
                    change: EventAssociation::Dissociate {
                        node: n("old-node-id"),
                    },
                },
            },
        );
    }
}
