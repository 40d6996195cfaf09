//! The publish read straight from the element against the typed parse: the same request
//! for every shape it takes, and the typed parse's answer for every shape it leaves.

use super::*;

const PS: &str = "http://jabber.org/protocol/pubsub";

/// `<pubsub/>` around `inner`, parsed as the component receives it: tokio-xmpp builds
/// elements from xso's events, which keep no namespace prefixes (minidom's own parser
/// keeps them, and they would come back in the plain reading's serialization).
fn pubsub(inner: &str) -> Element {
    xso::from_bytes(format!("<pubsub xmlns='{PS}'>{inner}</pubsub>").as_bytes())
        .expect("test input parses")
}

/// What `parse` answers for `inner` equals what the typed parse answers (errors compared by
/// their condition and text); returns whether the plain reading took it.
fn agrees(kind: IqKind, inner: &str) -> bool {
    let p = pubsub(inner);
    let typed = parse_typed(kind, &p);
    let fast = parse(kind, &p);
    match (&fast, &typed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{inner}"),
        (Err(a), Err(b)) => {
            assert_eq!(a.defined_condition, b.defined_condition, "{inner}");
            assert_eq!(a.texts, b.texts, "{inner}");
        }
        _ => panic!("{inner}: plain {fast:?}, typed {typed:?}"),
    }
    plain_publish(kind, &p).is_some()
}

#[test]
fn the_usual_publish_shapes_are_read_plainly_and_as_the_typed_parse_reads_them() {
    for inner in [
        "<publish node='n'><item id='a'><entry xmlns='urn:x'>line</entry></item></publish>",
        // No id, an empty id (the service picks one).
        "<publish node='n'><item><entry xmlns='urn:x'/></item></publish>",
        "<publish node='n'><item id=''><entry xmlns='urn:x'/></item></publish>",
        // Pretty-printed, as in the XEP's examples.
        "\n  <publish node='n'>\n    <item id='a'>\n      <entry xmlns='http://www.w3.org/2005/Atom'>
        <title>T</title>\n      </entry>\n    </item>\n  </publish>\n",
        // Escapes, prefixes, nested namespaces, xml:lang and attributes in the payload.
        "<publish node='n'><item id='a'><p:entry xmlns:p='urn:x' xml:lang='en' k='&lt;&amp;&apos;'>\
         a &lt; b &amp;&amp; c<q xmlns='urn:y'><r/></q><p:s>t</p:s></p:entry></item></publish>",
        "<publish node='n/with spaces &amp; more'><item id='é &amp; ü'><x xmlns='urn:x'/></item></publish>",
    ] {
        assert!(agrees(IqKind::Set, inner), "not read plainly: {inner}");
    }
}

#[test]
fn every_other_shape_goes_to_the_typed_parse() {
    for inner in [
        // Not one item with one payload.
        "<publish node='n'/>",
        "<publish node='n'><item id='a'/></publish>",
        "<publish node='n'><item id='a'><one xmlns='urn:a'/><two xmlns='urn:a'/></item></publish>",
        "<publish node='n'><item id='a'><x xmlns='urn:x'/></item><item id='b'><x xmlns='urn:x'/></item></publish>",
        // Text beside the payload, attributes the plain reading does not read.
        "<publish node='n'><item id='a'>text<x xmlns='urn:x'/></item></publish>",
        "<publish node='n'><item id='a' publisher='a@b'><x xmlns='urn:x'/></item></publish>",
        "<publish node='n'><item publisher='a@b'><x xmlns='urn:x'/></item></publish>",
        "<publish node='n' extra='1'><item id='a'><x xmlns='urn:x'/></item></publish>",
        "<publish extra='1'><item id='a'><x xmlns='urn:x'/></item></publish>",
        "<publish node='n' xml:lang='en'><item id='a'><x xmlns='urn:x'/></item></publish>",
        // No node, an empty one.
        "<publish><item id='a'><x xmlns='urn:x'/></item></publish>",
        "<publish node=''><item id='a'><x xmlns='urn:x'/></item></publish>",
        // Publish options beside it; another verb; the wrong namespaces.
        "<publish node='n'><item id='a'><x xmlns='urn:x'/></item></publish>\
         <publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         </x></publish-options>",
        "<retract node='n'><item id='a'><x xmlns='urn:x'/></item></retract>",
        "<publish xmlns='urn:other' node='n'><item id='a'><x xmlns='urn:x'/></item></publish>",
        "<publish node='n'><item xmlns='urn:other' id='a'><x xmlns='urn:x'/></item></publish>",
        "<publish node='n'><thing id='a'><x xmlns='urn:x'/></thing></publish>",
        "text<publish node='n'><item id='a'><x xmlns='urn:x'/></item></publish>",
    ] {
        assert!(!agrees(IqKind::Set, inner), "read plainly: {inner}");
    }
    // A publish is a set.
    let usual = "<publish node='n'><item id='a'><x xmlns='urn:x'/></item></publish>";
    assert!(!agrees(IqKind::Get, usual));
    // Attributes on <pubsub/> itself.
    let p: Element =
        xso::from_bytes(format!("<pubsub xmlns='{PS}' a='1'>{usual}</pubsub>").as_bytes()).unwrap();
    assert!(plain_publish(IqKind::Set, &p).is_none());
}
