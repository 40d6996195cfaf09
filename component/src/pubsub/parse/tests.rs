//! Translation tests: XEP-0060 example requests in, engine requests or stanza errors out.

use super::*;
use roost_nodes::request::SubscriptionChange;
use roost_nodes::{
    AccessModel, Affiliation, MaxItems, NodeConfigPatch, PagedList, RsmQuery, Show,
    SubscriptionState,
};
use xmpp_parsers::stanza_error::DefinedCondition as C;

/// The payload of an XEP-0060 example IQ, parsed as the component receives it.
fn iq_payload(iq: &str) -> (IqKind, Element) {
    // The examples are in jabber:client; declare it so minidom accepts them.
    let iq = iq.replacen("<iq ", "<iq xmlns='jabber:component:accept' ", 1);
    let e: Element = iq.parse().expect("example parses");
    let kind = match e.attr("type") {
        Some("get") => IqKind::Get,
        Some("set") => IqKind::Set,
        t => panic!("not a request: {t:?}"),
    };
    (kind, e.children().next().expect("payload").clone())
}

fn from() -> Jid {
    "hamlet@denmark.lit/elsinore".parse().unwrap()
}

fn req(iq: &str) -> Request {
    let (kind, p) = iq_payload(iq);
    parse_request(kind, &p, &from())
        .expect("for the pubsub layer")
        .expect("valid request")
}

fn error(iq: &str) -> StanzaError {
    let (kind, p) = iq_payload(iq);
    parse_request(kind, &p, &from())
        .expect("for the pubsub layer")
        .expect_err("rejected")
}

fn pubsub_cond(e: &StanzaError) -> Option<String> {
    e.other.as_ref().map(|o| o.name().to_owned())
}

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

#[test]
fn example_9_disco_nodes() {
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='nodes1'>
  <query xmlns='http://jabber.org/protocol/disco#items'/>
</iq>");
    assert_eq!(r, Request::DiscoNodes);
}

#[test]
fn example_11_and_15_disco_node() {
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='info2'>
  <query xmlns='http://jabber.org/protocol/disco#info' node='blogs'/>
</iq>");
    assert_eq!(
        r,
        Request::NodeMetadata {
            node: "blogs".into()
        }
    );
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items1'>
  <query xmlns='http://jabber.org/protocol/disco#items' node='princely_musings'/>
</iq>");
    assert_eq!(
        r,
        Request::DiscoItems {
            node: "princely_musings".into()
        }
    );
}

#[test]
fn not_for_pubsub() {
    let (k, p) = iq_payload(
        "<iq type='get' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert!(parse_request(k, &p, &from()).is_none());
    let (k, p) = iq_payload("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert!(parse_request(k, &p, &from()).is_none());
}

#[test]
fn examples_16_20_22_26_entity_lists() {
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='subscriptions1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<subscriptions/>
  </pubsub>
</iq>");
    assert_eq!(r, Request::Subscriptions { node: None });
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='subscriptions2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<subscriptions node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Subscriptions {
            node: Some("princely_musings".into())
        }
    );
    let r = req(
        "<iq type='get' from='francisco@denmark.lit' to='pubsub.shakespeare.lit' id='affil1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<affiliations/>
  </pubsub>
</iq>",
    );
    assert_eq!(r, Request::Affiliations { node: None });
    let r = req(
        "<iq type='get' from='francisco@denmark.lit' to='pubsub.shakespeare.lit' id='affil2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<affiliations node='princely_musings'/>
  </pubsub>
</iq>",
    );
    assert_eq!(
        r,
        Request::Affiliations {
            node: Some("princely_musings".into())
        }
    );
}

#[test]
fn example_28_subscribe() {
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='sub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<subscribe
    node='princely_musings'
    jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Subscribe {
            node: "princely_musings".into(),
            jid: jid("francisco@denmark.lit"),
            options: None
        }
    );
}

