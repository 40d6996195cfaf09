//! XEP-0313 `<result/>` as a node's archive sends it: the forwarded copy is a `jabber:client`
//! message. xmpp-parsers 0.23's `mam::Result_` wraps its typed `Message`, which this crate
//! (built with xmpp-parsers' `component` feature) writes in `jabber:component:accept`.

use minidom::Element;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::ns;
use xso::{AsXml, FromXml};

/// `<result/>`: one archived message answering a query.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::MAM, name = "result")]
pub struct ArchiveResult {
    /// The archive's id of the message.
    #[xml(attribute)]
    pub id: String,
    /// The query it answers, when the query named itself.
    #[xml(attribute(default))]
    pub queryid: Option<String>,
    /// The message, with when it was archived.
    #[xml(child)]
    pub forwarded: Forwarded,
}

/// XEP-0297 `<forwarded/>` of a `jabber:client` message.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::FORWARD, name = "forwarded")]
pub struct Forwarded {
    /// When the message was archived.
    #[xml(child(default))]
    pub delay: Option<Delay>,
    /// The message.
    #[xml(child)]
    pub message: ClientMessage,
}

/// A `jabber:client` message, as archives forward it.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = ns::JABBER_CLIENT, name = "message")]
pub struct ClientMessage {
    /// The sender.
    #[xml(attribute(default))]
    pub from: Option<String>,
    /// The recipient.
    #[xml(attribute(default))]
    pub to: Option<String>,
    /// The message id.
    #[xml(attribute(default))]
    pub id: Option<String>,
    /// The message type.
    #[xml(attribute(default, name = "type"))]
    pub type_: Option<String>,
    /// Its payloads (a pubsub `<event/>` in a node's archive).
    #[xml(element(n = ..))]
    pub payloads: Vec<Element>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::{example, round_trip};

    #[test]
    fn xep0313_example_matching_message() {
        // The example's stamp is `…Z`; xmpp-parsers' `Delay` writes the same instant as
        // `+00:00`, so that is how it is given here.
        let body = example("<body xmlns='jabber:client'>Hail to thee</body>");
        round_trip(
            "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482-98726-73623'>
    <forwarded xmlns='urn:xmpp:forward:0'>
      <delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25+00:00'/>
      <message xmlns='jabber:client' from='witch@shakespeare.lit' to='macbeth@shakespeare.lit'>
        <body>Hail to thee</body>
      </message>
    </forwarded>
  </result>",
            &ArchiveResult {
                queryid: Some("f27".into()),
                id: "28482-98726-73623".into(),
                forwarded: Forwarded {
                    delay: Some(Delay {
                        from: None,
                        stamp: "2010-07-10T23:08:25Z".parse().unwrap(),
                        data: None,
                    }),
                    message: ClientMessage {
                        from: Some("witch@shakespeare.lit".into()),
                        to: Some("macbeth@shakespeare.lit".into()),
                        id: None,
                        type_: None,
                        payloads: vec![body],
                    },
                },
            },
        );
    }
}
