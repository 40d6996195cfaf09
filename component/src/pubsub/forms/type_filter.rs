//! XEP-0462's `urn:xmpp:pubsub-filter:0` form: which `pubsub#type`s a disco#items lists.

use roost_nodes::TypeFilter;
use xmpp_parsers::data_forms::DataForm;

use super::submitted;
use crate::xml::typed::NS_PUBSUB_FILTER;

/// The filter a submitted `urn:xmpp:pubsub-filter:0` form asks for; `None` when it names
/// neither field (nothing to filter). Both fields at once is an error (XEP-0462: a
/// `bad-request`), as is a form of another FORM_TYPE. Values are trimmed, as `pubsub#type`
/// is when configured; an empty one stands for nodes without a type. Other fields are ignored, as in every form Roost reads
/// but publish-options.
pub(crate) fn parse_type_filter(form: &DataForm) -> Result<Option<TypeFilter>, String> {
    let mut included = None;
    let mut excluded = None;
    for (var, f) in submitted(form, NS_PUBSUB_FILTER, true)? {
        match var {
            "included-types" => included = Some(types(&f.values)),
            "excluded-types" => excluded = Some(types(&f.values)),
            _ => {}
        }
    }
    match (included, excluded) {
        (Some(_), Some(_)) => Err("included-types and excluded-types are exclusive".to_owned()),
        (Some(t), None) => Ok(Some(TypeFilter::Include(t))),
        (None, Some(t)) => Ok(Some(TypeFilter::Exclude(t))),
        (None, None) => Ok(None),
    }
}

fn types(values: &[String]) -> Vec<String> {
    values.iter().map(|v| v.trim().to_owned()).collect()
}