#[test]
fn example_67_subscribe_and_configure() {
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='sub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<subscribe node='princely_musings' jid='francisco@denmark.lit'/>
<options>
  <x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE' type='hidden'>
      <value>http://jabber.org/protocol/pubsub#subscribe_options</value>
    </field>
    <field var='pubsub#deliver'><value>1</value></field>
    <field var='pubsub#digest'><value>0</value></field>
    <field var='pubsub#include_body'><value>false</value></field>
    <field var='pubsub#show-values'>
      <value>chat</value>
      <value>online</value>
      <value>away</value>
    </field>
  </x>
</options>
  </pubsub>
</iq>");
    let Request::Subscribe {
        node,
        jid: j,
        options: Some(o),
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(node, "princely_musings");
    assert_eq!(j, jid("francisco@denmark.lit"));
    assert_eq!(o.deliver, Some(true));
    assert_eq!(
        o.show_values,
        Some(vec![Show::Chat, Show::Online, Show::Away])
    );
}

#[test]
fn example_47_unsubscribe_and_subid() {
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='unsub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
 <unsubscribe
     node='princely_musings'
     jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Unsubscribe {
            node: "princely_musings".into(),
            jid: jid("francisco@denmark.lit"),
            subid: None
        }
    );
    let r = req("<iq type='set' id='u'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <unsubscribe node='n' jid='francisco@denmark.lit' subid='ba49252aaa4f5d320c24d3766f0bdcade78c78d3'/></pubsub></iq>");
    let Request::Unsubscribe { subid, .. } = r else {
        panic!()
    };
    assert_eq!(
        subid.as_deref(),
        Some("ba49252aaa4f5d320c24d3766f0bdcade78c78d3")
    );
}

#[test]
fn examples_55_64_options() {
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='options1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<options node='princely_musings' jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::GetOptions {
            node: "princely_musings".into(),
            jid: jid("francisco@denmark.lit"),
            subid: None
        }
    );
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='options2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<options node='princely_musings' jid='francisco@denmark.lit'>
  <x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE' type='hidden'>
      <value>http://jabber.org/protocol/pubsub#subscribe_options</value>
    </field>
    <field var='pubsub#deliver'><value>1</value></field>
    <field var='pubsub#digest'><value>0</value></field>
    <field var='pubsub#include_body'><value>false</value></field>
    <field var='pubsub#show-values'>
      <value>chat</value>
      <value>online</value>
      <value>away</value>
    </field>
  </x>
</options>
  </pubsub>
</iq>");
    let Request::SetOptions { options, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(options.include_body, Some(false));
}

#[test]
fn example_59_options_without_jid() {
    let e = error("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='options1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<options node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(e.defined_condition, C::BadRequest);
    assert_eq!(pubsub_cond(&e).as_deref(), Some("jid-required"));
}

#[test]
fn example_66_invalid_options() {
    let e = error(
        "<iq type='set' id='o'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <options node='n' jid='francisco@denmark.lit'><x xmlns='jabber:x:data' type='submit'>\
        <field var='pubsub#deliver'><value>perhaps</value></field></x></options></pubsub></iq>",
    );
    assert_eq!(e.defined_condition, C::BadRequest);
    assert_eq!(pubsub_cond(&e).as_deref(), Some("invalid-options"));
}

#[test]
fn examples_69_70_default_options() {
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='def1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<default node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::DefaultOptions {
            node: Some("princely_musings".into())
        }
    );
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='def2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<default/>
  </pubsub>
</iq>");
    assert_eq!(r, Request::DefaultOptions { node: None });
}

#[test]
fn examples_74_78_80_items() {
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<items node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Items {
            node: "princely_musings".into(),
            max_items: None,
            ids: vec![],
            subid: None
        }
    );
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items3'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<items node='princely_musings'>
  <item id='368866411b877c30064a5f62b917cffe'/>
  <item id='4e30f35051b7b8b42abe083742187228'/>
</items>
  </pubsub>
</iq>");
    let Request::Items { ids, .. } = r else {
        panic!()
    };
    assert_eq!(
        ids,
        [
            "368866411b877c30064a5f62b917cffe",
            "4e30f35051b7b8b42abe083742187228"
        ]
    );
    let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<items node='princely_musings' max_items='2'/>
  </pubsub>
</iq>");
    let Request::Items { max_items, .. } = r else {
        panic!()
    };
    assert_eq!(max_items, Some(2));
    let e = error(
        "<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <items node='n' max_items='x'/></pubsub></iq>",
    );
    assert_eq!(e.defined_condition, C::BadRequest);
}

