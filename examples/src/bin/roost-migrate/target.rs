//! Writing into the target Roost: create and configure the node, publish the items, set
//! the affiliations, then the subscriptions and their options; note what is not kept.

use minidom::Element;
use roost_examples::describe_error;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::xml::*;
use crate::{Copy, Field, Migrator, Node, Outcome, Sub};

impl Migrator {
    pub(crate) async fn write(
        &mut self,
        node: Node,
        target_form: &[Field],
    ) -> anyhow::Result<Outcome> {
        let mut lines: Vec<String> = node.notes.iter().map(|n| format!("source: {n}")).collect();
        // Requests of the copy the target refused (the node is then only partly copied).
        let mut refused = 0;
        let (config, mapped) = map_fields(&node.config, target_form);
        lines.extend(mapped.into_iter().map(|m| format!("mapped: {m}")));
        let name = node.name.clone();
        match self.create(&name, &config, &mut lines).await? {
            Ok(()) => {}
            Err(why) => {
                return Ok(Outcome {
                    node: name,
                    result: Copy::Failed(why),
                    lines,
                })
            }
        }
        let to = self.to.clone();

        // Items, oldest first, with their ids.
        let mut copied = 0;
        let mut publishers = 0;
        for item in &node.items {
            if item.attr("publisher").is_some() {
                publishers += 1;
            }
            let mut it = Element::builder("item", PUBSUB);
            if let Some(id) = item.attr("id") {
                it = it.attr(nc("id"), id);
            }
            for payload in item.children() {
                it = it.append(payload.clone());
            }
            let req = Element::builder("pubsub", PUBSUB)
                .append(
                    Element::builder("publish", PUBSUB)
                        .attr(nc("node"), name.as_str())
                        .append(it.build()),
                )
                .build();
            match self.iq(&to, true, req).await? {
                Ok(_) => copied += 1,
                Err(e) => {
                    refused += 1;
                    lines.push(format!(
                        "target: item {} refused: {}",
                        item.attr("id").unwrap_or("(no id)"),
                        describe_error(&e)
                    ))
                }
            }
        }
        let max_items = config
            .iter()
            .find(|f| f.var == "pubsub#max_items")
            .and_then(|f| f.values.first()?.parse::<usize>().ok());
        if let Some(max) = max_items.filter(|m| copied > *m) {
            lines.push(format!(
                "target: keeps the newest {max} of the {copied} item(s) (pubsub#max_items)"
            ));
        }
        if copied > 0 {
            lines.push(format!(
                "target: the {copied} item(s) keep their ids and order, not their publisher{} \
                 nor their time: {} publishes them now",
                if publishers > 0 {
                    format!(" ({publishers} named one)")
                } else {
                    String::new()
                },
                self.me
            ));
        }

        // Affiliations, before subscriptions: a whitelist admits members only.
        let mut affs_copied = 0;
        let mut was_owner = false;
        match &node.affiliations {
            Err(e) => lines.push(format!("source: no affiliations: {e}")),
            Ok(affs) => {
                was_owner = affs.iter().any(|(j, a)| *j == self.me && a == "owner");
                let rows: Vec<Element> = affs
                    .iter()
                    .filter(|(j, _)| *j != self.me)
                    .map(|(j, a)| {
                        Element::builder("affiliation", OWNER)
                            .attr(nc("jid"), j.as_str())
                            .attr(nc("affiliation"), a.as_str())
                            .build()
                    })
                    .collect();
                if !rows.is_empty() {
                    let n = rows.len();
                    let req = owner(
                        Element::builder("affiliations", OWNER)
                            .attr(nc("node"), name.as_str())
                            .append_all(rows),
                    );
                    match self.iq(&to, true, req).await? {
                        Ok(_) => affs_copied = n,
                        Err(e) => {
                            refused += 1;
                            lines.push(format!(
                                "target: affiliations refused: {}",
                                describe_error(&e)
                            ))
                        }
                    }
                }
                if was_owner {
                    affs_copied += 1;
                }
            }
        }

        // Subscriptions, then their options.
        let mut subs_copied = 0;
        match &node.subscriptions {
            Err(e) => lines.push(format!("source: no subscriptions: {e}")),
            Ok(subs) if !subs.is_empty() => {
                subs_copied = self.subscriptions(&name, subs, &mut lines).await?;
                refused += usize::from(subs_copied < subs.len());
            }
            Ok(_) => {}
        }

        // The account owned the new node only to fill it.
        if !was_owner && node.affiliations.is_ok() {
            let req = owner(
                Element::builder("affiliations", OWNER)
                    .attr(nc("node"), name.as_str())
                    .append(
                        Element::builder("affiliation", OWNER)
                            .attr(nc("jid"), self.me.as_str())
                            .attr(nc("affiliation"), "none"),
                    ),
            );
            if let Err(e) = self.iq(&to, true, req).await? {
                lines.push(format!(
                    "target: {} stays an owner (it was not one on the source): {}",
                    self.me,
                    describe_error(&e)
                ));
            }
        }
        let summary = format!(
            "{copied}/{} item(s), {affs_copied} affiliation(s), {subs_copied} subscription(s)",
            node.items.len()
        );
        Ok(Outcome {
            node: name,
            result: if refused > 0 {
                Copy::Failed(format!("partly copied: {summary}"))
            } else {
                Copy::Done(format!("copied: {summary}"))
            },
            lines,
        })
    }

