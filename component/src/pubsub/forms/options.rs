//! Subscription options (§6.3, §16.4.2 `pubsub#subscribe_options`): the form, and a
//! submitted one as a patch.

use roost_nodes::{Error, Show, SubOptions, SubOptionsPatch};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};

use super::super::codec::{format_datetime, parse_datetime, NS_SUBSCRIBE_OPTIONS};
use super::{boolean, form, labelled, parse_bool, parse_enum, parse_u64, single, submitted, text};

/// The subscription option holding a content filter (`roost_nodes::filter`'s language).
pub(crate) const FILTER_FIELD: &str = "x-roost#filter";

/// The subscription options form (§6.3.2 example 56, §16.4.2), with Roost's
/// [`FILTER_FIELD`]. XEP-0248's `subscription_type` and `subscription_depth` only when
/// the options are for a `collection` (the engine says, `roost_nodes::Reply::Options`):
/// on a leaf they select nothing.
pub(crate) fn sub_options_form(o: &SubOptions, collection: bool, type_: DataFormType) -> DataForm {
    let mut show = labelled(
        "pubsub#show-values",
        FieldType::ListMulti,
        "Select the presence types which are allowed to receive event notifications",
    );
    show.options = [
        (Show::Chat, "Want to Chat"),
        (Show::Online, "Available"),
        (Show::Away, "Away"),
        (Show::Xa, "Extended Away"),
        (Show::Dnd, "Do Not Disturb"),
    ]
    .iter()
    .map(|(s, l)| Option_ {
        label: Some((*l).to_owned()),
        value: s.as_str().to_owned(),
    })
    .collect();
    show.values = o
        .show_values
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let mut fields = vec![
        boolean("pubsub#deliver", "Enable delivery?", o.deliver),
        boolean(
            "pubsub#digest",
            "Receive digest notifications (approx. one per day)?",
            o.digest,
        ),
        text(
            "pubsub#digest_frequency",
            "Minimum number of milliseconds between sending any two notification digests",
            &o.digest_frequency.to_string(),
        ),
        text(
            "pubsub#expire",
            "Requested lease expiration (XEP-0082 DateTime; empty: none)",
            &o.expire.map(format_datetime).unwrap_or_default(),
        ),
        boolean(
            "pubsub#include_body",
            "Receive message body in addition to payload?",
            o.include_body,
        ),
        show,
    ];
    if collection {
        // XEP-0248 §subscribe (examples 11, 12): what a subscription to a collection
        // hears of, and how deep.
        fields.push(choice(
            "pubsub#subscription_type",
            "What kind of notifications to receive from a collection",
            o.subscription_type.as_str(),
            &[
                ("items", "Receive notification of items only"),
                ("nodes", "Receive notification of nodes only"),
                ("all", "Receive notification of both items and nodes"),
            ],
        ));
        fields.push(text(
            "pubsub#subscription_depth",
            "How far to traverse the node graph for notifications (a number, or `all`)",
            &o.subscription_depth.to_string(),
        ));
    }
    fields.push(
        // Roost's content filter (feature `urn:roost:filter:0`); `x-` as XEP-0068 §3.4
        // asks of a field not registered with the XMPP Registrar.
        text(
            FILTER_FIELD,
            "Content filter: notify only of items that match it (empty: every item)",
            o.filter.as_deref().unwrap_or_default(),
        ),
    );
    if type_ == DataFormType::Result_ {
        // A result states the options (example 69: var, type and values); labels and choices
        // are for whoever fills the form in. Every subscribe reply carries this form, so its
        // size is paid by Roost and by the server on each one.
        for f in &mut fields {
            f.label = None;
            f.options.clear();
        }
    }
    form(type_, NS_SUBSCRIBE_OPTIONS, fields)
}

/// A list-single field with labelled options.
fn choice(var: &str, label: &str, value: &str, options: &[(&str, &str)]) -> Field {
    let mut f = labelled(var, FieldType::ListSingle, label).with_value(value);
    f.options = options
        .iter()
        .map(|(v, l)| Option_ {
            label: Some((*l).to_owned()),
            value: (*v).to_owned(),
        })
        .collect();
    f
}

/// A submitted `pubsub#subscribe_options` form (§6.3.5, §6.3.7) as a patch. Anything Roost
/// cannot honour is `invalid-options` (example 66).
pub(crate) fn parse_sub_options(form: &DataForm) -> Result<SubOptionsPatch, Error> {
    let fields = submitted(form, NS_SUBSCRIBE_OPTIONS, false).map_err(Error::InvalidOptions)?;
    let mut patch = SubOptionsPatch::default();
    for (var, f) in fields {
        let bad = |e: String| Error::InvalidOptions(format!("{var}: {e}"));
        match var {
            "pubsub#show-values" => {
                let shows = f
                    .values
                    .iter()
                    .map(|v| parse_enum::<Show>(v.trim()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                patch.show_values = Some(shows);
            }
            // Untrimmed, so the positions in a parse error are the submitter's. The engine
            // parses it (`not-acceptable` with the parser's text); empty removes it.
            FILTER_FIELD => match f.values.as_slice() {
                [] => patch.filter = Some(String::new()),
                [v] => patch.filter = Some(v.clone()),
                _ => return Err(bad("takes a single value".to_owned())),
            },
            _ => {
                let v = single(f).map_err(bad)?;
                match var {
                    "pubsub#deliver" => patch.deliver = Some(parse_bool(v).map_err(bad)?),
                    "pubsub#digest" => patch.digest = Some(parse_bool(v).map_err(bad)?),
                    "pubsub#digest_frequency" => {
                        patch.digest_frequency = Some(parse_u64(v).map_err(bad)?)
                    }
                    "pubsub#include_body" => patch.include_body = Some(parse_bool(v).map_err(bad)?),
                    "pubsub#subscription_type" => {
                        patch.subscription_type = Some(parse_enum(v).map_err(bad)?)
                    }
                    "pubsub#subscription_depth" => {
                        patch.subscription_depth = Some(parse_enum(v).map_err(bad)?)
                    }
                    // A lease end as DateTime; empty removes it. `presence` leases (§12.18)
                    // are not implemented.
                    "pubsub#expire" if v.is_empty() => patch.expire = Some(None),
                    "pubsub#expire" => {
                        let at = parse_datetime(v)
                            .ok_or_else(|| bad(format!("{v:?} is not an XEP-0082 DateTime")))?;
                        patch.expire = Some(Some(at));
                    }
                    _ => {} // not implemented by Roost: ignored, see the module doc
                }
            }
        }
    }
    Ok(patch)
}