#[test]
fn xep0059_paged_items_and_disco() {
    let r = req(
        "<iq type='get' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <items node='princely_musings' max_items='5'/>\
        <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>x</after></set>\
        </pubsub></iq>",
    );
    assert_eq!(
        r,
        Request::Page {
            list: PagedList::Items {
                node: "princely_musings".into(),
                subid: None
            },
            rsm: RsmQuery {
                max: Some(5),
                after: Some("x".into()),
                before: None,
                index: None
            }
        }
    );
    // An empty <before/> is the last page, not "no before".
    let r = req(
        "<iq type='get' id='p2'><query xmlns='http://jabber.org/protocol/disco#items' node='n'>\
        <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set></query></iq>",
    );
    assert_eq!(
        r,
        Request::Page {
            list: PagedList::ItemIds { node: "n".into() },
            rsm: RsmQuery {
                max: Some(2),
                before: Some(String::new()),
                ..RsmQuery::default()
            }
        }
    );
    let r = req(
        "<iq type='get' id='p3'><query xmlns='http://jabber.org/protocol/disco#items'>\
        <set xmlns='http://jabber.org/protocol/rsm'><index>4</index></set></query></iq>",
    );
    assert_eq!(
        r,
        Request::Page {
            list: PagedList::Nodes,
            rsm: RsmQuery {
                index: Some(4),
                ..RsmQuery::default()
            }
        }
    );
    // Given ItemIDs are not paged.
    let r = req(
        "<iq type='get' id='p4'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <items node='n'><item id='a'/></items>\
        <set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></pubsub></iq>",
    );
    assert!(matches!(r, Request::Items { .. }));
    for bad in [
        "<max>-1</max>",
        "<max>many</max>",
        "<index>x</index>",
        "<after/>",
    ] {
        let e = error(&format!(
            "<iq type='get' id='p5'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <items node='n'/><set xmlns='http://jabber.org/protocol/rsm'>{bad}</set>\
            </pubsub></iq>"
        ));
        assert_eq!(e.defined_condition, C::BadRequest, "{bad}");
    }
}

fn message(xml: &str) -> Message {
    let e: Element = xml
        .replace("<message", "<message xmlns='jabber:component:accept'")
        .parse()
        .unwrap();
    Message::try_from(e).unwrap()
}

#[test]
fn s8_6_examples_190_192_194_authorization_answers() {
    let form = |type_: &str, allow: &str| {
        format!(
            "<message from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='approve1'>\
            <x xmlns='jabber:x:data' type='{type_}'>\
            <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>\
            <field var='pubsub#subid'><value>123-abc</value></field>\
            <field var='pubsub#node'><value>princely_musings</value></field>\
            <field var='pubsub#subscriber_jid'><value>horatio@denmark.lit</value></field>\
            {allow}</x></message>"
        )
    };
    let allow = |v: &str| format!("<field var='pubsub#allow'><value>{v}</value></field>");
    let r = parse_message(&message(&form("submit", &allow("true"))), &from())
        .unwrap()
        .unwrap();
    assert_eq!(
        r,
        Request::AuthorizeSubscription {
            node: "princely_musings".into(),
            jid: jid("horatio@denmark.lit"),
            subid: Some("123-abc".into()),
            allow: true
        }
    );
    let r = parse_message(&message(&form("submit", &allow("0"))), &from())
        .unwrap()
        .unwrap();
    assert!(matches!(
        r,
        Request::AuthorizeSubscription { allow: false, .. }
    ));
    // Example 194: a cancelled form leaves the request pending: nothing to do.
    let cancel = "<message from='hamlet@denmark.lit/elsinore' id='approve1'>\
        <x xmlns='jabber:x:data' type='cancel'>\
        <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>\
        </x></message>";
    assert!(parse_message(&message(cancel), &from()).is_none());
    // Malformed answers are errors, not panics; other messages are not requests.
    assert!(parse_message(&message(&form("submit", "")), &from())
        .unwrap()
        .is_err());
    assert!(
        parse_message(&message(&form("submit", &allow("maybe"))), &from())
            .unwrap()
            .is_err()
    );
    assert!(parse_message(&message("<message><body>hi</body></message>"), &from()).is_none());
    let other_form = "<message><x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE' type='hidden'><value>urn:other</value></field></x></message>";
    assert!(parse_message(&message(other_form), &from()).is_none());
}

