//! The admins' XEP-0050 ad-hoc commands (in the spirit of XEP-0133): list nodes (paged),
//! node summary, delete node, purge node, list a node's subscriptions, service statistics.
//! Their discovery is in `pubsub::commands` ([`ADMIN_COMMANDS`]); who is an admin is the
//! policy's (`Policy::is_admin`); every read and change goes through the engine as the
//! admin's own request (admins are owners of every node), so deleting or purging notifies
//! subscribers and commits atomically exactly as an owner's request does.
//!
//! The commands keep no session state: a command that needs a node asks for it with a form
//! (or takes it from a form sent with `execute`), and the node list's cursor travels in the
//! session id.

// Answers carry the stanza error by value, as `pubsub::parse` does: admin commands are a
// cold path, and boxing would buy nothing.
#![allow(clippy::result_large_err)]

mod forms;

use minidom::Element;
use roost_nodes::{Error, Jid, Millis, PagedList, Reply, Request, RsmQuery, Service, Store};
use tracing::{debug, error, info};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::effects::Effects;
use crate::errors::{bad_request, stanza_error};
use crate::metrics::Metrics;
use crate::pubsub::{IqKind, ADMIN_COMMANDS};
use crate::xml::commands::{Action, Actions, Command, Note, NoteType, Status, NS_COMMANDS};

/// Nodes per page of the node list unless the admin asks for another size.
pub const DEFAULT_PAGE: u64 = 50;
/// The largest page of the node list.
pub const MAX_PAGE: u64 = 1000;

/// Which admin command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    ListNodes,
    NodeSummary,
    DeleteNode,
    PurgeNode,
    ListSubscribers,
    Statistics,
}

impl Which {
    /// Parallel to [`ADMIN_COMMANDS`].
    const ALL: [Which; 6] = [
        Which::ListNodes,
        Which::NodeSummary,
        Which::DeleteNode,
        Which::PurgeNode,
        Which::ListSubscribers,
        Which::Statistics,
    ];

    fn of(node: &str) -> Option<Which> {
        let i = ADMIN_COMMANDS.iter().position(|(n, _)| *n == node)?;
        Some(Which::ALL[i])
    }

    fn node(self) -> &'static str {
        ADMIN_COMMANDS[self as usize].0
    }
}

/// An IQ get or set that may run an admin command.
pub struct Ask<'a> {
    /// The requester.
    pub from: &'a Jid,
    /// Get or set.
    pub kind: IqKind,
    /// The payload.
    pub payload: &'a Element,
    /// When it arrived.
    pub now: Millis,
    /// The service's counters (for the statistics).
    pub metrics: &'a Metrics,
}

/// What an admin command answers: the `<command/>` of the IQ result and its effects
/// (notifications), or the IQ's error.
pub type Answer = Result<(Element, Effects), (StanzaError, Effects)>;

/// Run `ask` if it is an admin command; `None` for any other payload.
pub fn handle<S: Store>(svc: &mut Service<S>, ask: &Ask<'_>) -> Option<Answer> {
    if !ask.payload.is("command", NS_COMMANDS) {
        return None;
    }
    let which = Which::of(ask.payload.attr("node")?)?;
    Some(run(svc, ask, which).map(|(command, fx)| (command.into(), fx)))
}

type Ran = Result<(Command, Effects), (StanzaError, Effects)>;

fn refused(e: StanzaError) -> Ran {
    Err((e, Effects::none()))
}

fn run<S: Store>(svc: &mut Service<S>, ask: &Ask<'_>, which: Which) -> Ran {
    let admin = ask.from.to_bare();
    if !svc.policy().is_admin(&admin) {
        debug!(from = %ask.from, "admin command refused: not an admin");
        return refused(stanza_error(&Error::Forbidden));
    }
    if ask.kind != IqKind::Set {
        return refused(bad_request("commands are executed with an iq set"));
    }
    let command = match Command::try_from(ask.payload.clone()) {
        Ok(c) => c,
        Err(e) => return refused(bad_request(format!("malformed command: {e}"))),
    };
    let reply = |status| Command {
        sessionid: command.sessionid.clone(),
        status: Some(status),
        ..Command::new(which.node())
    };
    match command.action {
        None | Some(Action::Execute | Action::Next | Action::Complete) => {}
        // XEP-0050 §3.4: cancelling ends the session; nothing is kept, so nothing to undo.
        Some(Action::Cancel) => return Ok((reply(Status::Canceled), Effects::none())),
        Some(Action::Prev) => return refused(bad_request("action 'prev' is not offered")),
    }
    let form = command.form.as_ref();
    let node = match which {
        Which::ListNodes => return list_nodes(svc, ask, &command),
        Which::Statistics => {
            let stats = svc.stats();
            let form = forms::statistics(&stats, ask.metrics);
            return Ok((
                Command {
                    form: Some(form),
                    ..reply(Status::Completed)
                },
                Effects::none(),
            ));
        }
        _ => match form.map(forms::submitted_node) {
            // The first stage: ask for the node.
            None => {
                return Ok((
                    Command {
                        sessionid: Some(format!("{}:{}", ask.now, which as u8)),
                        actions: Some(Actions {
                            execute: Some(Action::Complete),
                            prev: false,
                            next: false,
                            complete: true,
                        }),
                        form: Some(forms::ask_node(which)),
                        ..reply(Status::Executing)
                    },
                    Effects::none(),
                ))
            }
            Some(Err(why)) => return refused(bad_request(why)),
            Some(Ok(node)) => node,
        },
    };
    let request = match which {
        Which::NodeSummary => Request::NodeMetadata { node: node.clone() },
        Which::DeleteNode => Request::Delete {
            node: node.clone(),
            redirect: None,
        },
        Which::PurgeNode => Request::Purge { node: node.clone() },
        Which::ListSubscribers => Request::GetSubscriptions { node: node.clone() },
        Which::ListNodes | Which::Statistics => unreachable!("answered above"),
    };
    let (answer, fx) = engine(svc, ask, request)?;
    let done = reply(Status::Completed);
    let note = |text: String| Note {
        type_: Some(NoteType::Info),
        text,
    };
    let command = match (which, answer) {
        (Which::NodeSummary, Reply::Metadata(meta)) => {
            let counts = svc.node_stats(&node).unwrap_or_default();
            Command {
                form: Some(forms::summary(&meta, &counts)),
                ..done
            }
        }
        (Which::ListSubscribers, Reply::Subscriptions { subs, .. }) => Command {
            form: Some(forms::subscribers(&node, &subs)),
            ..done
        },
        (Which::DeleteNode, _) => {
            info!(%admin, node, "node deleted by an admin command");
            Command {
                notes: vec![note(format!("Node {node} deleted."))],
                ..done
            }
        }
        (Which::PurgeNode, _) => {
            info!(%admin, node, "node purged by an admin command");
            Command {
                notes: vec![note(format!("Node {node} purged."))],
                ..done
            }
        }
        (_, other) => {
            error!("admin command {which:?}: unexpected engine reply {other:?}");
            return Err((unexpected(), fx));
        }
    };
    Ok((command, fx))
}

