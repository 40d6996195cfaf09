//! XEP-0050 discovery of the service's ad-hoc commands: get-pending (§8.7), for everyone,
//! and the admins' commands ([`ADMIN_COMMANDS`], listed to admins only, as XEP-0050 §2.2
//! allows a responder to tailor the list to the requester): the command list (disco#items
//! on the fixed node `http://jabber.org/protocol/commands`) and disco#info on that node and
//! on each command's node. Running get-pending is a pubsub request (see `parse`); running
//! an admin command is `crate::admin`'s.

use minidom::Element;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item as DiscoItem};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::ns;

use super::codec::GET_PENDING_NODE;
use crate::xml::commands::NS_COMMANDS;

/// The name of get-pending in the command list.
const GET_PENDING_NAME: &str = "Get pending subscription requests";

/// The admins' commands (in the spirit of XEP-0133): node, and name in the command list.
pub const ADMIN_COMMANDS: &[(&str, &str)] = &[
    ("urn:roost:admin:0#list-nodes", "List nodes"),
    ("urn:roost:admin:0#node-summary", "Node summary"),
    ("urn:roost:admin:0#delete-node", "Delete a node"),
    ("urn:roost:admin:0#purge-node", "Purge a node's items"),
    (
        "urn:roost:admin:0#list-subscribers",
        "List a node's subscriptions",
    ),
    ("urn:roost:admin:0#statistics", "Service statistics"),
];