    /// Creates the node with `config`; field by field when the target refuses the form.
    async fn create(
        &mut self,
        name: &str,
        config: &[Field],
        lines: &mut Vec<String>,
    ) -> anyhow::Result<Result<(), String>> {
        let to = self.to.clone();
        let req = |config: &[Field]| {
            let mut p = Element::builder("pubsub", PUBSUB)
                .append(Element::builder("create", PUBSUB).attr(nc("node"), name));
            if !config.is_empty() {
                p = p.append(
                    Element::builder("configure", PUBSUB).append(submit_form(NODE_CONFIG, config)),
                );
            }
            p.build()
        };
        match self.iq(&to, true, req(config)).await? {
            Ok(_) => return Ok(Ok(())),
            Err(e) if e.defined_condition == DefinedCondition::Conflict => {
                return Ok(Err(format!(
                    "it already exists on {to} (delete it there to copy it again)"
                )))
            }
            Err(e) if config.is_empty() => {
                return Ok(Err(format!(
                    "{to} refused to create it: {}",
                    describe_error(&e)
                )))
            }
            Err(e) => lines.push(format!(
                "mapped: the configuration as a whole was refused ({}): applied field by field",
                describe_error(&e)
            )),
        }
        if let Err(e) = self.iq(&to, true, req(&[])).await? {
            return Ok(Err(format!(
                "{to} refused to create it: {}",
                describe_error(&e)
            )));
        }
        for f in config {
            let Err(why) = self.configure(name, std::slice::from_ref(f)).await? else {
                continue;
            };
            // A node the source restricted must not end up open: fall back to the most
            // restrictive model the target has.
            if f.var == "pubsub#access_model" {
                let mut w = f.clone();
                w.values = vec!["whitelist".into()];
                if self.configure(name, &[w]).await?.is_ok() {
                    lines.push(format!(
                        "mapped: pubsub#access_model {} refused by the target: whitelist instead",
                        f.values.join(",")
                    ));
                    continue;
                }
            }
            lines.push(format!(
                "mapped: {}={} not copied: the target refused it: {why}",
                f.var,
                f.values.join(",")
            ));
        }
        Ok(Ok(()))
    }

    async fn configure(
        &mut self,
        name: &str,
        fields: &[Field],
    ) -> anyhow::Result<Result<(), String>> {
        let to = self.to.clone();
        let req = owner(
            Element::builder("configure", OWNER)
                .attr(nc("node"), name)
                .append(submit_form(NODE_CONFIG, fields)),
        );
        Ok(self
            .iq(&to, true, req)
            .await?
            .map(|_| ())
            .map_err(|e| describe_error(&e)))
    }

