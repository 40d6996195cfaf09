//! Data forms (XEP-0004) ↔ engine types: node configuration (§16.4.4 `pubsub#node_config`,
//! one field table for the configuration form, the meta-data form and publish-options),
//! subscription options (§16.4.2 `pubsub#subscribe_options`), the §8.6 / §8.7
//! authorization forms, and XEP-0462's type filter.
//!
//! Submitted forms are read strictly where Roost knows the field: a value it cannot parse is
//! an error, never a silent default. Fields it does not implement are ignored in a node
//! configuration or options form (clients echo whole forms from other services back, and the
//! §16.4 registry is long), but rejected in publish-options, as §7.1.5 requires.

mod authorization;
mod node_config;
mod options;
#[cfg(test)]
mod tests;
mod type_filter;

use std::collections::HashSet;
use std::str::FromStr;

use minidom::Element;
use roost_nodes::AccessModel;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::ns;

pub(crate) use authorization::{
    parse_pending_node, parse_subscribe_authorization, pending_nodes_form,
    subscribe_authorization_form,
};
pub(crate) use node_config::{
    metadata_form, node_config_form, parse_node_config, parse_publish_options,
};
pub(crate) use options::{parse_sub_options, sub_options_form};
pub(crate) use type_filter::parse_type_filter;

// ---------------------------------------------------------------------------------------
// Building forms

fn labelled(var: &str, type_: FieldType, label: &str) -> Field {
    let mut f = Field::new(var, type_);
    f.label = Some(label.to_owned());
    f
}

fn boolean(var: &str, label: &str, value: bool) -> Field {
    labelled(var, FieldType::Boolean, label).with_value(if value { "1" } else { "0" })
}

fn text(var: &str, label: &str, value: &str) -> Field {
    let f = labelled(var, FieldType::TextSingle, label);
    if value.is_empty() {
        f
    } else {
        f.with_value(value)
    }
}

fn form(type_: DataFormType, form_type: &str, fields: Vec<Field>) -> DataForm {
    // DataForm::new panics on type cancel; never called with it.
    debug_assert!(type_ != DataFormType::Cancel);
    DataForm::new(type_, form_type, fields)
}

/// Adds the `presence` and `roster` access models to the options of a configuration form
/// inside a reply payload: done by the connection when the server grants roster access,
/// since only then can those models be honoured. A payload without such a form is left as
/// it is.
pub(crate) fn offer_roster_models(payload: &mut Element) {
    let Some(configure) = payload
        .children_mut()
        .find(|c| c.name() == "configure" || c.name() == "default")
    else {
        return;
    };
    let Some(x) = configure.children_mut().find(|c| c.is("x", ns::DATA_FORMS)) else {
        return;
    };
    let Ok(mut form) = DataForm::try_from(x.clone()) else {
        return;
    };
    for f in form.fields.iter_mut() {
        if f.var.as_deref() == Some("pubsub#access_model") {
            for m in [AccessModel::Presence, AccessModel::Roster] {
                if !f.options.iter().any(|o| o.value == m.as_str()) {
                    f.options.push(Option_ {
                        label: None,
                        value: m.as_str().to_owned(),
                    });
                }
            }
        }
    }
    *x = form.into();
}

// ---------------------------------------------------------------------------------------
// Reading submitted forms

/// Checks the form is a submission with the expected FORM_TYPE (`required`: must be
/// present) and returns its other fields, rejecting a var given twice.
fn submitted<'f>(
    form: &'f DataForm,
    form_type: &str,
    required: bool,
) -> Result<Vec<(&'f str, &'f Field)>, String> {
    if form.type_ != DataFormType::Submit {
        return Err("the form must be of type 'submit'".to_owned());
    }
    match form.form_type() {
        Some(t) if t != form_type => return Err(format!("FORM_TYPE must be {form_type}")),
        None if required => return Err(format!("FORM_TYPE {form_type} is required")),
        _ => {}
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in &form.fields {
        if f.is_form_type(&form.type_) {
            continue;
        }
        let Some(var) = f.var.as_deref() else {
            continue; // fixed fields carry no data
        };
        if !seen.insert(var) {
            return Err(format!("field {var} given twice"));
        }
        out.push((var, f));
    }
    Ok(out)
}

/// The one value of a single-valued field; none reads as empty.
fn single(f: &Field) -> Result<&str, String> {
    match f.values.as_slice() {
        [] => Ok(""),
        [v] => Ok(v.trim()),
        _ => Err("takes a single value".to_owned()),
    }
}

/// XEP-0004 §3.3 boolean: 1/0/true/false.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("{v:?} is not a boolean")),
    }
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("{v:?} is not a non-negative integer"))
}

fn parse_enum<T: FromStr>(v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{v:?} is not an allowed value"))
}
