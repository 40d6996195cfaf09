//! Forms: XEP-0060 examples in, engine values out, and back.

use super::super::codec::NS_META_DATA;
use super::*;
use minidom::Element;
use roost_nodes::request::NodeMeta;
use roost_nodes::{
    Error, ItemReply, MaxItems, NodeConfig, NodeConfigPatch, NotificationType, PublishModel,
    SendLastPublished, Show, SubOptions, SubOptionsPatch,
};

fn parse_form(xml: &str) -> DataForm {
    DataForm::try_from(xml.parse::<Element>().unwrap()).unwrap()
}

/// A form as an owner's client sends it back: every field's values, type submit.
fn resubmit(form: &DataForm) -> DataForm {
    let mut f = form.clone();
    f.type_ = DataFormType::Submit;
    for field in &mut f.fields {
        field.options.clear();
        field.label = None;
    }
    // Through XML, as it would arrive.
    let e: Element = f.into();
    DataForm::try_from(e).unwrap()
}

fn sample_config() -> NodeConfig {
    NodeConfig {
        title: "Princely Musings (Atom)".into(),
        description: "Updates for Hamlet's Princely Musings weblog.".into(),
        payload_type: "http://www.w3.org/2005/Atom".into(),
        access_model: AccessModel::Whitelist,
        roster_groups_allowed: vec!["Family".into(), "Friends".into()],
        publish_model: PublishModel::Open,
        max_items: MaxItems::Max,
        persist_items: false,
        deliver_payloads: false,
        deliver_notifications: true,
        notify_config: true,
        notify_delete: true,
        notify_retract: true,
        notify_sub: true,
        presence_based_delivery: true,
        send_last_published_item: SendLastPublished::OnSubAndPresence,
        item_expire: Some(604_800),
        notification_type: NotificationType::Normal,
        itemreply: ItemReply::Publisher,
        max_payload_size: 1028,
        ..NodeConfig::default()
    }
}

fn apply(c: &NodeConfig, p: NodeConfigPatch) -> NodeConfig {
    let mut c = c.clone();
    macro_rules! set { ($($f:ident),*) => { $( if let Some(v) = p.$f { c.$f = v; } )* } }
    set!(
        title,
        description,
        payload_type,
        access_model,
        roster_groups_allowed,
        publish_model,
        max_items,
        persist_items,
        deliver_payloads,
        deliver_notifications,
        notify_config,
        notify_delete,
        notify_retract,
        notify_sub,
        presence_based_delivery,
        send_last_published_item,
        item_expire,
        notification_type,
        itemreply,
        max_payload_size
    );
    c
}

#[test]
fn node_config_round_trip() {
    for config in [NodeConfig::default(), sample_config()] {
        let form = node_config_form(&config, DataFormType::Form);
        assert_eq!(form.form_type(), Some(ns::PUBSUB_CONFIGURE));
        let patch = parse_node_config(&resubmit(&form)).unwrap();
        // Every field is in the form, so the patch alone rebuilds the configuration.
        assert_eq!(apply(&NodeConfig::default(), patch.clone()), config);
        assert_eq!(apply(&sample_config(), patch), config);
    }
}

#[test]
fn node_config_form_field_types() {
    let form = node_config_form(&NodeConfig::default(), DataFormType::Form);
    let get = |v: &str| {
        form.fields
            .iter()
            .find(|f| f.var.as_deref() == Some(v))
            .unwrap()
    };
    assert_eq!(get("pubsub#persist_items").type_, FieldType::Boolean);
    assert_eq!(get("pubsub#access_model").type_, FieldType::ListSingle);
    assert_eq!(get("pubsub#access_model").options.len(), 3);
    assert_eq!(get("pubsub#max_items").type_, FieldType::TextSingle);
    assert!(form
        .fields
        .iter()
        .all(|f| f.label.is_some() || f.var.as_deref() == Some("FORM_TYPE")));
}

