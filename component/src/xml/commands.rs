//! XEP-0050 Ad-Hoc Commands: the `<command/>` element (xmpp-parsers 0.23 has no module for
//! it). Roost runs one command, XEP-0060 §8.7 get-pending.

use minidom::Element;
use xmpp_parsers::data_forms::DataForm;
use xso::{AsXml, FromXml};

use super::text_enum;

/// `http://jabber.org/protocol/commands`.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";

text_enum! {
    /// What the requester asks of a command (§3.4); absent means `execute`.
    Action {
        Cancel = "cancel",
        Complete = "complete",
        Execute = "execute",
        Next = "next",
        Prev = "prev",
    }
}

text_enum! {
    /// Where a command's execution stands (§3.4).
    Status {
        Canceled = "canceled",
        Completed = "completed",
        Executing = "executing",
    }
}

text_enum! {
    /// The kind of a note (§3.4).
    NoteType {
        Error = "error",
        Info = "info",
        Warn = "warn",
    }
}

/// `<command/>`: a request to run a command, or its answer.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_COMMANDS, name = "command")]
pub struct Command {
    /// Which command.
    #[xml(attribute)]
    pub node: String,
    /// The session of a multi-stage command.
    #[xml(attribute(default))]
    pub sessionid: Option<String>,
    /// The requester's action.
    #[xml(attribute(default))]
    pub action: Option<Action>,
    /// The responder's status.
    #[xml(attribute(default))]
    pub status: Option<Status>,
    /// The actions the requester may take next.
    #[xml(child(default))]
    pub actions: Option<Actions>,
    /// Notes to the requester.
    #[xml(child(n = ..))]
    pub notes: Vec<Note>,
    /// The command's data form.
    #[xml(child(default))]
    pub form: Option<DataForm>,
    /// Any other payload.
    #[xml(element(n = ..))]
    pub payloads: Vec<Element>,
}

impl Command {
    /// A command element for `node` with nothing else.
    pub fn new(node: impl Into<String>) -> Self {
        Command {
            node: node.into(),
            sessionid: None,
            action: None,
            status: None,
            actions: None,
            notes: Vec::new(),
            form: None,
            payloads: Vec::new(),
        }
    }
}

/// `<actions/>`: the actions allowed at this stage, and the default one.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_COMMANDS, name = "actions")]
pub struct Actions {
    /// The action taken when the requester says `execute`.
    #[xml(attribute(default))]
    pub execute: Option<Action>,
    /// Going back is allowed.
    #[xml(flag)]
    pub prev: bool,
    /// Going on is allowed.
    #[xml(flag)]
    pub next: bool,
    /// Completing is allowed.
    #[xml(flag)]
    pub complete: bool,
}

/// `<note/>`: a message to the requester.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_COMMANDS, name = "note")]
pub struct Note {
    /// Its kind; absent means `info`.
    #[xml(attribute(default, name = "type"))]
    pub type_: Option<NoteType>,
    /// The text.
    #[xml(text)]
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::{example, round_trip};
    use xmpp_parsers::data_forms::DataFormType;

    #[test]
    fn xep0050_example_execute_request() {
        let mut c = Command::new("list");
        c.action = Some(Action::Execute);
        round_trip(
            "<command xmlns='http://jabber.org/protocol/commands' node='list' action='execute'/>",
            &c,
        );
    }

    #[test]
    fn xep0050_example_stage_2_result_with_actions_and_form() {
        // The example's form, without its fields (xmpp-parsers writes a field's options
        // before its values, the example the other way round; the form is not ours).
        let xml = "<command xmlns='http://jabber.org/protocol/commands'
           sessionid='config:20020923T213616Z-700'
           node='config'
           status='executing'>
    <actions execute='complete'>
      <prev/>
      <complete/>
    </actions>
    <x xmlns='jabber:x:data' type='form'>
      <title>Configure Service</title>
    </x>
  </command>";
        let form = DataForm::try_from(example(xml).children().nth(1).unwrap().clone()).unwrap();
        let mut c = Command::new("config");
        c.sessionid = Some("config:20020923T213616Z-700".into());
        c.status = Some(Status::Executing);
        c.actions = Some(Actions {
            execute: Some(Action::Complete),
            prev: true,
            next: false,
            complete: true,
        });
        c.form = Some(form);
        round_trip(xml, &c);
    }

    #[test]
    fn xep0050_example_cancel_and_canceled() {
        let mut c = Command::new("config");
        c.sessionid = Some("config:20020923T213616Z-700".into());
        c.action = Some(Action::Cancel);
        round_trip(
            "<command xmlns='http://jabber.org/protocol/commands'
               sessionid='config:20020923T213616Z-700' node='config' action='cancel'/>",
            &c,
        );
        c.action = None;
        c.status = Some(Status::Canceled);
        round_trip(
            "<command xmlns='http://jabber.org/protocol/commands'
               sessionid='config:20020923T213616Z-700' node='config' status='canceled'/>",
            &c,
        );
    }

    #[test]
    fn xep0050_example_completed_with_note() {
        let mut c = Command::new("config");
        c.sessionid = Some("config:20020923T213616Z-700".into());
        c.status = Some(Status::Completed);
        c.notes = vec![Note {
            type_: Some(NoteType::Info),
            text: "Service 'httpd' has been configured.".into(),
        }];
        round_trip(
            "<command xmlns='http://jabber.org/protocol/commands'
               sessionid='config:20020923T213616Z-700' node='config' status='completed'>
               <note type='info'>Service 'httpd' has been configured.</note>
             </command>",
            &c,
        );
    }

    #[test]
    fn xep0060_examples_176_and_182_get_pending() {
        let node = "http://jabber.org/protocol/pubsub#get-pending";
        let mut c = Command::new(node);
        c.action = Some(Action::Execute);
        round_trip(
            "<command xmlns='http://jabber.org/protocol/commands'
               node='http://jabber.org/protocol/pubsub#get-pending' action='execute'/>",
            &c,
        );
        let xml = "<command xmlns='http://jabber.org/protocol/commands'
           sessionid='pubsub-get-pending:20031021T150901Z-600'
           node='http://jabber.org/protocol/pubsub#get-pending'
           action='execute'>
    <x xmlns='jabber:x:data' type='submit'>
      <field var='pubsub#node'>
        <value>princely_musings</value>
      </field>
    </x>
  </command>";
        let parsed = Command::try_from(example(xml)).unwrap();
        let form = parsed.form.clone().expect("the submitted form");
        assert_eq!(form.type_, DataFormType::Submit);
        c.sessionid = Some("pubsub-get-pending:20031021T150901Z-600".into());
        c.form = Some(form);
        round_trip(xml, &c);
    }

    #[test]
    fn unknown_actions_and_a_missing_node_are_refused() {
        for xml in [
            "<command xmlns='http://jabber.org/protocol/commands' node='x' action='jump'/>",
            "<command xmlns='http://jabber.org/protocol/commands' action='execute'/>",
        ] {
            assert!(Command::try_from(example(xml)).is_err(), "{xml}");
        }
    }
}
