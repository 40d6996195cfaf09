//! What waits to be written: the replies and notifications of a batch, held until the batch
//! is durable, then rendered into the link's buffer a chunk at a time.

use std::collections::VecDeque;

use roost_nodes::{Dispatch, Jid, Service, Store};
use tracing::{error, trace};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::stanza::Stanza;

use crate::effects::Effects;
use crate::encoder::StanzaEncoder;
use crate::errors::{refusal, Refusal};
use crate::pubsub::NotificationRenderer;

/// Ids of the stanzas the service sends (notifications, roster gets, pings, archive
/// results): a per-process prefix and a counter.
pub struct Ids {
    prefix: String,
    next: u64,
}

impl Ids {
    /// Ids starting with `prefix`.
    pub fn new(prefix: String) -> Self {
        Ids { prefix, next: 0 }
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        let mut id = String::new();
        self.next_into(&mut id);
        id
    }

    /// The next id, written over `id` (a message id per notification: no allocation each).
    pub fn next_into(&mut self, id: &mut String) {
        use std::fmt::Write as _;
        self.next += 1;
        id.clear();
        let _ = write!(id, "{}-{}", self.prefix, self.next);
    }
}

/// One thing to write once the batch is durable.
// The stanza variant is large, but a batch held `Stanza`s by value before too; boxing would
// add an allocation per reply.
#[allow(clippy::large_enum_variant)]
pub enum Outgoing {
    /// A reply, a presence, a ping.
    Stanza(Stanza),
    /// The notifications one stanza caused, in order. They stay engine values until written,
    /// so that the message for one event is built and serialized once for all recipients,
    /// and a fan-out's recipients are walked as they are written (see [`Outbox::fill`]).
    Notifications(VecDeque<Dispatch>),
}

/// The batch being assembled, and the renderer that serializes its notifications.
#[derive(Default)]
pub struct Outbox {
    queue: VecDeque<Outgoing>,
    /// Serializes notifications once per event rather than once per recipient.
    renderer: NotificationRenderer,
    /// Something in the batch failed to reach the store.
    storage_failed: bool,
}

impl Outbox {
    /// Queue `fx`: its stanzas, then its notifications (replies go out before the
    /// notifications of the same request, as they did when both were stanzas).
    pub fn push(&mut self, fx: Effects) {
        self.storage_failed |= fx.storage_failed;
        for event in fx.fresh_payloads {
            self.renderer.trust(event);
        }
        self.queue
            .extend(fx.stanzas.into_iter().map(Outgoing::Stanza));
        if !fx.notifications.is_empty() {
            // From a Vec without copying: the notifications are taken from the front as
            // they are written, a chunk at a time.
            self.queue
                .push_back(Outgoing::Notifications(VecDeque::from(fx.notifications)));
        }
    }

