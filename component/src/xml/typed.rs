//! Typed discovery's elements, which xmpp-parsers 0.23 has no type for: XEP-0462's
//! `<filter/>` (a data form inside disco#items' `<query/>`) and XEP-0413's `<order/>` (beside
//! `<items/>` in `<pubsub/>`).

use xmpp_parsers::data_forms::DataForm;
use xso::{AsXml, FromXml};

/// XEP-0462's namespace, FORM_TYPE and feature.
pub const NS_PUBSUB_FILTER: &str = "urn:xmpp:pubsub-filter:0";

/// XEP-0413's namespace and feature.
pub const NS_ORDER_BY: &str = "urn:xmpp:order-by:1";

/// XEP-0462 `<filter xmlns='urn:xmpp:pubsub-filter:0'>` with its form (§sending-a-disco-request).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_PUBSUB_FILTER, name = "filter")]
pub struct PubSubFilter {
    /// The `urn:xmpp:pubsub-filter:0` form: `included-types` or `excluded-types`.
    #[xml(child)]
    pub form: DataForm,
}

/// XEP-0413 `<order xmlns='urn:xmpp:order-by:1' by='…' desc='…'/>`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_ORDER_BY, name = "order")]
pub struct Order {
    /// The order field: `creation`, `modification`, or another XEP's (Clark notation).
    #[xml(attribute)]
    pub by: String,
    /// `true` or `1`: descending (§reverse); ascending when absent.
    #[xml(attribute(default))]
    pub desc: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::{example, round_trip};
    use xmpp_parsers::data_forms::{DataFormType, Field, FieldType};

    #[test]
    fn xep_0462_example_1_filter() {
        let mut types = Field::new("included-types", FieldType::ListMulti);
        types.values = vec!["urn:xmpp:microblog:0".into()];
        // Without the empty `<value/>`: xmpp-parsers writes it back as `<value></value>`,
        // an element with an empty text child, which minidom compares unequal.
        round_trip(
            "<filter xmlns='urn:xmpp:pubsub-filter:0'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>urn:xmpp:pubsub-filter:0</value>
        </field>
        <field type='list-multi' var='included-types'>
          <value>urn:xmpp:microblog:0</value>
        </field>
      </x>
    </filter>",
            &PubSubFilter {
                form: DataForm::new(DataFormType::Submit, NS_PUBSUB_FILTER, vec![types.clone()]),
            },
        );
        // The example as given: parsed, and what is written back parses the same.
        types.values.push(String::new());
        let expected = PubSubFilter {
            form: DataForm::new(DataFormType::Submit, NS_PUBSUB_FILTER, vec![types]),
        };
        let el = example(
            "<filter xmlns='urn:xmpp:pubsub-filter:0'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>urn:xmpp:pubsub-filter:0</value>
        </field>
        <field type='list-multi' var='included-types'>
          <value>urn:xmpp:microblog:0</value>
          <value/>
        </field>
      </x>
    </filter>",
        );
        let parsed = PubSubFilter::try_from(el).unwrap();
        assert_eq!(parsed, expected);
        let back: minidom::Element = expected.clone().into();
        assert_eq!(PubSubFilter::try_from(back).unwrap(), expected);
    }

    #[test]
    fn xep_0413_orders() {
        // §creation (example 1), §MAM (without desc).
        round_trip(
            "<order xmlns='urn:xmpp:order-by:1' by='creation' desc='true'/>",
            &Order {
                by: "creation".into(),
                desc: Some(true),
            },
        );
        round_trip(
            "<order xmlns='urn:xmpp:order-by:1' by='modification'/>",
            &Order {
                by: "modification".into(),
                desc: None,
            },
        );
        // §reverse: `1` is true as well.
        let el: minidom::Element = "<order xmlns='urn:xmpp:order-by:1' by='creation' desc='1'/>"
            .parse()
            .unwrap();
        assert_eq!(Order::try_from(el).unwrap().desc, Some(true));
    }
}
