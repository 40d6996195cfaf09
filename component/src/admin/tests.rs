//! The admin commands through the service, as a client runs them.

use clap::Parser;
use minidom::Element;
use roost_nodes::{MemStore, Service};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::pubsub::ADMIN_COMMANDS;
use crate::roost::Roost;
use crate::xml::commands::{Command, Status};

fn roost() -> Roost<MemStore> {
    let cfg = crate::Config::resolve(
        crate::config::Cli::try_parse_from([
            "roost",
            "--jid",
            "pubsub.localhost",
            "--secret",
            "s",
            "--admins",
            "root@localhost",
            "--rate-limit",
            "0",
        ])
        .unwrap(),
    )
    .unwrap();
    Roost::new(
        Service::open(MemStore::default(), cfg.policy.clone()).unwrap(),
        &cfg,
    )
}

fn send(r: &mut Roost<MemStore>, from: &str, inner: &str) -> Vec<Stanza> {
    let e: Element = format!(
        "<iq xmlns='jabber:component:accept' type='set' id='c' from='{from}' \
         to='pubsub.localhost'>{inner}</iq>"
    )
    .parse()
    .unwrap();
    r.exchange(Stanza::Iq(Iq::try_from(e).unwrap()))
}

fn pubsub(r: &mut Roost<MemStore>, from: &str, body: &str) {
    let out = send(
        r,
        from,
        &format!("<pubsub xmlns='http://jabber.org/protocol/pubsub'>{body}</pubsub>"),
    );
    assert!(matches!(out[0], Stanza::Iq(Iq::Result { .. })), "{out:?}");
}

/// Run `command` (a node of [`ADMIN_COMMANDS`] by index) as `from` with `extra` inside.
fn run(r: &mut Roost<MemStore>, from: &str, which: usize, attrs: &str, extra: &str) -> Vec<Stanza> {
    let node = ADMIN_COMMANDS[which].0;
    send(
        r,
        from,
        &format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='{node}' {attrs}>{extra}</command>"
        ),
    )
}

fn result(out: &[Stanza]) -> Command {
    match &out[0] {
        Stanza::Iq(Iq::Result {
            payload: Some(p), ..
        }) => Command::try_from(p.clone()).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn values(form: &DataForm, var: &str) -> Vec<String> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .map(|f| f.values.clone())
        .unwrap_or_default()
}

fn node_form(node: &str) -> String {
    format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>urn:roost:admin:0</value></field><field var='node'><value>{node}</value></field></x>"
    )
}

const ROOT: &str = "root@localhost/x";

fn setup() -> Roost<MemStore> {
    let mut r = roost();
    for n in ["a", "b", "c"] {
        pubsub(
            &mut r,
            "alice@localhost/r",
            &format!("<create node='{n}'/>"),
        );
    }
    // `a` tells its subscribers of a purge and of its deletion.
    let out = send(
        &mut r,
        "alice@localhost/r",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='a'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#node_config</value></field>\
         <field var='pubsub#notify_delete'><value>1</value></field>\
         <field var='pubsub#notify_retract'><value>1</value></field></x></configure></pubsub>",
    );
    assert!(matches!(out[0], Stanza::Iq(Iq::Result { .. })), "{out:?}");
    pubsub(
        &mut r,
        "bob@localhost/r",
        "<subscribe node='a' jid='bob@localhost/r'/>",
    );
    for id in ["1", "2"] {
        pubsub(
            &mut r,
            "alice@localhost/r",
            &format!("<publish node='a'><item id='{id}'><x xmlns='urn:x'/></item></publish>"),
        );
    }
    r
}

