//! XEP-0131 Stanza Headers and Internet Metadata (xmpp-parsers 0.23 has no module for it):
//! the `<headers/>` XEP-0060 puts on a notification sent for several subscriptions (§12.5).

use xso::{AsXml, FromXml};

/// `http://jabber.org/protocol/shim`.
pub const NS_SHIM: &str = "http://jabber.org/protocol/shim";

/// `<headers/>`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_SHIM, name = "headers")]
pub struct Headers {
    /// In order.
    #[xml(child(n = ..))]
    pub headers: Vec<Header>,
}

/// `<header name='…'>value</header>`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_SHIM, name = "header")]
pub struct Header {
    /// E.g. `SubID`, `Keywords`.
    #[xml(attribute)]
    pub name: String,
    /// The value.
    #[xml(text)]
    pub value: String,
}

impl Headers {
    /// One `SubID` header per subscription (XEP-0060 §12.5, example 104).
    pub fn subids<'a>(subids: impl IntoIterator<Item = &'a str>) -> Self {
        Headers::notification(&[], subids, true)
    }

    /// The headers of a notification: one `Collection` header per collection it comes
    /// through (XEP-0248 §notify, example 7), then one `SubID` header per subscription
    /// when it is for several (XEP-0060 §12.5, example 104) or `name_subids` (a content
    /// filter selected it, and its subscriber learns which).
    pub fn notification<'a, S: AsRef<str> + ?Sized + 'a>(
        collections: &[String],
        subids: impl IntoIterator<Item = &'a S>,
        name_subids: bool,
    ) -> Self {
        let header = |name: &str, value: &str| Header {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        let subids: Vec<&str> = subids.into_iter().map(AsRef::as_ref).collect();
        let subids = subids.iter().filter(|_| name_subids || subids.len() > 1);
        Headers {
            headers: collections
                .iter()
                .map(|c| header("Collection", c))
                .chain(subids.map(|s| header("SubID", s)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::round_trip;

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn xep0131_message_example() {
        round_trip(
            "<headers xmlns='http://jabber.org/protocol/shim'>
    <header name='In-Reply-To'>123456789@capulet.com</header>
    <header name='Keywords'>shakespeare,&lt;xmpp/&gt;</header>
  </headers>",
            &Headers {
                headers: vec![
                    header("In-Reply-To", "123456789@capulet.com"),
                    header("Keywords", "shakespeare,<xmpp/>"),
                ],
            },
        );
    }

    #[test]
    fn xep0060_example_104_subids() {
        round_trip(
            "<headers xmlns='http://jabber.org/protocol/shim'>
    <header name='SubID'>123-abc</header>
    <header name='SubID'>004-yyy</header>
  </headers>",
            &Headers::subids(["123-abc", "004-yyy"]),
        );
    }

    #[test]
    fn xep0248_example_7_collection() {
        round_trip(
            "<headers xmlns='http://jabber.org/protocol/shim'>
    <header name='Collection'>blogs</header>
  </headers>",
            &Headers::notification(&["blogs".to_owned()], &["only-one".to_owned()], false),
        );
    }

    #[test]
    fn collection_then_a_filtered_subscriptions_subid() {
        round_trip(
            "<headers xmlns='http://jabber.org/protocol/shim'>
    <header name='Collection'>logs</header>
    <header name='SubID'>f1</header>
  </headers>",
            &Headers::notification(&["logs".to_owned()], &["f1".to_owned()], true),
        );
    }
}