#[test]
fn s8_7_get_pending_command() {
    let r = req(
        "<iq type='set' id='pending1'><command xmlns='http://jabber.org/protocol/commands' \
        node='http://jabber.org/protocol/pubsub#get-pending' action='execute'/></iq>",
    );
    assert_eq!(r, Request::PendingNodes);
    let r = req("<iq type='set' id='pending2'><command xmlns='http://jabber.org/protocol/commands' \
        sessionid='pubsub-get-pending' node='http://jabber.org/protocol/pubsub#get-pending' action='execute'>\
        <x xmlns='jabber:x:data' type='submit'><field var='pubsub#node'><value>princely_musings</value></field></x>\
        </command></iq>");
    assert_eq!(
        r,
        Request::GetPending {
            node: "princely_musings".into()
        }
    );
    let e = error("<iq type='set' id='c'><command xmlns='http://jabber.org/protocol/commands' node='urn:nope'/></iq>");
    assert_eq!(e.defined_condition, C::ItemNotFound);
    let e = error(
        "<iq type='get' id='c'><command xmlns='http://jabber.org/protocol/commands' \
        node='http://jabber.org/protocol/pubsub#get-pending'/></iq>",
    );
    assert_eq!(e.defined_condition, C::BadRequest);
    let e = error("<iq type='set' id='c'><command xmlns='http://jabber.org/protocol/commands' \
        node='http://jabber.org/protocol/pubsub#get-pending'><x xmlns='jabber:x:data' type='submit'/></command></iq>");
    assert_eq!(e.defined_condition, C::BadRequest);
}

