//! Elements xmpp-parsers 0.23 has no type for, declared with `xso` (xmpp-parsers' own derive
//! crate) the way xmpp-parsers declares its own. Each module round-trips its elements on the
//! examples of the XEP that defines them.

pub mod collections;
pub mod commands;
pub mod dump;
pub mod mam;
pub mod privilege;
pub mod pubsub;
pub mod pubsub_errors;
pub mod shim;
pub mod typed;

/// Declares an enum of attribute values, written and read as the XEP spells them.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// The value as the XEP writes it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl xso::FromXmlText for $name {
            fn from_xml_text(s: String) -> Result<Self, xso::error::Error> {
                match s.as_str() {
                    $($s => Ok($name::$var),)+
                    _ => Err(xso::error::Error::Other(concat!("not a ", stringify!($name)))),
                }
            }
        }

        impl xso::AsXmlText for $name {
            fn as_xml_text(&self) -> Result<std::borrow::Cow<'_, str>, xso::error::Error> {
                Ok(std::borrow::Cow::Borrowed(self.as_str()))
            }
        }
    };
}
pub(crate) use text_enum;

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
