//! Encodings every translator shares: namespaces xmpp-parsers has no constant for, the IQ
//! type, item payloads as the engine stores them, XEP-0082 dates, XEP-0059 result sets both
//! ways, and the data form child of a request.

// The RSM reader hands `StanzaError` over by value, as the parsers do.
#![allow(clippy::result_large_err)]

use minidom::Element;
use roost_nodes::{Millis, RsmPage, RsmQuery};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::ns;
use xmpp_parsers::rsm::{First, SetResult};
use xmpp_parsers::stanza_error::StanzaError;

use crate::errors::bad_request;

/// FORM_TYPE of publish-options (§7.1.5); not among xmpp-parsers' `ns` constants.
pub const NS_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// FORM_TYPE of subscription options (§6.3).
pub const NS_SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";
/// FORM_TYPE of the subscription authorization form (§8.6) and of get-pending (§8.7).
pub const NS_SUBSCRIBE_AUTHORIZATION: &str =
    "http://jabber.org/protocol/pubsub#subscribe_authorization";
/// The ad-hoc command node of get-pending (§8.7).
pub const GET_PENDING_NODE: &str = "http://jabber.org/protocol/pubsub#get-pending";
/// FORM_TYPE of the node meta-data form (§5.4, XEP-0128).
pub const NS_META_DATA: &str = "http://jabber.org/protocol/pubsub#meta-data";

/// The type of the IQ a payload arrived in (results and errors never reach the pubsub layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqKind {
    /// `<iq type='get'/>`.
    Get,
    /// `<iq type='set'/>`.
    Set,
}

/// An item payload as stored by the engine, back as an element. Payloads were serialized by
/// [`serialize_payload`] so this only fails on corrupted storage: log and skip.
pub fn payload_element(payload: &str) -> Option<Element> {
    if payload.is_empty() {
        return None;
    }
    match payload.parse::<Element>() {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "stored item payload is not well-formed XML; skipped");
            None
        }
    }
}

/// An item payload as the engine stores it: the element serialized with its own namespace
/// declaration, so it parses back standalone.
pub fn serialize_payload(payload: &Element) -> String {
    String::from(payload)
}

/// Formats milliseconds since the epoch as an XEP-0082 DateTime in UTC
/// (`2003-07-29T22:56:10Z`, with `.sss` only when there are milliseconds).
pub fn format_datetime(ms: Millis) -> String {
    use chrono::{DateTime, SecondsFormat, Utc};
    // Past chrono's range (year 262 143) only by corruption: clamp rather than fail.
    let t = i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an XEP-0082 DateTime (with a timezone) into milliseconds since the epoch;
/// `None` when malformed or before 1970.
pub fn parse_datetime(s: &str) -> Option<Millis> {
    let dt: xmpp_parsers::date::DateTime = s.trim().parse().ok()?;
    u64::try_from(dt.0.timestamp_millis()).ok()
}

/// The XEP-0059 `<set/>` child of `e`, if any. Read by hand: xmpp-parsers' `SetQuery`
/// uses `usize`, and an empty `<before/>` (the last page, §2.5) must stay distinguishable
/// from no `<before/>`.
pub fn rsm_child(e: &Element) -> Result<Option<RsmQuery>, StanzaError> {
    let Some(set) = e.get_child("set", ns::RSM) else {
        return Ok(None);
    };
    let text = |name: &str| set.get_child(name, ns::RSM).map(|c| c.text());
    let number = |name: &str| -> Result<Option<u64>, StanzaError> {
        text(name)
            .map(|t| {
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| bad_request(format!("RSM <{name}/> is not a number")))
            })
            .transpose()
    };
    let uid = |name: &str| -> Result<Option<String>, StanzaError> {
        match text(name) {
            Some(t) if t.is_empty() && name == "after" => {
                Err(bad_request("RSM <after/> needs a UID"))
            }
            t => Ok(t),
        }
    };
    Ok(Some(RsmQuery {
        max: number("max")?,
        after: uid("after")?,
        before: uid("before")?,
        index: number("index")?,
    }))
}

/// The data form child of `e`, if any.
pub fn form_child(e: &Element) -> Result<Option<DataForm>, StanzaError> {
    match e.get_child("x", ns::DATA_FORMS) {
        None => Ok(None),
        Some(x) => DataForm::try_from(x.clone())
            .map(Some)
            .map_err(|e| bad_request(format!("malformed data form: {e}"))),
    }
}

/// A page as XEP-0059 §2 reports it: `<first index='…'/>`, `<last/>`, `<count/>`; an
/// empty page carries the count alone (§2.6).
pub fn set_result(page: &RsmPage) -> SetResult {
    let usize_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    SetResult {
        first: page.first.as_ref().map(|(id, index)| First {
            index: Some(usize_of(*index)),
            item: id.clone(),
        }),
        last: page.last.clone(),
        count: Some(usize_of(page.count)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trip() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_datetime(1_059_519_370_000), "2003-07-29T22:56:10Z");
        assert_eq!(format_datetime(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_datetime(951_782_400_100), "2000-02-29T00:00:00.100Z");
        assert_eq!(
            parse_datetime("2003-07-29T22:56:10Z"),
            Some(1_059_519_370_000)
        );
        assert_eq!(
            parse_datetime("2003-07-29T23:56:10+01:00"),
            Some(1_059_519_370_000)
        );
        assert_eq!(
            parse_datetime("2000-02-29T00:00:00.123Z"),
            Some(951_782_400_123)
        );
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), None);
        for ms in [1u64, 86_399_999, 4_102_444_800_000, 1_709_164_800_000] {
            assert_eq!(parse_datetime(&format_datetime(ms)), Some(ms));
        }
    }

    #[test]
    fn payload_round_trip() {
        let e: Element =
            "<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>"
                .parse()
                .unwrap();
        let s = serialize_payload(&e);
        assert_eq!(payload_element(&s), Some(e));
        assert_eq!(payload_element(""), None);
        assert_eq!(payload_element("<broken"), None);
    }
}