#[test]
fn examples_96_97_publish() {
    let r = req("<iq type='set' from='hamlet@denmark.lit/blogbot' to='pubsub.shakespeare.lit' id='publish1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<publish node='princely_musings'>
  <item id='bnd81g37d61f49fgn581'>
    <entry xmlns='http://www.w3.org/2005/Atom'>
      <title>Soliloquy</title>
      <summary>
To be, or not to be: that is the question
      </summary>
      <id>tag:denmark.lit,2003:entry-32397</id>
    </entry>
  </item>
</publish>
  </pubsub>
</iq>");
    let Request::Publish {
        node,
        item: Some(item),
        options: None,
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(node, "princely_musings");
    assert_eq!(item.id.as_deref(), Some("bnd81g37d61f49fgn581"));
    let payload: Element = item.payload.unwrap().parse().unwrap();
    assert!(payload.is("entry", "http://www.w3.org/2005/Atom"));
    assert_eq!(
        payload
            .get_child("title", "http://www.w3.org/2005/Atom")
            .unwrap()
            .text(),
        "Soliloquy"
    );

    let r = req("<iq type='set' id='publish2'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <publish node='princely_musings'><item><entry xmlns='http://www.w3.org/2005/Atom'/></item></publish></pubsub></iq>");
    let Request::Publish {
        item: Some(item), ..
    } = r
    else {
        panic!()
    };
    assert_eq!(item.id, None);
    // No item at all (notification-only / transient) and an empty item.
    let r = req("<iq type='set' id='p3'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub></iq>");
    assert_eq!(
        r,
        Request::Publish {
            node: "n".into(),
            item: None,
            options: None
        }
    );
    let r = req("<iq type='set' id='p4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='a'/></publish></pubsub></iq>");
    let Request::Publish {
        item: Some(item), ..
    } = r
    else {
        panic!()
    };
    assert_eq!(item.payload, None);
}

#[test]
fn example_110_two_payloads() {
    let e = error("<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <publish node='n'><item id='a'><one xmlns='urn:a'/><two xmlns='urn:a'/></item></publish></pubsub></iq>");
    assert_eq!(e.defined_condition, C::BadRequest);
    assert_eq!(pubsub_cond(&e).as_deref(), Some("invalid-payload"));
    let e = error(
        "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <publish node='n'><item id='a'/><item id='b'/></publish></pubsub></iq>",
    );
    assert_eq!(e.defined_condition, C::BadRequest);
}

#[test]
fn example_114_publish_options() {
    let r = req(
        "<iq type='set' from='hamlet@denmark.lit/blogbot' to='pubsub.shakespeare.lit' id='pub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<publish node='princely_musings'>
  <item>
    <entry xmlns='http://www.w3.org/2005/Atom'>
      <title>Soliloquy</title>
    </entry>
  </item>
</publish>
<publish-options>
  <x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE' type='hidden'>
      <value>http://jabber.org/protocol/pubsub#publish-options</value>
    </field>
    <field var='pubsub#access_model'>
      <value>presence</value>
    </field>
  </x>
</publish-options>
  </pubsub>
</iq>",
    );
    let Request::Publish {
        options: Some(o), ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(o.access_model, Some(AccessModel::Presence));
}

#[test]
fn examples_115_121_122_retract() {
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='retract1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<retract node='princely_musings'>
  <item id='ae890ac52d0df67ed7cfdf51b644e901'/>
</retract>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Retract {
            node: "princely_musings".into(),
            ids: vec!["ae890ac52d0df67ed7cfdf51b644e901".into()],
            notify: false
        }
    );
    for n in ["true", "1"] {
        let r = req(&format!(
            "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <retract node='n' notify='{n}'><item id='a'/></retract></pubsub></iq>"
        ));
        let Request::Retract { notify, .. } = r else {
            panic!()
        };
        assert!(notify);
    }
    // Example 121: no node.
    let e = error("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='retract1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<retract>
  <item id='ae890ac52d0df67ed7cfdf51b644e901'/>
</retract>
  </pubsub>
</iq>");
    assert_eq!(pubsub_cond(&e).as_deref(), Some("nodeid-required"));
    // Example 122: no item id.
    let e = error(
        "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <retract node='princely_musings'><item/></retract></pubsub></iq>",
    );
    assert_eq!(pubsub_cond(&e).as_deref(), Some("item-required"));
    let e = error(
        "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <retract node='princely_musings'/></pubsub></iq>",
    );
    assert_eq!(pubsub_cond(&e).as_deref(), Some("item-required"));
}

#[test]
fn examples_125_131_137_create() {
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
<create node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Create {
            node: Some("princely_musings".into()),
            config: None
        }
    );
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create2'>
<pubsub xmlns='http://jabber.org/protocol/pubsub'>
  <create/>
</pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Create {
            node: None,
            config: None
        }
    );
    let r = req(
        "<iq type='set' id='c'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <create node='n'/><configure/></pubsub></iq>",
    );
    assert_eq!(
        r,
        Request::Create {
            node: Some("n".into()),
            config: None
        }
    );
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create2'>
<pubsub xmlns='http://jabber.org/protocol/pubsub'>
  <create node='princely_musings'/>
  <configure>
    <x xmlns='jabber:x:data' type='submit'>
      <field var='FORM_TYPE' type='hidden'>
        <value>http://jabber.org/protocol/pubsub#node_config</value>
      </field>
      <field var='pubsub#access_model'><value>whitelist</value></field>
    </x>
  </configure>
</pubsub>
</iq>");
    let Request::Create {
        config: Some(c), ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(c.access_model, Some(AccessModel::Whitelist));
    let e = error(
        "<iq type='set' id='c'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <create node='n'/><configure><x xmlns='jabber:x:data' type='submit'>\
        <field var='pubsub#max_items'><value>lots</value></field></x></configure></pubsub></iq>",
    );
    assert_eq!(e.defined_condition, C::NotAcceptable);
}

#[test]
fn examples_139_143_146_147_owner_configure() {
    let r = req("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<configure node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::GetConfig {
            node: "princely_musings".into()
        }
    );
    let e = error("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<configure/>
  </pubsub>
</iq>");
    assert_eq!(pubsub_cond(&e).as_deref(), Some("nodeid-required"));
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<configure node='princely_musings'>
  <x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE' type='hidden'>
      <value>http://jabber.org/protocol/pubsub#node_config</value>
    </field>
    <field var='pubsub#title'><value>Princely Musings (Atom)</value></field>
    <field var='pubsub#deliver_notifications'><value>1</value></field>
    <field var='pubsub#deliver_payloads'><value>1</value></field>
    <field var='pubsub#persist_items'><value>1</value></field>
    <field var='pubsub#max_items'><value>10</value></field>
    <field var='pubsub#item_expire'><value>604800</value></field>
    <field var='pubsub#access_model'><value>roster</value></field>
    <field var='pubsub#roster_groups_allowed'>
      <value>friends</value>
      <value>servants</value>
      <value>courtiers</value>
    </field>
    <field var='pubsub#publish_model'><value>publishers</value></field>
    <field var='pubsub#purge_offline'><value>0</value></field>
    <field var='pubsub#send_last_published_item'><value>never</value></field>
    <field var='pubsub#presence_based_delivery'><value>false</value></field>
    <field var='pubsub#notification_type'><value>headline</value></field>
    <field var='pubsub#notify_config'><value>0</value></field>
    <field var='pubsub#notify_delete'><value>0</value></field>
    <field var='pubsub#notify_retract'><value>0</value></field>
    <field var='pubsub#notify_sub'><value>0</value></field>
    <field var='pubsub#max_payload_size'><value>1028</value></field>
    <field var='pubsub#type'><value>http://www.w3.org/2005/Atom</value></field>
    <field var='pubsub#body_xslt'>
      <value>http://jabxslt.jabberstudio.org/atom_body.xslt</value>
    </field>
  </x>
</configure>
  </pubsub>
</iq>");
    let Request::SetConfig { node, config } = r else {
        panic!("{r:?}")
    };
    assert_eq!(node, "princely_musings");
    assert_eq!(config.access_model, Some(AccessModel::Roster));
    assert_eq!(config.max_items, Some(MaxItems::Count(10)));
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<configure node='princely_musings'>
  <x xmlns='jabber:x:data' type='cancel'/>
</configure>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::SetConfig {
            node: "princely_musings".into(),
            config: NodeConfigPatch::default()
        }
    );
}

#[test]
fn examples_152_157_158_163_owner() {
    let r = req(
        "<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='def1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<default/>
  </pubsub>
</iq>",
    );
    assert_eq!(
        r,
        Request::DefaultConfig {
            node_type: roost_nodes::NodeType::Leaf
        }
    );
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='delete1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<delete node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Delete {
            node: "princely_musings".into(),
            redirect: None
        }
    );
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='delete1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<delete node='princely_musings'>
  <redirect uri='xmpp:hamlet@denmark.lit?;node=blog'/>
