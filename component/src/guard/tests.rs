use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
                      xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='c.localhost'>";

fn limits(max_depth: usize, max_bytes: usize) -> StanzaLimits {
    StanzaLimits {
        max_depth,
        max_bytes,
    }
}

/// `input` through a scanner in pieces of `piece` bytes.
fn scan(limits: StanzaLimits, input: &str, piece: usize) -> (String, GuardStats) {
    let mut s = Scanner::new(limits);
    let mut out = Vec::new();
    for chunk in input.as_bytes().chunks(piece) {
        s.feed(chunk, &mut out);
    }
    (String::from_utf8(out).unwrap(), s.stats())
}

fn nested(depth: usize) -> String {
    format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth))
}

#[test]
fn a_stream_within_the_limits_passes_unchanged_however_it_is_split() {
    let stream = format!(
        "{HEADER}\n  <handshake/><iq type='get' id='a>/b' from=\"x@y/z\"><ping xmlns='urn:xmpp:ping'/></iq> \
         <message id='m'><body>1 &lt; 2 &gt; 1 / 3 &amp; ]]&gt;</body><x xmlns='urn:x'>\
         <![CDATA[<not><a><tag>]]><!-- <c> --><?pi <d>?></x></message>\
         <stream:error><p:x xmlns:p='urn:p' a=\"'>\"/></stream:error></stream:stream>"
    );
    for piece in [1, 2, 3, 7, 64, stream.len()] {
        let (out, stats) = scan(limits(4, 1024), &stream, piece);
        assert_eq!(out, stream, "split every {piece} bytes");
        assert_eq!(stats.bytes_out, stream.len() as u64);
        assert_eq!(stats.stanzas_cut + stats.stanzas_dropped, 0);
    }
}

#[test]
fn a_stanza_deeper_than_the_limit_becomes_its_start_tag_and_a_marker() {
    let depth = 10_000;
    let deep = format!(
        "<iq type='set' id='deep' from='a@b/c'><x xmlns='urn:x'>{}</x></iq>",
        nested(depth)
    );
    let next = "<iq type='get' id='next' from='a@b/c'><ping xmlns='urn:xmpp:ping'/></iq>";
    let input = format!("{HEADER}{deep}{next}");
    for piece in [1, 5, 4096, input.len()] {
        let (out, stats) = scan(limits(128, 1 << 20), &input, piece);
        let cut = &out[HEADER.len()..out.len() - next.len()];
        assert!(out.starts_with(HEADER) && out.ends_with(next), "{out}");
        assert_eq!(
            cut,
            format!(
                "<iq type='set' id='deep' from='a@b/c'><depth xmlns='{}' max='128'/></iq>",
                marker_ns()
            )
        );
        let el: Element = format!("<r xmlns='jabber:component:accept'>{cut}</r>")
            .parse::<Element>()
            .unwrap()
            .children()
            .next()
            .unwrap()
            .clone();
        assert_eq!(limit_of(&el), Some(Exceeded::Depth(128)));
        assert_eq!(stats.stanzas_cut, 1);
        // The parser never sees the nested elements: far fewer bytes than the stanza.
        assert!(stats.bytes_out < 600, "{stats:?}");
        assert_eq!(stats.bytes_in, input.len() as u64);
    }
}

#[test]
fn the_depth_limit_counts_the_stanza_as_level_one() {
    // At most `max` levels, the stanza included; `<b/>` (empty) counts like any element.
    for (payload, cut) in [
        ("<a><b/></a>", false),
        ("<a><b><c/></b></a>", true),
        ("<a>text<b>more</b></a>", false),
    ] {
        let input = format!("{HEADER}<iq id='i'>{payload}</iq>");
        let (out, stats) = scan(limits(3, 1024), &input, 1);
        assert_eq!(stats.stanzas_cut == 1, cut, "{payload}: {out}");
    }
}

#[test]
fn a_stanza_over_the_size_limit_is_cut_and_one_whose_start_tag_is_over_is_dropped() {
    let big = format!(
        "<message id='m' from='a@b/c'><body>{}</body></message>",
        "z".repeat(5000)
    );
    let long_tag = format!("<message id='m' from='a@b/c' x='{}'/>", "y".repeat(5000));
    let next = "<presence id='p'/>";
    for piece in [1, 100, 100_000] {
        let (out, stats) = scan(limits(128, 4096), &format!("{HEADER}{big}{next}"), piece);
        assert_eq!(
            &out[HEADER.len()..],
            format!(
                "<message id='m' from='a@b/c'><size xmlns='{}' max='4096'/></message>{next}",
                marker_ns()
            )
        );
        assert_eq!(stats.stanzas_cut, 1);
        let (out, stats) = scan(
            limits(128, 4096),
            &format!("{HEADER}{long_tag}{next}"),
            piece,
        );
        assert_eq!(&out[HEADER.len()..], next);
        assert_eq!(stats.stanzas_dropped, 1);
    }
}

#[test]
fn the_limits_apply_to_each_stanza_afresh() {
    // A stanza just under the size limit, twice: neither is cut.
    let one = format!("<iq id='i'>{}</iq>", "z".repeat(4096 - 18));
    assert_eq!(one.len(), 4096 - 2);
    let input = format!("{HEADER}{one}{one}");
    let (out, stats) = scan(limits(2, 4096), &input, 333);
    assert_eq!(out, input);
    assert_eq!(stats.stanzas_cut, 0);
}

#[test]
fn a_forged_marker_is_not_taken_for_the_guards() {
    let forged: Element = "<iq xmlns='jabber:component:accept' id='f'>\
                           <depth xmlns='urn:x-roost:limit:0000000000000000' max='1'/></iq>"
        .parse()
        .unwrap();
    assert_eq!(limit_of(&forged), None);
    assert!(marker_ns().starts_with("urn:x-roost:limit:"));
}

#[tokio::test]
async fn guarded_reads_hand_over_only_what_the_scanner_released() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut peer, io) = tokio::io::duplex(64);
    let mut g = Guarded::new(io, limits(2, 1024));
    let writer = tokio::spawn(async move {
        peer.write_all(HEADER.as_bytes()).await.unwrap();
        peer.write_all(format!("<iq id='d'>{}</iq><iq id='n'/>", nested(50)).as_bytes())
            .await
            .unwrap();
    });
    let mut got = Vec::new();
    g.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    let got = String::from_utf8(got).unwrap();
    assert_eq!(
        &got[HEADER.len()..],
        format!(
            "<iq id='d'><depth xmlns='{}' max='2'/></iq><iq id='n'/>",
            marker_ns()
        )
    );
    assert_eq!(g.stats().stanzas_cut, 1);
}
