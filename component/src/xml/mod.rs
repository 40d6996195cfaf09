//! Elements xmpp-parsers 0.23 has no type for, declared with `xso` (xmpp-parsers' own derive
//! crate) the way xmpp-parsers declares its own. Each module round-trips its elements on the
//! examples of the XEP that defines them.

pub mod pubsub_errors;

#[cfg(test)]
pub(crate) mod test_support {
    use minidom::Element;

    /// An example from a XEP as an element, without the whitespace that indents it.
    pub fn example(xml: &str) -> Element {
        let mut compact = String::with_capacity(xml.len());
        let mut between_tags = false;
        let mut pending = String::new();
        for c in xml.trim().chars() {
            match c {
                '>' => {
                    compact.push(c);
                    between_tags = true;
                    pending.clear();
                }
                '<' => {
                    if !between_tags {
                        compact.push_str(&pending);
                    }
                    pending.clear();
                    compact.push(c);
                    between_tags = false;
                }
                c if between_tags && c.is_whitespace() => pending.push(c),
                c => {
                    if between_tags {
                        compact.push_str(&pending);
                        pending.clear();
                        between_tags = false;
                    }
                    compact.push(c);
                }
            }
        }
        compact.parse().expect("the example parses")
    }

    /// Parses `xml` as a `T`, checks it equals `expected`, and that it serializes back to
    /// the same element.
    pub fn round_trip<T>(xml: &str, expected: &T)
    where
        T: TryFrom<Element> + Into<Element> + Clone + PartialEq + std::fmt::Debug,
        <T as TryFrom<Element>>::Error: std::fmt::Debug,
    {
        let el = example(xml);
        let parsed = T::try_from(el.clone()).expect("the example is a valid element");
        assert_eq!(&parsed, expected);
        let back: Element = expected.clone().into();
        assert_eq!(back, el, "serialized back");
    }
}