</delete>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Delete {
            node: "princely_musings".into(),
            redirect: Some("xmpp:hamlet@denmark.lit?;node=blog".into())
        }
    );
    let r = req(
        "<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='purge1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<purge node='princely_musings'/>
  </pubsub>
</iq>",
    );
    assert_eq!(
        r,
        Request::Purge {
            node: "princely_musings".into()
        }
    );
    let e = error("<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='n'/></pubsub></iq>");
    assert_eq!(e.defined_condition, C::BadRequest);
}

#[test]
fn examples_184_189_owner_subscriptions() {
    let r = req("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='subman1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<subscriptions node='princely_musings'/>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::GetSubscriptions {
            node: "princely_musings".into()
        }
    );
    let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='subman2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<subscriptions node='princely_musings'>
  <subscription jid='bard@shakespeare.lit' subscription='subscribed'/>
</subscriptions>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::SetSubscriptions {
            node: "princely_musings".into(),
            changes: vec![SubscriptionChange {
                jid: jid("bard@shakespeare.lit"),
                subid: None,
                state: SubscriptionState::Subscribed
            }]
        }
    );
}

#[test]
fn examples_197_202_208_owner_affiliations() {
    let r = req(
        "<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='ent1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<affiliations node='princely_musings'/>
  </pubsub>
</iq>",
    );
    assert_eq!(
        r,
        Request::GetAffiliations {
            node: "princely_musings".into()
        }
    );
    let r = req(
        "<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='ent3'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
<affiliations node='princely_musings'>
  <affiliation jid='polonius@denmark.lit' affiliation='none'/>
  <affiliation jid='bard@shakespeare.lit' affiliation='publisher'/>
</affiliations>
  </pubsub>
</iq>",
    );
    assert_eq!(
        r,
        Request::SetAffiliations {
            node: "princely_musings".into(),
            changes: vec![
                ("polonius@denmark.lit".parse().unwrap(), Affiliation::None),
                (
                    "bard@shakespeare.lit".parse().unwrap(),
                    Affiliation::Publisher
                ),
            ]
        }
    );
    let e = error("<iq type='set' id='a'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
        <affiliations node='n'><affiliation jid='a@b' affiliation='king'/></affiliations></pubsub></iq>");
    assert_eq!(e.defined_condition, C::BadRequest);
    // The rows' JIDs get the XEP's conditions; any other element in the list is refused.
    for (row, cond, pubsub) in [
        (
            "<affiliation affiliation='member'/>",
            C::BadRequest,
            Some("jid-required"),
        ),
        (
            "<affiliation jid='@@' affiliation='member'/>",
            C::BadRequest,
            Some("invalid-jid"),
        ),
        ("<affiliation jid='a@b'/>", C::BadRequest, None),
        (
            "<affiliation jid='a@b' affiliation='member'/><subscription jid='a@b'/>",
            C::BadRequest,
            None,
        ),
    ] {
        let e = error(&format!(
            "<iq type='set' id='a'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <affiliations node='n'>{row}</affiliations></pubsub></iq>"
        ));
        assert_eq!(e.defined_condition, cond, "{row}");
        assert_eq!(pubsub_cond(&e).as_deref(), pubsub, "{row}");
    }
}

#[test]
fn malformed_never_panics() {
    for (kind, xml) in [
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node=''/></pubsub>"),
        ("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='@@'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='a@b'/><bogus/></pubsub>"),
        ("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='a'/><create node='b'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><frobnicate/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><x xmlns='urn:other'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n' notify='maybe'><item id='a'/></retract></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><options node='n' jid='a@b'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><options node='n' jid='a@b'><x xmlns='jabber:x:data'/></options></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'/>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete/></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='n'><subscription jid='a@b' subscription='maybe'/></subscriptions></pubsub>"),
        ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'><affiliation affiliation='owner'/></affiliations></pubsub>"),
        ("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><wat/></pubsub>"),
        ("set", "<query xmlns='http://jabber.org/protocol/disco#items'/>"),
    ] {
        let kind = if kind == "get" { IqKind::Get } else { IqKind::Set };
        let p: Element = xml.parse().unwrap();
        match parse_request(kind, &p, &from()) {
            Some(Err(_)) => {}
            other => panic!("{xml}: {other:?}"),
        }
    }
}

#[test]
fn unknown_verbs_are_unsupported() {
    let p: Element =
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><frobnicate node='n'/></pubsub>"
            .parse()
            .unwrap();
    let e = parse_request(IqKind::Set, &p, &from())
        .unwrap()
        .unwrap_err();
    assert_eq!(e.defined_condition, C::FeatureNotImplemented);
    assert_eq!(pubsub_cond(&e).as_deref(), Some("unsupported"));
}

#[test]
fn xep0248_examples_47_52_61_collections() {
    let r = req(
        "<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='def1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <default type='collection'/>
  </pubsub>
</iq>",
    );
    assert_eq!(
        r,
        Request::DefaultConfig {
            node_type: roost_nodes::NodeType::Collection
        }
    );
    let e = error(
        "<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='def1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><default type='tree'/></pubsub>
</iq>",
    );
    assert_eq!(e.defined_condition, C::BadRequest);
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='assoc1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <collection node='some-collection'>
      <associate node='new-child-node'/>
    </collection>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Associate {
            collection: "some-collection".into(),
            node: "new-child-node".into()
        }
    );
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='dissoc1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <collection node='some-collection'>
      <dissociate node='old-child-node'/>
    </collection>
  </pubsub>
</iq>");
    assert_eq!(
        r,
        Request::Dissociate {
            collection: "some-collection".into(),
            node: "old-child-node".into()
        }
    );
    // Neither associate nor dissociate: bad-request.
    let e = error(
        "<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='a2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><collection node='c'/></pubsub>
</iq>",
    );
    assert_eq!(e.defined_condition, C::BadRequest);
}

#[test]
fn xep0248_example_62_subscribing_to_the_root() {
    let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='root1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <subscribe jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
    let Request::Subscribe { node, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(node, "");
}