#[test]
fn node_config_example_137() {
    // XEP-0060 example 137 (create and configure), the <x/> part.
    let form = parse_form(
        "<x xmlns='jabber:x:data' type='submit'>
      <field var='FORM_TYPE' type='hidden'>
        <value>http://jabber.org/protocol/pubsub#node_config</value>
      </field>
      <field var='pubsub#title'><value>Princely Musings (Atom)</value></field>
      <field var='pubsub#deliver_notifications'><value>1</value></field>
      <field var='pubsub#deliver_payloads'><value>1</value></field>
      <field var='pubsub#persist_items'><value>1</value></field>
      <field var='pubsub#max_items'><value>10</value></field>
      <field var='pubsub#item_expire'><value>604800</value></field>
      <field var='pubsub#access_model'><value>open</value></field>
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
    </x>",
    );
    let p = parse_node_config(&form).unwrap();
    assert_eq!(p.title.as_deref(), Some("Princely Musings (Atom)"));
    assert_eq!(p.max_items, Some(MaxItems::Count(10)));
    assert_eq!(p.item_expire, Some(Some(604_800)));
    assert_eq!(p.presence_based_delivery, Some(false));
    assert_eq!(p.access_model, Some(AccessModel::Open));
    assert_eq!(
        p.payload_type.as_deref(),
        Some("http://www.w3.org/2005/Atom")
    );
    assert_eq!(p.itemreply, None);
}

fn config_with(field: &str) -> DataForm {
    parse_form(&format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#node_config</value></field>{field}</x>"
    ))
}

#[test]
fn node_config_bad_values() {
    for f in [
        "<field var='pubsub#access_model'><value>bogus</value></field>",
        "<field var='pubsub#max_items'><value>x</value></field>",
        "<field var='pubsub#max_items'><value>-1</value></field>",
        "<field var='pubsub#persist_items'><value>yes</value></field>",
        "<field var='pubsub#persist_items'/>",
        "<field var='pubsub#item_expire'><value>1h</value></field>",
        "<field var='pubsub#title'><value>a</value><value>b</value></field>",
        "<field var='pubsub#node_type'><value>tree</value></field>",
        "<field var='pubsub#children_max'><value>many</value></field>",
        "<field var='pubsub#children_association_whitelist'><value>@@</value></field>",
    ] {
        match parse_node_config(&config_with(f)) {
            Err(Error::InvalidConfig(_)) => {}
            other => panic!("{f}: {other:?}"),
        }
    }
    assert_eq!(
        parse_node_config(&config_with(
            "<field var='pubsub#node_type'><value>collection</value></field>"
        ))
        .unwrap()
        .node_type,
        Some(roost_nodes::NodeType::Collection)
    );
    // Duplicate var, wrong FORM_TYPE, wrong form type: bad-request.
    assert!(matches!(
        parse_node_config(&config_with(
            "<field var='pubsub#title'/><field var='pubsub#title'/>"
        )),
        Err(Error::BadRequest(_))
    ));
    let wrong = parse_form(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>urn:other</value></field></x>",
    );
    assert!(matches!(
        parse_node_config(&wrong),
        Err(Error::BadRequest(_))
    ));
    let not_submit = node_config_form(&NodeConfig::default(), DataFormType::Form);
    assert!(matches!(
        parse_node_config(&not_submit),
        Err(Error::BadRequest(_))
    ));
}

#[test]
fn node_config_lenient_values() {
    let p = parse_node_config(&config_with(
        "<field var='pubsub#max_items'><value>max</value></field>\
         <field var='pubsub#notify_sub'><value>true</value></field>\
         <field var='pubsub#item_expire'/>\
         <field var='pubsub#title'/>\
         <field var='pubsub#node_type'><value>leaf</value></field>",
    ))
    .unwrap();
    assert_eq!(p.max_items, Some(MaxItems::Max));
    assert_eq!(p.notify_sub, Some(true));
    assert_eq!(p.item_expire, Some(None));
    assert_eq!(p.title.as_deref(), Some(""));
}

