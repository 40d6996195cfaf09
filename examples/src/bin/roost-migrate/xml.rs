//! Data forms and the few XML shapes the migration reads and writes, as minidom elements
//! (see the crate comment in main.rs for why not xmpp-parsers' pubsub types).

use minidom::Element;

use crate::Field;

pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const DATA: &str = "jabber:x:data";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const RSM: &str = "http://jabber.org/protocol/rsm";
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
pub const SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";

/// The fields of `source` that `target` has, with values it offers; notes on the others.
/// Empty fields carry nothing and are left out silently.
pub fn map_fields(source: &[Field], target: &[Field]) -> (Vec<Field>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for f in source {
        if f.var == "FORM_TYPE" || f.kind == "fixed" || f.values.is_empty() {
            continue;
        }
        let Some(t) = field(target, &f.var) else {
            notes.push(format!(
                "{}={} not copied: the target has no such setting",
                f.var,
                f.values.join(",")
            ));
            continue;
        };
        if !t.options.is_empty() && t.kind.starts_with("list") {
            if let Some(bad) = f.values.iter().find(|v| !t.options.contains(v)) {
                if f.var == "pubsub#access_model" {
                    out.push(Field {
                        values: vec!["whitelist".into()],
                        ..f.clone()
                    });
                    notes.push(format!(
                        "pubsub#access_model {bad} is not offered by the target: whitelist instead"
                    ));
                } else {
                    notes.push(format!(
                        "{}={} not copied: the target offers {}",
                        f.var,
                        f.values.join(","),
                        t.options.join(", ")
                    ));
                }
                continue;
            }
        }
        out.push(f.clone());
    }
    (out, notes)
}

pub fn field<'a>(form: &'a [Field], var: &str) -> Option<&'a Field> {
    form.iter().find(|f| f.var == var)
}

pub fn parse_form(x: &Element) -> Vec<Field> {
    x.children()
        .filter(|c| c.is("field", DATA))
        .filter_map(|f| {
            Some(Field {
                var: f.attr("var")?.to_owned(),
                kind: f.attr("type").unwrap_or("text-single").to_owned(),
                values: f
                    .children()
                    .filter(|v| v.is("value", DATA))
                    .map(|v| v.text())
                    .collect(),
                options: f
                    .children()
                    .filter(|o| o.is("option", DATA))
                    .filter_map(|o| o.get_child("value", DATA).map(|v| v.text()))
                    .collect(),
            })
        })
        .collect()
}

pub fn submit_form(form_type: &str, fields: &[Field]) -> Element {
    let mut x = Element::builder("x", DATA)
        .attr(nc("type"), "submit")
        .append(
            Element::builder("field", DATA)
                .attr(nc("var"), "FORM_TYPE")
                .attr(nc("type"), "hidden")
                .append(Element::builder("value", DATA).append(form_type)),
        );
    for f in fields {
        let mut e = Element::builder("field", DATA).attr(nc("var"), f.var.as_str());
        for v in &f.values {
            e = e.append(Element::builder("value", DATA).append(v.as_str()));
        }
        x = x.append(e.build());
    }
    x.build()
}

pub fn owner(child: minidom::ElementBuilder) -> Element {
    Element::builder("pubsub", OWNER)
        .append(child.build())
        .build()
}

/// The `item`-like children of `reply`'s `<list>` child.
pub fn children_of<'a>(
    reply: &'a Option<Element>,
    list: &'a str,
    ns: &'a str,
    item: &'a str,
) -> impl Iterator<Item = &'a Element> + 'a {
    reply
        .iter()
        .flat_map(move |r| r.get_child(list, ns))
        .flat_map(move |l| l.children().filter(move |c| c.is(item, ns)))
}

pub fn rsm_after(after: &str) -> Element {
    Element::builder("set", RSM)
        .append(Element::builder("max", RSM).append("100"))
        .append(Element::builder("after", RSM).append(after))
        .build()
}

/// The `<last/>` of a reply's RSM `<set/>` (at the top or one level down).
pub fn rsm_last(reply: &Element) -> Option<String> {
    let set = reply
        .get_child("set", RSM)
        .or_else(|| reply.children().find_map(|c| c.get_child("set", RSM)))?;
    set.get_child("last", RSM).map(|l| l.text())
}

pub fn nc(s: &'static str) -> minidom::rxml::NcName {
    // Only called with ASCII literals that are valid names.
    minidom::rxml::NcName::try_from(s).unwrap_or_else(|_| unreachable!("{s} is an NcName"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(var: &str, kind: &str, values: &[&str], options: &[&str]) -> Field {
        Field {
            var: var.into(),
            kind: kind.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn config_mapping_keeps_what_the_target_offers() {
        let target = [
            f("pubsub#title", "text-single", &[], &[]),
            f(
                "pubsub#access_model",
                "list-single",
                &["open"],
                &["open", "whitelist"],
            ),
            f(
                "pubsub#notification_type",
                "list-single",
                &["headline"],
                &["normal", "headline"],
            ),
        ];
        let source = [
            f("FORM_TYPE", "hidden", &["x"], &[]),
            f("pubsub#title", "text-single", &["News"], &[]),
            f("pubsub#description", "text-single", &[], &[]),
            f("pubsub#access_model", "list-single", &["presence"], &[]),
            f("pubsub#notification_type", "list-single", &["chat"], &[]),
            f("pubsub#itemreply", "list-single", &["none"], &[]),
        ];
        let (out, notes) = map_fields(&source, &target);
        let got: Vec<(&str, &str)> = out
            .iter()
            .map(|f| (f.var.as_str(), f.values[0].as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("pubsub#title", "News"),
                ("pubsub#access_model", "whitelist")
            ]
        );
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("presence") && notes[0].contains("whitelist"));
        assert!(notes[1].contains("notification_type=chat"));
        assert!(notes[2].contains("itemreply") && notes[2].contains("no such setting"));
    }

    #[test]
    fn forms_round_trip() {
        let fields = [f("pubsub#max_items", "text-single", &["7"], &[])];
        let x = submit_form("urn:t", &fields);
        let back = parse_form(&x);
        assert_eq!(back[0].var, "FORM_TYPE");
        assert_eq!(back[1].var, "pubsub#max_items");
        assert_eq!(back[1].values, ["7"]);
    }
}