    /// True when something queued since the last call failed to reach the store; clears it.
    pub fn take_storage_failed(&mut self) -> bool {
        std::mem::take(&mut self.storage_failed)
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The queue, front first (for tests and counters).
    pub fn queued(&self) -> impl Iterator<Item = &Outgoing> {
        self.queue.iter()
    }

    /// The flush after the batch failed: IQ results become `internal-server-error` (type
    /// wait), notifications and other messages are dropped, everything else goes out as it
    /// was.
    pub fn withhold(&mut self) {
        self.renderer.forget_trusted();
        self.queue = std::mem::take(&mut self.queue)
            .into_iter()
            .filter_map(|o| match o {
                Outgoing::Stanza(st) => withheld(st).map(Outgoing::Stanza),
                Outgoing::Notifications(_) => None,
            })
            .collect();
    }

    /// Serialize the front of the queue into `buf` with `enc` until it holds `budget` bytes
    /// or the queue is empty; notifications are sent from `me` and get their message ids from
    /// `ids` here. A fan-out is walked in `svc` [`WALK_CHUNK`] recipients at a time as its
    /// messages are rendered, so the first chunk goes out before the last recipients are even
    /// looked up. A stanza that cannot be serialized is logged and left out. Returns how
    /// many notifications were rendered.
    pub fn fill<S: Store>(
        &mut self,
        svc: &Service<S>,
        me: &Jid,
        ids: &mut Ids,
        enc: &mut StanzaEncoder,
        buf: &mut Vec<u8>,
        budget: usize,
    ) -> u64 {
        let mut walked = Vec::new();
        let mut id = String::new();
        let mut rendered = 0;
        while buf.len() < budget {
            match self.queue.front_mut() {
                None => break,
                Some(Outgoing::Notifications(ns)) => {
                    while buf.len() < budget {
                        match ns.front() {
                            None => break,
                            Some(Dispatch::Fanout(f)) => {
                                if svc.walk(f, WALK_CHUNK, &mut walked) {
                                    ns.pop_front();
                                }
                            }
                            Some(Dispatch::One(_)) => {
                                if let Some(Dispatch::One(n)) = ns.pop_front() {
                                    walked.push(n);
                                }
                            }
                        }
                        for n in walked.drain(..) {
                            ids.next_into(&mut id);
                            trace!(to = %n.to, node = %n.node, id, "out notification");
                            match self.renderer.render(&n, me, &id, enc, buf) {
                                Ok(_) => rendered += 1,
                                Err(e) => {
                                    error!(to = %n.to, "notification not sent, it cannot be serialized: {e}")
                                }
                            }
                        }
                    }
                    if ns.is_empty() {
                        self.queue.pop_front();
                    }
                }
                Some(Outgoing::Stanza(_)) => {
                    if let Some(Outgoing::Stanza(st)) = self.queue.pop_front() {
                        trace!(stanza = ?st, "out");
                        if let Err(e) = enc.encode_stanza(&st, buf) {
                            error!("stanza not sent, it cannot be serialized: {e}");
                        }
                    }
                }
            }
        }
        if self.queue.is_empty() {
            self.renderer.forget_trusted();
        }
        rendered
    }
}

/// How many recipients of a fan-out are walked at once while writing: a few dozen
/// messages, so that the first of a large fan-out are rendered at once and the walk never
/// runs far ahead of the writing.
pub const WALK_CHUNK: usize = 64;

/// What becomes of one stanza of a batch whose flush failed.
fn withheld(st: Stanza) -> Option<Stanza> {
    match st {
        Stanza::Iq(Iq::Result { from, to, id, .. }) => Some(
            Iq::Error {
                from,
                to,
                id,
                payload: None,
                error: refusal(&Refusal::NotDurable),
            }
            .into(),
        ),
        Stanza::Message(m) if m.type_ != MessageType::Error => None,
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_nodes::{Event, Notification, NotificationType};
    use xmpp_parsers::message::Message;
    use xmpp_parsers::presence::{Presence, Type as PresenceType};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn result(id: &str) -> Stanza {
        Iq::Result {
            from: Some(jid("pubsub.localhost")),
            to: Some(jid("a@localhost/r")),
            id: id.into(),
            payload: None,
        }
        .into()
    }

    fn notification() -> Notification {
        Notification {
            to: jid("b@localhost"),
            node: "n".into(),
            subids: Vec::new(),
            name_subids: false,
            kind: NotificationType::Headline,
            include_body: false,
            collections: Vec::new(),
            event: std::sync::Arc::new(Event::Purge),
        }
    }

    fn ids(out: &Outbox) -> Vec<String> {
        out.queued()
            .map(|o| match o {
                Outgoing::Stanza(Stanza::Iq(Iq::Result { id, .. })) => id.clone(),
                Outgoing::Stanza(Stanza::Iq(Iq::Error { id, .. })) => format!("error {id}"),
                Outgoing::Stanza(Stanza::Presence(_)) => "presence".into(),
                Outgoing::Stanza(_) => "other".into(),
                Outgoing::Notifications(n) => format!("{} notifications", n.len()),
            })
            .collect()
    }

    #[test]
    fn each_piece_of_work_goes_out_stanzas_first_then_its_notifications() {
        let mut out = Outbox::default();
        let mut a = Effects::stanza(result("1"));
        a.notify(vec![notification(), notification()]);
        out.push(a);
        out.push(Effects::stanza(result("2")));
        assert_eq!(ids(&out), ["1", "2 notifications", "2"]);
        assert!(!out.take_storage_failed());
        out.push(Effects {
            storage_failed: true,
            ..Effects::none()
        });
        assert!(
            out.take_storage_failed(),
            "a failure anywhere in the batch is seen"
        );
        assert!(!out.take_storage_failed(), "and cleared once taken");
    }

    #[test]
    fn a_failed_sync_withholds_results_messages_and_notifications() {
        let mut out = Outbox::default();
        let mut fx = Effects::stanza(result("1"));
        fx.push(Message::new(Some(jid("b@localhost"))));
        fx.push(Presence::new(PresenceType::Probe).with_to(jid("b@localhost")));
        fx.notify(vec![notification()]);
        out.push(fx);
        out.withhold();
        assert_eq!(ids(&out), ["error 1", "presence"]);
    }
}