#[test]
fn publish_options_example_114() {
    // XEP-0060 example 114, the <x/> part.
    let form = parse_form(
        "<x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE' type='hidden'>
      <value>http://jabber.org/protocol/pubsub#publish-options</value>
    </field>
    <field var='pubsub#access_model'>
      <value>presence</value>
    </field>
  </x>",
    );
    let p = parse_publish_options(&form).unwrap();
    assert_eq!(p.access_model, Some(AccessModel::Presence));
    let unknown = parse_form(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='pubsub#frobnicate'><value>1</value></field></x>",
    );
    assert_eq!(
        parse_publish_options(&unknown),
        Err(Error::PreconditionNotMet {
            field: "pubsub#frobnicate".into()
        })
    );
    let no_form_type = parse_form(
        "<x xmlns='jabber:x:data' type='submit'>\
         <field var='pubsub#access_model'><value>open</value></field></x>",
    );
    assert!(matches!(
        parse_publish_options(&no_form_type),
        Err(Error::BadRequest(_))
    ));
}

#[test]
fn sub_options_example_64() {
    // XEP-0060 example 64, the <x/> part.
    let form = parse_form(
        "<x xmlns='jabber:x:data' type='submit'>
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
  </x>",
    );
    let p = parse_sub_options(&form).unwrap();
    assert_eq!(
        p,
        SubOptionsPatch {
            deliver: Some(true),
            digest: Some(false),
            digest_frequency: None,
            expire: None,
            include_body: Some(false),
            show_values: Some(vec![Show::Chat, Show::Online, Show::Away]),
            ..SubOptionsPatch::default()
        }
    );
}

#[test]
fn collection_options_only_for_collections() {
    let vars = |collection: bool| -> Vec<String> {
        sub_options_form(&SubOptions::default(), collection, DataFormType::Form)
            .fields
            .into_iter()
            .filter_map(|f| f.var)
            .collect()
    };
    let collection_only = ["pubsub#subscription_type", "pubsub#subscription_depth"];
    let leaf = vars(false);
    assert!(
        leaf.iter().all(|v| !collection_only.contains(&v.as_str())),
        "{leaf:?}"
    );
    assert!(leaf.iter().any(|v| v == "pubsub#deliver"));
    assert!(leaf.iter().any(|v| v == "x-roost#filter"));
    let coll = vars(true);
    for v in collection_only {
        assert!(coll.iter().any(|c| c == v), "{v} missing: {coll:?}");
    }
    assert_eq!(coll.len(), leaf.len() + 2);
}

#[test]
fn sub_options_round_trip_and_errors() {
    let opts = SubOptions {
        deliver: false,
        digest: true,
        digest_frequency: 3_600_000,
        expire: Some(1_059_519_370_000),
        include_body: true,
        show_values: vec![Show::Dnd],
        filter: Some("@level = 'error' and host ^= 'web-'".to_owned()),
        ..SubOptions::default()
    };
    let form = sub_options_form(&opts, true, DataFormType::Form);
    let filter = form
        .fields
        .iter()
        .find(|f| f.var.as_deref() == Some("x-roost#filter"))
        .expect("the filter field");
    assert_eq!(filter.type_, FieldType::TextSingle);
    let p = parse_sub_options(&resubmit(&form)).unwrap();
    assert_eq!(
        p.filter.as_deref(),
        Some("@level = 'error' and host ^= 'web-'")
    );
    assert_eq!(p.deliver, Some(false));
    assert_eq!(p.digest, Some(true));
    assert_eq!(p.digest_frequency, Some(3_600_000));
    assert_eq!(p.expire, Some(Some(1_059_519_370_000)));
    assert_eq!(p.include_body, Some(true));
    assert_eq!(p.show_values, Some(vec![Show::Dnd]));
    let p = parse_sub_options(&resubmit(&sub_options_form(
        &SubOptions::default(),
        false,
        DataFormType::Form,
    )))
    .unwrap();
    assert_eq!(p.expire, Some(None));
    // No filter shows as an empty field, which resubmitted removes any filter.
    assert_eq!(p.filter.as_deref(), Some(""));

    let with = |field: &str| {
        parse_form(&format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>{field}</x>"
        ))
    };
    for f in [
        "<field var='pubsub#deliver'><value>maybe</value></field>",
        "<field var='pubsub#show-values'><value>sleeping</value></field>",
        "<field var='pubsub#expire'><value>presence</value></field>",
        "<field var='pubsub#expire'><value>tomorrow</value></field>",
        "<field var='pubsub#digest_frequency'><value>often</value></field>",
        "<field var='x-roost#filter'><value>@a = 1</value><value>@b = 2</value></field>",
    ] {
        assert!(
            matches!(parse_sub_options(&with(f)), Err(Error::InvalidOptions(_))),
            "{f}"
        );
    }
}

