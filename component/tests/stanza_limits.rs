//! The stanza limits on a real link: a fake XEP-0114 server sends stanzas beyond the limits
//! followed by an ordinary one, through the reader Roost uses in production.

use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use minidom::Element;
use roost_component::config::Cli;
use roost_component::guard::{self, Exceeded, StanzaLimits};
use roost_component::roost::Roost;
use roost_component::{link, session, Config};
use roost_nodes::{MemStore, Service};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "jabber:component:accept";

fn iq(id: &str, type_: &str, payload: &str) -> String {
    format!("<iq type='{type_}' id='{id}' from='alice@localhost/r' to='pubsub.localhost'>{payload}</iq>")
}

fn publish(id: &str, payload: &str) -> String {
    iq(
        id,
        "set",
        &format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'>\
             <item id='i'>{payload}</item></publish></pubsub>"
        ),
    )
}

fn deep(levels: usize) -> String {
    publish(
        "deep",
        &format!(
            "<a xmlns='urn:x'>{}{}</a>",
            "<a>".repeat(levels),
            "</a>".repeat(levels)
        ),
    )
}

fn ping(id: &str) -> String {
    iq(id, "get", "<ping xmlns='urn:xmpp:ping'/>")
}

/// Read from `tcp` until `buf` holds `needle`.
async fn read_until(tcp: &mut TcpStream, buf: &mut Vec<u8>, needle: &str) {
    while !String::from_utf8_lossy(buf).contains(needle) {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the component closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Accept the component, complete its handshake, and return the connection.
async fn accept(listener: &TcpListener) -> TcpStream {
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    read_until(&mut tcp, &mut buf, "<stream:stream").await;
    tcp.write_all(
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS}' \
             xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='pubsub.localhost'>"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    read_until(&mut tcp, &mut buf, "</handshake>").await;
    tcp.write_all(b"<handshake/>").await.unwrap();
    tcp
}

#[tokio::test]
async fn the_reader_refuses_a_deep_stanza_before_building_it_and_reads_on() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stanza = deep(10_000);
    let sent = stanza.len() as u64;
    let server = async {
        let mut tcp = accept(&listener).await;
        tcp.write_all(format!("{stanza}{}", ping("next")).as_bytes())
            .await
            .unwrap();
        tcp
    };
    let client = link::connect(
        &addr,
        "pubsub.localhost",
        "secret",
        Duration::from_secs(60),
        StanzaLimits::default(),
    );
    let (_tcp, connected) = tokio::join!(server, client);
    let (mut link, _writer) = connected.unwrap();

    let el = link.next().await.unwrap().unwrap();
    assert_eq!(el.attr("id"), Some("deep"));
    assert_eq!(guard::limit_of(&el), Some(Exceeded::Depth(128)));
    // The tree was never built: the stanza holds only the marker...
    assert_eq!(el.children().count(), 1);
    // ... and the XML parser saw a few hundred bytes of the 70 000 sent.
    let stats = link.get_stream().get_ref().stats();
    assert_eq!(stats.stanzas_cut, 1);
    assert!(
        stats.bytes_in - stats.bytes_out >= sent - 512,
        "{stats:?}, {sent} bytes sent"
    );

    let next = link.next().await.unwrap().unwrap();
    assert_eq!(next.attr("id"), Some("next"));
    assert_eq!(next.children().count(), 1);
}

/// The replies the component sent, once every one of `ids` has been answered.
async fn replies<R: AsyncRead + Unpin>(rd: &mut R, ids: &[&str]) -> Vec<Element> {
    let mut buf = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&buf);
        if let Ok(all) = format!("<r xmlns='{NS}'>{text}</r>").parse::<Element>() {
            let got: Vec<Element> = all.children().cloned().collect();
            if ids
                .iter()
                .all(|id| got.iter().any(|e| e.attr("id") == Some(id)))
            {
                return got;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = rd.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the component closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn condition(reply: &Element) -> Option<String> {
    let error = reply.get_child("error", NS)?;
    error.children().next().map(|c| c.name().to_owned())
}

#[tokio::test]
async fn the_service_answers_policy_violation_and_keeps_the_link() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cfg = Config::resolve(
        Cli::try_parse_from([
            "roost",
            "--server",
            &addr,
            "--jid",
            "pubsub.localhost",
            "--secret",
            "s",
        ])
        .unwrap(),
    )
    .unwrap();
    let mut roost = Roost::new(
        Service::open(MemStore::default(), cfg.policy.clone()).unwrap(),
        &cfg,
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // No reload is sent; the sender must live until the session ends.
    let (_reload, reloads) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let large = publish(
        "large",
        &format!("<b xmlns='urn:x'>{}</b>", "z".repeat(2 << 20)),
    );
    let server = async {
        let mut tcp = accept(&listener).await;
        let stanzas = format!("{}{large}{}", deep(10_000), ping("next"));
        let (mut rd, mut wr) = tcp.split();
        let write = async { wr.write_all(stanzas.as_bytes()).await.unwrap() };
        // Replies are read while the large stanza is still being written.
        let (_, got) = tokio::join!(write, replies(&mut rd, &["deep", "large", "next"]));
        stop.send(true).unwrap();
        got
    };
    let (got, ran) = tokio::join!(server, session::run(&cfg, &mut roost, stopped, reloads));
    ran.unwrap();
    let by_id = |id: &str| got.iter().find(|e| e.attr("id") == Some(id)).unwrap();
    for id in ["deep", "large"] {
        let r = by_id(id);
        assert_eq!(r.attr("type"), Some("error"), "{id}: {r:?}");
        assert_eq!(condition(r).as_deref(), Some("policy-violation"), "{id}");
        assert_eq!(r.attr("to"), Some("alice@localhost/r"));
    }
    assert_eq!(by_id("next").attr("type"), Some("result"));
}
