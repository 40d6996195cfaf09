//! Typed discovery's requests: XEP-0462's and XEP-0413's examples in, engine requests or
//! stanza errors out.

use super::*;
use roost_nodes::{OrderBy, OrderField, RsmQuery, TypeFilter};
use xmpp_parsers::stanza_error::{DefinedCondition as C, ErrorType};

fn parse(iq: &str) -> Parsed {
    let iq = iq.replacen("<iq ", "<iq xmlns='jabber:component:accept' ", 1);
    let e: Element = iq.parse().expect("example parses");
    let kind = match e.attr("type") {
        Some("get") => IqKind::Get,
        _ => IqKind::Set,
    };
    let payload = e.children().next().expect("payload").clone();
    let from: Jid = "juliet@capulet.lit/balcony".parse().unwrap();
    parse_request(kind, &payload, &from).expect("for the pubsub layer")
}

fn filter_query(node: &str, fields: &str) -> String {
    format!(
        "<iq type='get' from='rosa@com.int/desktop' to='news.commons.social' id='disco1'>
  <query xmlns='http://jabber.org/protocol/disco#items'{node}>
    <filter xmlns='urn:xmpp:pubsub-filter:0'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>urn:xmpp:pubsub-filter:0</value>
        </field>
        {fields}
      </x>
    </filter>
  </query>
</iq>"
    )
}

const INCLUDED: &str = "<field type='list-multi' var='included-types'>
          <value>urn:xmpp:microblog:0</value>
          <value/>
        </field>";
const EXCLUDED: &str = "<field type='list-multi' var='excluded-types'>
          <value>urn:xmpp:microblog:0:comments</value>
        </field>";

#[test]
fn xep_0462_example_1() {
    assert_eq!(
        parse(&filter_query("", INCLUDED)).unwrap(),
        Request::DiscoTyped {
            node: None,
            types: TypeFilter::Include(vec!["urn:xmpp:microblog:0".into(), String::new()]),
            rsm: None,
        }
    );
    // On a collection, with XEP-0059.
    let q = filter_query(" node='feeds'", EXCLUDED).replace(
        "</filter>",
        "</filter><set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>",
    );
    assert_eq!(
        parse(&q).unwrap(),
        Request::DiscoTyped {
            node: Some("feeds".into()),
            types: TypeFilter::Exclude(vec!["urn:xmpp:microblog:0:comments".into()]),
            rsm: Some(RsmQuery {
                max: Some(2),
                ..Default::default()
            }),
        }
    );
    // A filter form naming neither field filters nothing.
    assert_eq!(parse(&filter_query("", "")).unwrap(), Request::DiscoNodes);
}

#[test]
fn xep_0462_example_2_both_fields_and_bad_forms() {
    // "If both the included and excluded fields are specified, a service MUST return an
    // error of type modify containing a bad-request element".
    let e = parse(&filter_query("", &format!("{INCLUDED}{EXCLUDED}"))).unwrap_err();
    assert_eq!(
        (e.type_, e.defined_condition),
        (ErrorType::Modify, C::BadRequest)
    );
    let e = parse(
        &filter_query("", INCLUDED).replace("<value>urn:xmpp:pubsub-filter:0", "<value>urn:x"),
    )
    .unwrap_err();
    assert_eq!(e.defined_condition, C::BadRequest);
    let e = parse(&filter_query("", INCLUDED).replace("type='submit'", "type='form'")).unwrap_err();
    assert_eq!(e.defined_condition, C::BadRequest);
    let e = parse(
        "<iq type='get' to='s'><query xmlns='http://jabber.org/protocol/disco#items'>\
         <filter xmlns='urn:xmpp:pubsub-filter:0'/></query></iq>",
    )
    .unwrap_err();
    assert_eq!(e.defined_condition, C::BadRequest);
}

fn items_query(order: &str, rest: &str) -> String {
    format!(
        "<iq type='get' from='juliet@capulet.lit/balcony' to='pubsub.shakespeare.lit' id='x'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='plays'{rest}/>
    {order}
  </pubsub>
</iq>"
    )
}

fn ordered(
    order: Vec<OrderBy>,
    max_items: Option<u64>,
    ids: Vec<String>,
    rsm: Option<RsmQuery>,
) -> Request {
    Request::ItemsOrdered {
        node: "plays".into(),
        max_items,
        ids,
        subid: None,
        order,
        rsm,
    }
}

const CREATION_DESC: OrderBy = OrderBy {
    by: OrderField::Creation,
    desc: true,
};
const MODIFICATION: OrderBy = OrderBy {
    by: OrderField::Modification,
    desc: false,
};

#[test]
fn xep_0413_examples() {
    // §creation example 1.
    let r = parse(&items_query(
        "<order xmlns='urn:xmpp:order-by:1' by='creation' desc='true'/>",
        " max_items='3'",
    ));
    assert_eq!(
        r.unwrap(),
        ordered(vec![CREATION_DESC], Some(3), vec![], None)
    );
    // §modification, with desc='1' (§reverse), and a second order breaking ties.
    let r = parse(&items_query(
        "<order xmlns='urn:xmpp:order-by:1' by='modification' desc='1'/>\
         <order xmlns='urn:xmpp:order-by:1' by='creation'/>",
        "",
    ));
    assert_eq!(
        r.unwrap(),
        ordered(
            vec![
                OrderBy {
                    by: OrderField::Modification,
                    desc: true
                },
                OrderBy {
                    by: OrderField::Creation,
                    desc: false
                },
            ],
            None,
            vec![],
            None
        )
    );
    // §use_with_rsm example rsm_2; max_items with a set is the page size, as unordered.
    let r = parse(&items_query(
        "<order xmlns='urn:xmpp:order-by:1' by='modification'/>
         <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>D</after></set>",
        " max_items='5'",
    ));
    let rsm = RsmQuery {
        max: Some(2),
        after: Some("D".into()),
        ..Default::default()
    };
    assert_eq!(
        r.unwrap(),
        ordered(vec![MODIFICATION], None, vec![], Some(rsm))
    );
    // Given ItemIDs are ordered, never paged.
    let r = parse(
        &items_query(
            "<order xmlns='urn:xmpp:order-by:1' by='modification'/>
         <set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>",
            "",
        )
        .replace(
            "<items node='plays'/>",
            "<items node='plays'><item id='a'/><item id='b'/></items>",
        ),
    );
    assert_eq!(
        r.unwrap(),
        ordered(vec![MODIFICATION], None, vec!["a".into(), "b".into()], None)
    );
}

#[test]
fn xep_0413_errors() {
    // A field of another XEP (§extending) Roost does not offer.
    let e = parse(&items_query(
        "<order xmlns='urn:xmpp:order-by:1' by='{urn:example}rating'/>",
        "",
    ))
    .unwrap_err();
    assert_eq!(
        (e.type_, e.defined_condition),
        (ErrorType::Cancel, C::FeatureNotImplemented)
    );
    let e = parse(&items_query("<order xmlns='urn:xmpp:order-by:1'/>", "")).unwrap_err();
    assert_eq!(e.defined_condition, C::BadRequest);
    let e = parse(&items_query(
        "<order xmlns='urn:xmpp:order-by:1' by='creation' desc='maybe'/>",
        "",
    ))
    .unwrap_err();
    assert_eq!(e.defined_condition, C::BadRequest);
    // Only item retrieval is ordered.
    let e = parse(
        "<iq type='get' to='s'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <subscriptions/><order xmlns='urn:xmpp:order-by:1' by='creation'/></pubsub></iq>",
    )
    .unwrap_err();
    assert_eq!(e.defined_condition, C::BadRequest);
}