#[test]
fn non_admins_are_forbidden_every_command() {
    let mut r = setup();
    for which in 0..ADMIN_COMMANDS.len() {
        let out = run(&mut r, "alice@localhost/r", which, "action='execute'", "");
        match &out[0] {
            Stanza::Iq(Iq::Error { error, .. }) => {
                assert_eq!(error.defined_condition, DefinedCondition::Forbidden)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn list_nodes_pages_with_next() {
    let mut r = setup();
    let max =
        "<x xmlns='jabber:x:data' type='submit'><field var='max'><value>2</value></field></x>";
    let first = result(&run(&mut r, "root@localhost/x", 0, "action='execute'", max));
    assert_eq!(first.status, Some(Status::Executing));
    let form = first.form.unwrap();
    assert_eq!(values(&form, "nodes"), ["a", "b"]);
    assert_eq!(values(&form, "count"), ["3"]);
    let sid = first.sessionid.unwrap();
    let next = result(&run(
        &mut r,
        "root@localhost/x",
        0,
        &format!("action='next' sessionid='{sid}'"),
        "",
    ));
    assert_eq!(next.status, Some(Status::Completed));
    assert_eq!(values(&next.form.unwrap(), "nodes"), ["c"]);
}

#[test]
fn summary_subscribers_and_statistics() {
    let mut r = setup();
    // Without a node the command asks for one.
    let ask = result(&run(&mut r, "root@localhost/x", 1, "action='execute'", ""));
    assert_eq!(ask.status, Some(Status::Executing));
    assert!(ask
        .form
        .unwrap()
        .fields
        .iter()
        .any(|f| f.var.as_deref() == Some("node")));
    let sum = result(&run(
        &mut r,
        "root@localhost/x",
        1,
        "action='complete'",
        &node_form("a"),
    ));
    let form = sum.form.unwrap();
    assert_eq!(values(&form, "items"), ["2"]);
    assert_eq!(values(&form, "subscriptions"), ["1"]);
    assert_eq!(values(&form, "pubsub#owner"), ["alice@localhost"]);
    assert_eq!(values(&form, "pubsub#access_model"), ["open"]);
    let subs = result(&run(
        &mut r,
        "root@localhost/x",
        4,
        "action='complete'",
        &node_form("a"),
    ));
    let lines = values(&subs.form.unwrap(), "subscriptions");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("bob@localhost/r subscribed "),
        "{lines:?}"
    );
    let stats = result(&run(&mut r, "root@localhost/x", 5, "action='execute'", ""));
    let form = stats.form.unwrap();
    assert_eq!(values(&form, "nodes"), ["3"]);
    assert_eq!(values(&form, "items"), ["2"]);
    assert_eq!(values(&form, "publishes"), ["2"]);
    // Unknown node: the engine's item-not-found.
    let out = run(
        &mut r,
        "root@localhost/x",
        1,
        "action='complete'",
        &node_form("zz"),
    );
    assert!(matches!(&out[0], Stanza::Iq(Iq::Error { error, .. })
        if error.defined_condition == DefinedCondition::ItemNotFound));
}

#[test]
fn purge_and_delete_go_through_the_engine_and_notify() {
    let mut r = setup();
    let notified = |out: &[Stanza]| {
        out.iter().any(|s| {
            matches!(s, Stanza::Message(m)
                if m.to.as_ref().map(|t| t.to_string()).as_deref() == Some("bob@localhost/r"))
        })
    };
    let out = run(&mut r, ROOT, 3, "action='complete'", &node_form("a"));
    assert_eq!(result(&out).status, Some(Status::Completed));
    assert!(notified(&out), "the subscriber hears of the purge: {out:?}");
    assert_eq!(r.service_mut().node_stats("a").unwrap().items, 0);
    let out = run(&mut r, ROOT, 2, "action='complete'", &node_form("a"));
    assert_eq!(result(&out).status, Some(Status::Completed));
    assert!(notified(&out), "the subscriber hears of the deletion");
    assert!(r.service_mut().node_stats("a").is_none());
    assert_eq!(r.service_mut().stats().nodes, 2);
}

#[test]
fn requests_are_counted_by_kind_and_outcome() {
    use crate::metrics::{Kind, Outcome};
    let mut r = setup();
    run(&mut r, "alice@localhost/r", 5, "", "");
    let m = r.metrics().clone();
    assert_eq!(m.requests.get(Kind::Publish, Outcome::Ok), 2);
    assert_eq!(m.requests.get(Kind::Create, Outcome::Ok), 3);
    assert_eq!(
        m.requests
            .get(Kind::Admin, Outcome::Error(&DefinedCondition::Forbidden)),
        1
    );
    assert_eq!(m.publishes.get(), 2);
}