    /// Copies the subscriptions and their options; returns how many were copied.
    async fn subscriptions(
        &mut self,
        name: &str,
        subs: &[Sub],
        lines: &mut Vec<String>,
    ) -> anyhow::Result<usize> {
        let to = self.to.clone();
        let rows = subs.iter().map(|s| {
            Element::builder("subscription", OWNER)
                .attr(nc("jid"), s.jid.as_str())
                .attr(nc("subscription"), s.state.as_str())
                .build()
        });
        let req = owner(
            Element::builder("subscriptions", OWNER)
                .attr(nc("node"), name)
                .append_all(rows),
        );
        if let Err(e) = self.iq(&to, true, req).await? {
            lines.push(format!(
                "target: subscriptions refused: {}",
                describe_error(&e)
            ));
            return Ok(0);
        }
        if subs.iter().any(|s| s.subid.is_some()) {
            lines.push("target: subscription ids are new (the target assigns its own)".into());
        }
        lines.push("target: each subscriber was notified of its subscription".into());
        // Options: each subscription's new subid, then the fields both sides know.
        let with_options: Vec<&Sub> = subs
            .iter()
            .filter(|s| s.options.iter().any(|f| !f.values.is_empty()))
            .collect();
        if with_options.is_empty() {
            return Ok(subs.len());
        }
        let listed = match self
            .iq(
                &to,
                false,
                owner(Element::builder("subscriptions", OWNER).attr(nc("node"), name)),
            )
            .await?
        {
            Ok(reply) => children_of(&reply, "subscriptions", OWNER, "subscription")
                .filter_map(|s| Some((s.attr("jid")?.to_owned(), s.attr("subid")?.to_owned())))
                .collect::<Vec<_>>(),
            Err(e) => {
                lines.push(format!(
                    "target: subscription options not copied: {}",
                    describe_error(&e)
                ));
                return Ok(subs.len());
            }
        };
        let mut taken: Vec<String> = Vec::new();
        for sub in with_options {
            let Some((_, subid)) = listed
                .iter()
                .find(|(j, id)| *j == sub.jid && !taken.contains(id))
            else {
                continue;
            };
            taken.push(subid.clone());
            let get = |form: Option<Element>| {
                let mut o = Element::builder("options", PUBSUB)
                    .attr(nc("node"), name)
                    .attr(nc("jid"), sub.jid.as_str())
                    .attr(nc("subid"), subid.as_str());
                if let Some(f) = form {
                    o = o.append(f);
                }
                Element::builder("pubsub", PUBSUB).append(o.build()).build()
            };
            let target_fields = match self.iq(&to, false, get(None)).await? {
                Ok(reply) => reply
                    .as_ref()
                    .and_then(|r| r.get_child("options", PUBSUB))
                    .and_then(|o| o.get_child("x", DATA))
                    .map(parse_form)
                    .unwrap_or_default(),
                Err(e) => {
                    lines.push(format!(
                        "target: options of {} not copied (setting another's options needs \
                         {} to be an admin of the target): {}",
                        sub.jid,
                        self.me,
                        describe_error(&e)
                    ));
                    continue;
                }
            };
            let (fields, mapped) = map_fields(&sub.options, &target_fields);
            lines.extend(
                mapped
                    .into_iter()
                    .map(|m| format!("mapped: options of {}: {m}", sub.jid)),
            );
            if fields.is_empty() {
                continue;
            }
            let form = submit_form(SUBSCRIBE_OPTIONS, &fields);
            if let Err(e) = self.iq(&to, true, get(Some(form))).await? {
                lines.push(format!(
                    "target: options of {} refused: {}",
                    sub.jid,
                    describe_error(&e)
                ));
            }
        }
        Ok(subs.len())
    }
}