/// `request` through the engine as the admin's: its reply, and its notifications in the
/// effects; a refusal as its stanza error.
fn engine<S: Store>(
    svc: &mut Service<S>,
    ask: &Ask<'_>,
    request: Request,
) -> Result<(Reply, Effects), (StanzaError, Effects)> {
    let mut fx = Effects::none();
    match svc.handle_streamed(ask.from, request, ask.now) {
        Ok(outcome) => {
            fx.notify(outcome.dispatches);
            Ok((outcome.reply, fx))
        }
        Err(e) => {
            if fx.engine_error(&e) {
                error!(from = %ask.from, "admin command failed, nothing was changed: {e}");
            }
            Err((stanza_error(&e), fx))
        }
    }
}

/// The engine answered a request with a reply of another kind: a bug, not the admin's.
fn unexpected() -> StanzaError {
    StanzaError::new(
        ErrorType::Wait,
        DefinedCondition::InternalServerError,
        "en",
        "unexpected engine reply",
    )
}

/// The node list, a page at a time: the page size from a form sent with `execute` (field
/// `max`), the position from the session id of a `next`.
fn list_nodes<S: Store>(svc: &mut Service<S>, ask: &Ask<'_>, command: &Command) -> Ran {
    let (max, after) = match (&command.action, &command.sessionid) {
        (Some(Action::Next), Some(sid)) => match parse_cursor(sid) {
            Some(c) => c,
            None => return refused(bad_request("unknown session")),
        },
        _ => match command.form.as_ref().map(forms::submitted_max) {
            None => (DEFAULT_PAGE, None),
            Some(Ok(max)) => (max, None),
            Some(Err(why)) => return refused(bad_request(why)),
        },
    };
    let rsm = RsmQuery {
        max: Some(max),
        after,
        before: None,
        index: None,
    };
    let request = Request::Page {
        list: PagedList::Nodes,
        rsm,
    };
    let (answer, fx) = engine(svc, ask, request)?;
    let Reply::Nodes { nodes, page } = answer else {
        return Err((unexpected(), fx));
    };
    let total = page.as_ref().map_or(nodes.len() as u64, |p| p.count);
    let shown_to = page
        .as_ref()
        .and_then(|p| p.first.as_ref())
        .map_or(0, |(_, index)| index + nodes.len() as u64);
    let more = shown_to < total;
    let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    let mut reply = Command {
        status: Some(Status::Completed),
        form: Some(forms::node_page(&names, total)),
        ..Command::new(Which::ListNodes.node())
    };
    if more {
        let last = names.last().copied().unwrap_or("");
        reply.status = Some(Status::Executing);
        reply.sessionid = Some(cursor(ask.now, max, last));
        reply.actions = Some(Actions {
            execute: Some(Action::Next),
            prev: false,
            next: true,
            complete: true,
        });
    }
    Ok((reply, fx))
}

/// A session id carrying the node list's position: unique enough per exchange (the time),
/// the page size, and the last node shown.
fn cursor(now: u64, max: u64, last: &str) -> String {
    format!("{now}:{max}:{last}")
}

fn parse_cursor(sid: &str) -> Option<(u64, Option<String>)> {
    let mut parts = sid.splitn(3, ':');
    let _time = parts.next()?;
    let max = parts
        .next()?
        .parse()
        .ok()
        .filter(|m| (1..=MAX_PAGE).contains(m))?;
    let last = parts.next()?;
    Some((max, (!last.is_empty()).then(|| last.to_owned())))
}

#[cfg(test)]
mod tests;
