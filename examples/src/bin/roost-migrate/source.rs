//! Reading the source service: its nodes, and each node's configuration, affiliations,
//! subscriptions (with options) and items, oldest first.

use anyhow::bail;
use minidom::Element;
use roost_examples::describe_error;

use crate::xml::*;
use crate::{Copy, Field, Migrator, Node, Sub};

impl Migrator {
    /// The nodes the source lists (disco#items, following RSM pages when it pages).
    pub(crate) async fn list_nodes(&mut self) -> anyhow::Result<Vec<String>> {
        let from = self.from.clone();
        let mut names = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = Element::builder("query", DISCO_ITEMS);
            if let Some(a) = &after {
                q = q.append(rsm_after(a));
            }
            let reply = match self.iq(&from, false, q.build()).await? {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => bail!("listing the nodes of {from}: {}", describe_error(&e)),
            };
            let before = names.len();
            for item in reply.children().filter(|c| c.is("item", DISCO_ITEMS)) {
                if let Some(n) = item.attr("node") {
                    if !names.iter().any(|x| x == n) {
                        names.push(n.to_owned());
                    }
                }
            }
            match rsm_last(&reply) {
                Some(last) if names.len() > before && after.as_deref() != Some(&last) => {
                    after = Some(last)
                }
                _ => break,
            }
        }
        Ok(names)
    }

    /// Everything about `node` the source gives; `Err` when nothing is to be copied
    /// (skipped: the account cannot administer it; failed: it cannot be read).
    pub(crate) async fn read(&mut self, name: &str) -> anyhow::Result<Result<Node, Copy>> {
        let from = self.from.clone();
        let configure = owner(Element::builder("configure", OWNER).attr(nc("node"), name));
        let config = match self.iq(&from, false, configure).await? {
            Ok(reply) => reply
                .as_ref()
                .and_then(|r| r.get_child("configure", OWNER))
                .and_then(|c| c.get_child("x", DATA))
                .map(parse_form)
                .unwrap_or_default(),
            Err(e) => {
                return Ok(Err(Copy::Skipped(format!(
                    "{} cannot configure it on {from}: {}",
                    self.me,
                    describe_error(&e)
                ))))
            }
        };
        let mut notes = Vec::new();
        if field(&config, "pubsub#node_type").is_some_and(|f| f.values == ["collection"]) {
            return Ok(Err(Copy::Skipped(
                "a collection node: Roost has no collections (its leaf nodes are listed on \
                 their own when the source lists them)"
                    .into(),
            )));
        }
        let affiliations = match self
            .iq(
                &from,
                false,
                owner(Element::builder("affiliations", OWNER).attr(nc("node"), name)),
            )
            .await?
        {
            Ok(reply) => Ok(children_of(&reply, "affiliations", OWNER, "affiliation")
                .filter_map(|a| {
                    Some((a.attr("jid")?.to_owned(), a.attr("affiliation")?.to_owned()))
                })
                .collect()),
            Err(e) => Err(describe_error(&e)),
        };
        let subscriptions = match self
            .iq(
                &from,
                false,
                owner(Element::builder("subscriptions", OWNER).attr(nc("node"), name)),
            )
            .await?
        {
            Ok(reply) => Ok(children_of(&reply, "subscriptions", OWNER, "subscription")
                .filter_map(|s| {
                    Some(Sub {
                        jid: s.attr("jid")?.to_owned(),
                        state: s.attr("subscription")?.to_owned(),
                        subid: s.attr("subid").map(str::to_owned),
                        options: Vec::new(),
                    })
                })
                .collect::<Vec<_>>()),
            Err(e) => Err(describe_error(&e)),
        };
        let mut subscriptions = subscriptions;
        if let Ok(subs) = &mut subscriptions {
            let mut refused: Option<String> = None;
            for sub in subs.iter_mut() {
                if refused.is_some() {
                    break;
                }
                let mut o = Element::builder("options", PUBSUB)
                    .attr(nc("node"), name)
                    .attr(nc("jid"), sub.jid.as_str());
                if let Some(id) = &sub.subid {
                    o = o.attr(nc("subid"), id.as_str());
                }
                let req = Element::builder("pubsub", PUBSUB).append(o.build()).build();
                match self.iq(&from, false, req).await? {
                    Ok(reply) => {
                        sub.options = reply
                            .as_ref()
                            .and_then(|r| r.get_child("options", PUBSUB))
                            .and_then(|o| o.get_child("x", DATA))
                            .map(parse_form)
                            .unwrap_or_default()
                    }
                    Err(e) => refused = Some(describe_error(&e)),
                }
            }
            if let Some(why) = refused {
                notes.push(format!("no subscription options: {why}"));
                subs.iter_mut().for_each(|s| s.options.clear());
            }
        }
        let items = match self.items(name).await? {
            Ok((items, note)) => {
                notes.extend(note);
                items
            }
            Err(e) => return Ok(Err(Copy::Failed(format!("its items cannot be read: {e}")))),
        };
        Ok(Ok(Node {
            name: name.to_owned(),
            config,
            affiliations,
            subscriptions,
            items,
            notes,
        }))
    }

    /// The node's items, oldest first, and a note on how their order was found.
    async fn items(
        &mut self,
        node: &str,
    ) -> anyhow::Result<Result<(Vec<Element>, Option<String>), String>> {
        let from = self.from.clone();
        let mut items: Vec<Element> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut p = Element::builder("pubsub", PUBSUB)
                .append(Element::builder("items", PUBSUB).attr(nc("node"), node));
            if let Some(a) = &after {
                p = p.append(rsm_after(a));
            }
            let reply = match self.iq(&from, false, p.build()).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(describe_error(&e))),
            };
            let page: Vec<Element> = children_of(&reply, "items", PUBSUB, "item")
                .cloned()
                .collect();
            let got = page.len();
            items.extend(page);
            // Sources that page (RSM, XEP-0060 §6.5.4) say how many there are in all.
            let set = reply.as_ref().and_then(|r| r.get_child("set", RSM));
            let count = set
                .and_then(|s| s.get_child("count", RSM))
                .and_then(|c| c.text().parse::<usize>().ok());
            match (count, set.and_then(|_| rsm_last(reply.as_ref()?))) {
                (Some(n), Some(last)) if got > 0 && items.len() < n => after = Some(last),
                _ => break,
            }
        }
        if items.len() < 2 {
            return Ok(Ok((items, None)));
        }
        // XEP-0060 leaves the order of a retrieval open but says `max_items` returns the
        // most recent: ask for one and see at which end of the list it is.
        let newest = Element::builder("pubsub", PUBSUB)
            .append(
                Element::builder("items", PUBSUB)
                    .attr(nc("node"), node)
                    .attr(nc("max_items"), "1"),
            )
            .build();
        let newest_id = match self.iq(&from, false, newest).await? {
            Ok(reply) => children_of(&reply, "items", PUBSUB, "item")
                .next()
                .and_then(|i| i.attr("id"))
                .map(str::to_owned),
            Err(_) => None,
        };
        let first = items.first().and_then(|i| i.attr("id"));
        let last = items.last().and_then(|i| i.attr("id"));
        let note = match newest_id.as_deref() {
            Some(n) if Some(n) == last => None,
            Some(n) if Some(n) == first => {
                items.reverse();
                None
            }
            _ => Some(
                "the order of the items is unknown (the newest item is at neither end of the \
                 list): copied in the order listed"
                    .to_owned(),
            ),
        };
        Ok(Ok((items, note)))
    }

    /// The target's default node configuration form.
    pub(crate) async fn default_config(&mut self) -> anyhow::Result<Vec<Field>> {
        let to = self.to.clone();
        let req = owner(Element::builder("default", OWNER));
        match self.iq(&to, false, req).await? {
            Ok(reply) => Ok(reply
                .as_ref()
                .and_then(|r| r.get_child("default", OWNER))
                .and_then(|d| d.get_child("x", DATA))
                .map(parse_form)
                .unwrap_or_default()),
            Err(e) => bail!(
                "{to} gives no default node configuration: {}",
                describe_error(&e)
            ),
        }
    }
}