#[test]
fn metadata() {
    let meta = NodeMeta {
        node: "princely_musings".into(),
        config: sample_config(),
        creator: "hamlet@denmark.lit".parse().unwrap(),
        created: 1_059_519_370_000,
        owners: vec!["hamlet@denmark.lit".parse().unwrap()],
        publishers: vec![
            "hamlet@denmark.lit".parse().unwrap(),
            "horatio@denmark.lit".parse().unwrap(),
        ],
        num_subscribers: 1066,
    };
    let form = metadata_form(&meta);
    assert_eq!(form.type_, DataFormType::Result_);
    assert_eq!(form.form_type(), Some(NS_META_DATA));
    let get = |v: &str| {
        form.fields
            .iter()
            .find(|f| f.var.as_deref() == Some(v))
            .unwrap()
    };
    assert_eq!(get("pubsub#creation_date").values, ["2003-07-29T22:56:10Z"]);
    assert_eq!(get("pubsub#owner").type_, FieldType::JidMulti);
    assert_eq!(get("pubsub#publisher").values.len(), 2);
    assert_eq!(get("pubsub#num_subscribers").values, ["1066"]);
    assert_eq!(get("pubsub#access_model").values, ["whitelist"]);
    assert_eq!(get("pubsub#max_items").values, ["max"]);
}

