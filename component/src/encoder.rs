//! [`StanzaEncoder`]: stanzas serialized as the component stream carries them, into a byte
//! buffer, so that a whole batch is assembled before it is written.

use minidom::rxml::writer::{Encoder, SimpleNamespaces, TrackNamespace};
use minidom::rxml::{self, NcName};
use xmpp_parsers::stanza::Stanza;

/// Serializes stanzas exactly as tokio-xmpp's `XmlStream` would on a component stream
/// (the stream namespace `jabber:component:accept` is the default and is not repeated on
/// each stanza), but into a caller's byte buffer, so that a whole batch can be assembled
/// first and written with one system call.
pub struct StanzaEncoder {
    enc: Encoder<SimpleNamespaces>,
}

impl Default for StanzaEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StanzaEncoder {
    /// An encoder positioned inside a `<stream:stream>` of `jabber:component:accept`.
    pub fn new() -> Self {
        let mut enc = Encoder::new();
        let stream = NcName::try_from("stream").expect("valid name");
        enc.ns_tracker_mut()
            .declare_fixed(Some(&stream), xmpp_parsers::ns::STREAM.into());
        enc.ns_tracker_mut()
            .declare_fixed(None, xmpp_parsers::ns::COMPONENT.into());
        // rxml encodes one document: open the stream's root (its bytes are discarded, the
        // real header was sent by tokio-xmpp) so that stanzas are encoded as its children.
        let mut scratch = Vec::new();
        let root = [
            rxml::Item::ElementHeadStart(xmpp_parsers::ns::STREAM.into(), &stream),
            rxml::Item::ElementHeadEnd,
        ];
        for item in root {
            enc.encode(item, &mut scratch)
                .expect("stream header encodes");
        }
        StanzaEncoder { enc }
    }

    /// Append a stanza's serialization to `out`, as [`StanzaEncoder::encode`] would: the
    /// stanza's own serializer is taken directly, because `Stanza`'s wraps it in a state
    /// machine that is copied at every step (4 % of Roost's CPU under publish load went to
    /// those copies).
    pub fn encode_stanza(&mut self, st: &Stanza, out: &mut Vec<u8>) -> Result<(), String> {
        match st {
            Stanza::Iq(iq) => self.encode(iq, out),
            Stanza::Message(m) => self.encode(m, out),
            Stanza::Presence(p) => self.encode(p, out),
        }
    }

    /// Append `xso`'s serialization to `out`. On failure `out` is left as it was.
    pub fn encode<T: xso::AsXml>(&mut self, xso: &T, out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        let r = (|| {
            for item in xso.as_xml_iter().map_err(|e| e.to_string())? {
                let item = item.map_err(|e| e.to_string())?;
                self.enc
                    .encode(item.as_rxml_item(), out)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })();
        if r.is_err() {
            out.truncate(start);
            // The encoder may be left inside an unfinished element: start afresh.
            *self = StanzaEncoder::new();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_writes_stanzas_in_the_stream_namespace_one_after_another() {
        use xmpp_parsers::iq::Iq;
        let mut enc = StanzaEncoder::new();
        let mut out = Vec::new();
        let result: Stanza = Iq::Result {
            from: Some("pubsub.localhost".parse().unwrap()),
            to: Some("a@localhost/r".parse().unwrap()),
            id: "1".into(),
            payload: None,
        }
        .into();
        enc.encode(&result, &mut out).unwrap();
        let ping: Stanza = Iq::Get {
            from: None,
            to: Some("localhost".parse().unwrap()),
            id: "2".into(),
            payload: xmpp_parsers::ping::Ping.into(),
        }
        .into();
        enc.encode(&ping, &mut out).unwrap();
        let mut direct = Vec::new();
        for st in [&result, &ping] {
            enc.encode_stanza(st, &mut direct).unwrap();
        }
        assert_eq!(direct, out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<iq type='result' from='pubsub.localhost' to='a@localhost/r' id='1'></iq>\
             <iq type='get' to='localhost' id='2'><ping xmlns='urn:xmpp:ping'></ping></iq>"
        );
    }
}