/// The answer to a disco#info or disco#items get about the command nodes of `service`,
/// asked by an admin or not; `None` for any other payload (a node of that name would be a
/// pubsub node).
pub fn command_disco(payload: &Element, service: &Jid, admin: bool) -> Option<Element> {
    let node = payload.attr("node")?;
    let admin_commands = ADMIN_COMMANDS.iter().filter(|_| admin);
    if payload.is("query", ns::DISCO_ITEMS) && node == NS_COMMANDS {
        let commands = [(GET_PENDING_NODE, GET_PENDING_NAME)].into_iter();
        return Some(
            DiscoItemsResult {
                node: Some(NS_COMMANDS.to_owned()),
                items: commands
                    .chain(admin_commands.copied())
                    .map(|(node, name)| DiscoItem {
                        jid: service.clone(),
                        node: Some(node.to_owned()),
                        name: Some(name.to_owned()),
                    })
                    .collect(),
                rsm: None,
            }
            .into(),
        );
    }
    if !payload.is("query", ns::DISCO_INFO) {
        return None;
    }
    // §2.2: the command list node is automation/command-list; a command, at least
    // automation/command-node with the commands feature, and data forms since it uses one.
    let (identity, features) = match node {
        NS_COMMANDS => (
            Identity {
                category: "automation".to_owned(),
                type_: "command-list".to_owned(),
                lang: None,
                name: None,
            },
            vec![NS_COMMANDS],
        ),
        GET_PENDING_NODE => (
            Identity::new("automation", "command-node", "en", GET_PENDING_NAME),
            vec![NS_COMMANDS, ns::DATA_FORMS],
        ),
        _ => {
            let mut admin_commands = admin_commands;
            let (_, name) = admin_commands.find(|(n, _)| *n == node)?;
            (
                Identity::new("automation", "command-node", "en", *name),
                vec![NS_COMMANDS, ns::DATA_FORMS],
            )
        }
    };
    Some(
        DiscoInfoResult {
            node: Some(node.to_owned()),
            identities: vec![identity],
            features: features.into_iter().map(str::to_owned).collect(),
            extensions: Vec::new(),
        }
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Jid {
        "pubsub.shakespeare.lit".parse().unwrap()
    }

    fn query(ns: &str, node: &str) -> Element {
        format!("<query xmlns='{ns}' node='{node}'/>")
            .parse()
            .unwrap()
    }

    #[test]
    fn xep0050_2_2_command_list_and_command_info() {
        let e = command_disco(&query(ns::DISCO_ITEMS, NS_COMMANDS), &service(), false).unwrap();
        let items = DiscoItemsResult::try_from(e).unwrap();
        assert_eq!(items.node.as_deref(), Some(NS_COMMANDS));
        assert_eq!(items.items.len(), 1);
        assert_eq!(items.items[0].jid, service());
        assert_eq!(items.items[0].node.as_deref(), Some(GET_PENDING_NODE));

        let e = command_disco(&query(ns::DISCO_INFO, GET_PENDING_NODE), &service(), false).unwrap();
        let info = DiscoInfoResult::try_from(e).unwrap();
        assert_eq!(info.node.as_deref(), Some(GET_PENDING_NODE));
        assert_eq!(
            (
                info.identities[0].category.as_str(),
                info.identities[0].type_.as_str()
            ),
            ("automation", "command-node")
        );
        assert!(info.features.contains(NS_COMMANDS));
        assert!(info.features.contains(ns::DATA_FORMS));

        let e = command_disco(&query(ns::DISCO_INFO, NS_COMMANDS), &service(), false).unwrap();
        let info = DiscoInfoResult::try_from(e).unwrap();
        assert_eq!(info.identities[0].type_, "command-list");
    }

    #[test]
    fn admin_commands_are_listed_to_admins_only() {
        let list = |admin| {
            let e = command_disco(&query(ns::DISCO_ITEMS, NS_COMMANDS), &service(), admin);
            DiscoItemsResult::try_from(e.unwrap()).unwrap().items.len()
        };
        assert_eq!(list(false), 1);
        assert_eq!(list(true), 1 + ADMIN_COMMANDS.len());
        let (node, name) = ADMIN_COMMANDS[0];
        let e = command_disco(&query(ns::DISCO_INFO, node), &service(), true).unwrap();
        let info = DiscoInfoResult::try_from(e).unwrap();
        assert_eq!(info.identities[0].name.as_deref(), Some(name));
        assert!(command_disco(&query(ns::DISCO_INFO, node), &service(), false).is_none());
    }

    #[test]
    fn other_nodes_are_pubsub_nodes() {
        for (ns, node) in [
            (ns::DISCO_INFO, "princely_musings"),
            (ns::DISCO_ITEMS, "princely_musings"),
            (ns::DISCO_ITEMS, GET_PENDING_NODE),
        ] {
            assert!(command_disco(&query(ns, node), &service(), true).is_none());
        }
        let no_node = Element::bare("query", ns::DISCO_INFO);
        assert!(command_disco(&no_node, &service(), true).is_none());
    }

    /// Through the service: disco#info on the service claims what it implements, and the
    /// command list is answered before the pubsub layer takes the node for one of its own.
    #[test]
    fn the_service_claims_commands_and_lists_get_pending() {
        use crate::roost::Roost;
        use clap::Parser;
        use roost_nodes::{MemStore, Policy, Service};
        use xmpp_parsers::iq::Iq;
        use xmpp_parsers::stanza::Stanza;

        let cfg = crate::Config::resolve(
            crate::config::Cli::try_parse_from([
                "roost",
                "--jid",
                "pubsub.localhost",
                "--secret",
                "s",
            ])
            .unwrap(),
        )
        .unwrap();
        let mut r: Roost<MemStore> = Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &cfg,
        );
        let mut ask = |inner: &str| -> Element {
            let e: Element = format!(
                "<iq xmlns='jabber:component:accept' type='get' id='d' from='bob@localhost/r' \
                 to='pubsub.localhost'>{inner}</iq>"
            )
            .parse()
            .unwrap();
            match r.exchange(Stanza::Iq(Iq::try_from(e).unwrap())).remove(0) {
                Stanza::Iq(Iq::Result {
                    payload: Some(p), ..
                }) => p,
                other => panic!("{other:?}"),
            }
        };
        let info = DiscoInfoResult::try_from(ask(&format!("<query xmlns='{}'/>", ns::DISCO_INFO)))
            .unwrap();
        for f in [
            NS_COMMANDS,
            ns::DATA_FORMS,
            ns::RSM,
            "http://jabber.org/protocol/pubsub#subscription-notifications",
        ] {
            assert!(info.features.contains(f), "{f} not claimed");
        }
        let items = DiscoItemsResult::try_from(ask(&format!(
            "<query xmlns='{}' node='{NS_COMMANDS}'/>",
            ns::DISCO_ITEMS
        )))
        .unwrap();
        assert_eq!(items.items[0].node.as_deref(), Some(GET_PENDING_NODE));
        let info = DiscoInfoResult::try_from(ask(&format!(
            "<query xmlns='{}' node='{GET_PENDING_NODE}'/>",
            ns::DISCO_INFO
        )))
        .unwrap();
        assert_eq!(info.identities[0].type_, "command-node");
    }
}