/// The forms, exactly: the field table rebuilds what the hand-written forms sent before it
/// (order, labels, types, options, values).
#[test]
fn node_config_and_metadata_forms_exact_xml() {
    let mut c = sample_config();
    c.access_model = roost_nodes::AccessModel::Roster;
    let meta = NodeMeta {
        node: "princely_musings".into(),
        config: c.clone(),
        creator: "hamlet@denmark.lit".parse().unwrap(),
        created: 1_059_519_370_000,
        owners: vec!["hamlet@denmark.lit".parse().unwrap()],
        publishers: vec![
            "hamlet@denmark.lit".parse().unwrap(),
            "horatio@denmark.lit".parse().unwrap(),
        ],
        num_subscribers: 1066,
    };
    let xml = |f: DataForm| String::from(&Element::from(f));
    assert_eq!(
        xml(node_config_form(&NodeConfig::default(), DataFormType::Form)),
        "<x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field label='A friendly name for the node' var='pubsub#title'/><field label='A description of the node' var='pubsub#description'/><field label='The semantic type (namespace) of the payloads of this node' var='pubsub#type'/><field label='Specify the subscriber model' type='list-single' var='pubsub#access_model'><option><value>open</value></option><option><value>authorize</value></option><option><value>whitelist</value></option><value>open</value></field><field label='Roster groups allowed to subscribe' type='list-multi' var='pubsub#roster_groups_allowed'/><field label='Specify the publisher model' type='list-single' var='pubsub#publish_model'><option><value>publishers</value></option><option><value>subscribers</value></option><option><value>open</value></option><value>publishers</value></field><field label='Max # of items to persist. `max` for no specific limit other than a server imposed maximum.' var='pubsub#max_items'><value>10</value></field><field label='Persist items to storage' type='boolean' var='pubsub#persist_items'><value>1</value></field><field label='Whether to deliver payloads with event notifications' type='boolean' var='pubsub#deliver_payloads'><value>1</value></field><field label='Whether to deliver event notifications' type='boolean' var='pubsub#deliver_notifications'><value>1</value></field><field label='Notify subscribers when the node configuration changes' type='boolean' var='pubsub#notify_config'><value>0</value></field><field label='Notify subscribers when the node is deleted' type='boolean' var='pubsub#notify_delete'><value>0</value></field><field label='Notify subscribers when items are removed from the node' type='boolean' var='pubsub#notify_retract'><value>0</value></field><field label='Notify owners about new subscribers and unsubscribes' type='boolean' var='pubsub#notify_sub'><value>0</value></field><field label='Deliver event notifications only to available users' type='boolean' var='pubsub#presence_based_delivery'><value>0</value></field><field label='When to send the last published item' type='list-single' var='pubsub#send_last_published_item'><option label='Never'><value>never</value></option><option label='When a new subscription is processed'><value>on_sub</value></option><option label='When a new subscription is processed and whenever a subscriber comes online'><value>on_sub_and_presence</value></option><value>never</value></field><field label='Number of seconds after which to automatically purge items (empty: never)' var='pubsub#item_expire'/><field label='Specify the delivery style for event notifications' type='list-single' var='pubsub#notification_type'><option><value>normal</value></option><option><value>headline</value></option><value>headline</value></field><field label='Whether owners or publisher should receive replies to items' type='list-single' var='pubsub#itemreply'><option><value>owner</value></option><option><value>publisher</value></option><value>owner</value></field><field label='Max payload size in bytes' var='pubsub#max_payload_size'><value>65536</value></field><field label='Whether the node is a leaf (default) or a collection' type='list-single' var='pubsub#node_type'><option label='The node is a leaf node (default)'><value>leaf</value></option><option label='The node is a collection node'><value>collection</value></option><value>leaf</value></field><field label='The collections of which this node is a child' type='text-multi' var='pubsub#collection'/><field label='The child nodes (leaf or collection) associated with a collection' type='text-multi' var='pubsub#children'/><field label='Who may associate leaf nodes with a collection' type='list-single' var='pubsub#children_association_policy'><option label='Only the owners of this node may associate other nodes to this collection'><value>owners</value></option><option label='Only those on the children association whitelist may associate other nodes to this collection'><value>whitelist</value></option><option label='Anyone may associate nodes with this collection'><value>all</value></option><value>owners</value></field><field label='The list of JIDs that may associate leaf nodes with a collection' type='jid-multi' var='pubsub#children_association_whitelist'/><field label='The maximum number of child nodes that can be associated with a collection' var='pubsub#children_max'><value>max</value></field></x>"
    );
    assert_eq!(
        xml(node_config_form(&c, DataFormType::Result_)),
        "<x xmlns='jabber:x:data' type='result'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field label='A friendly name for the node' var='pubsub#title'><value>Princely Musings (Atom)</value></field><field label='A description of the node' var='pubsub#description'><value>Updates for Hamlet's Princely Musings weblog.</value></field><field label='The semantic type (namespace) of the payloads of this node' var='pubsub#type'><value>http://www.w3.org/2005/Atom</value></field><field label='Specify the subscriber model' type='list-single' var='pubsub#access_model'><option><value>open</value></option><option><value>authorize</value></option><option><value>whitelist</value></option><option><value>roster</value></option><value>roster</value></field><field label='Roster groups allowed to subscribe' type='list-multi' var='pubsub#roster_groups_allowed'><value>Family</value><value>Friends</value></field><field label='Specify the publisher model' type='list-single' var='pubsub#publish_model'><option><value>publishers</value></option><option><value>subscribers</value></option><option><value>open</value></option><value>open</value></field><field label='Max # of items to persist. `max` for no specific limit other than a server imposed maximum.' var='pubsub#max_items'><value>max</value></field><field label='Persist items to storage' type='boolean' var='pubsub#persist_items'><value>0</value></field><field label='Whether to deliver payloads with event notifications' type='boolean' var='pubsub#deliver_payloads'><value>0</value></field><field label='Whether to deliver event notifications' type='boolean' var='pubsub#deliver_notifications'><value>1</value></field><field label='Notify subscribers when the node configuration changes' type='boolean' var='pubsub#notify_config'><value>1</value></field><field label='Notify subscribers when the node is deleted' type='boolean' var='pubsub#notify_delete'><value>1</value></field><field label='Notify subscribers when items are removed from the node' type='boolean' var='pubsub#notify_retract'><value>1</value></field><field label='Notify owners about new subscribers and unsubscribes' type='boolean' var='pubsub#notify_sub'><value>1</value></field><field label='Deliver event notifications only to available users' type='boolean' var='pubsub#presence_based_delivery'><value>1</value></field><field label='When to send the last published item' type='list-single' var='pubsub#send_last_published_item'><option label='Never'><value>never</value></option><option label='When a new subscription is processed'><value>on_sub</value></option><option label='When a new subscription is processed and whenever a subscriber comes online'><value>on_sub_and_presence</value></option><value>on_sub_and_presence</value></field><field label='Number of seconds after which to automatically purge items (empty: never)' var='pubsub#item_expire'><value>604800</value></field><field label='Specify the delivery style for event notifications' type='list-single' var='pubsub#notification_type'><option><value>normal</value></option><option><value>headline</value></option><value>normal</value></field><field label='Whether owners or publisher should receive replies to items' type='list-single' var='pubsub#itemreply'><option><value>owner</value></option><option><value>publisher</value></option><value>publisher</value></field><field label='Max payload size in bytes' var='pubsub#max_payload_size'><value>1028</value></field><field label='Whether the node is a leaf (default) or a collection' type='list-single' var='pubsub#node_type'><option label='The node is a leaf node (default)'><value>leaf</value></option><option label='The node is a collection node'><value>collection</value></option><value>leaf</value></field><field label='The collections of which this node is a child' type='text-multi' var='pubsub#collection'/><field label='The child nodes (leaf or collection) associated with a collection' type='text-multi' var='pubsub#children'/><field label='Who may associate leaf nodes with a collection' type='list-single' var='pubsub#children_association_policy'><option label='Only the owners of this node may associate other nodes to this collection'><value>owners</value></option><option label='Only those on the children association whitelist may associate other nodes to this collection'><value>whitelist</value></option><option label='Anyone may associate nodes with this collection'><value>all</value></option><value>owners</value></field><field label='The list of JIDs that may associate leaf nodes with a collection' type='jid-multi' var='pubsub#children_association_whitelist'/><field label='The maximum number of child nodes that can be associated with a collection' var='pubsub#children_max'><value>max</value></field></x>"
    );
    assert_eq!(xml(metadata_form(&meta)), "<x xmlns='jabber:x:data' type='result'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#meta-data</value></field><field label='Payload semantic type information' var='pubsub#type'><value>http://www.w3.org/2005/Atom</value></field><field label='Node creator' type='jid-single' var='pubsub#creator'><value>hamlet@denmark.lit</value></field><field label='Creation date' var='pubsub#creation_date'><value>2003-07-29T22:56:10Z</value></field><field label='A short name for the node' var='pubsub#title'><value>Princely Musings (Atom)</value></field><field label='A description of the node' var='pubsub#description'><value>Updates for Hamlet's Princely Musings weblog.</value></field><field label='Access model' type='list-single' var='pubsub#access_model'><value>roster</value></field><field label='Publish model' type='list-single' var='pubsub#publish_model'><value>open</value></field><field label='Max # of items to persist. `max` for no specific limit other than a server imposed maximum.' var='pubsub#max_items'><value>max</value></field><field label='Node owners' type='jid-multi' var='pubsub#owner'><value>hamlet@denmark.lit</value></field><field label='Publishers to this node' type='jid-multi' var='pubsub#publisher'><value>hamlet@denmark.lit</value><value>horatio@denmark.lit</value></field><field label='Number of subscribers to this node' var='pubsub#num_subscribers'><value>1066</value></field></x>");
}

#[test]
fn publish_options_read_the_same_fields_as_the_configuration_form() {
    // Every field of the configuration form is a precondition Roost can check, read the
    // same way: the configuration form resubmitted as publish-options gives the same patch.
    let form = node_config_form(&sample_config(), DataFormType::Form);
    let mut as_options = resubmit(&form);
    for f in &mut as_options.fields {
        if f.var.as_deref() == Some("FORM_TYPE") {
            f.values = vec!["http://jabber.org/protocol/pubsub#publish-options".into()];
        }
    }
    let as_options = DataForm::try_from(Element::from(as_options)).unwrap();
    assert_eq!(
        parse_publish_options(&as_options).unwrap(),
        parse_node_config(&resubmit(&form)).unwrap()
    );
}
