//! XEP-0356 Privileged Entity: the `<privilege/>` a server advertises to a component
//! (xmpp-parsers 0.23 has no module for it), in both namespace versions servers use.
//!
//! Attribute values are kept as text: a permission Roost does not know, or a value a later
//! version adds, must leave the rest of the advertisement readable (it reads as no
//! permission), not make it an error.

use xso::{AsXml, FromXml};

/// XEP-0356 namespace up to version 0.3 (ejabberd 23.01).
pub const NS_PRIVILEGE_1: &str = "urn:xmpp:privilege:1";
/// XEP-0356 namespace from version 0.4 (Prosody's mod_privilege).
pub const NS_PRIVILEGE_2: &str = "urn:xmpp:privilege:2";

/// Declares `<privilege/>`, `<perm/>` and `<namespace/>` of one namespace version (the same
/// shape in both).
macro_rules! privilege_elements {
    ($ns:expr, $privilege:ident, $perm:ident, $namespace:ident, $version:literal) => {
        #[doc = concat!("`<privilege/>` (", $version, "): the permissions granted.")]
        #[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
        #[xml(namespace = $ns, name = "privilege")]
        pub struct $privilege {
            /// One per access kind.
            #[xml(child(n = ..))]
            pub perms: Vec<$perm>,
        }

        #[doc = concat!("`<perm/>` (", $version, "): one kind of access and its extent.")]
        #[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
        #[xml(namespace = $ns, name = "perm")]
        pub struct $perm {
            /// `roster`, `message`, `presence`, `iq`.
            #[xml(attribute)]
            pub access: String,
            /// E.g. `get`, `set`, `both`, `none` for the roster.
            #[xml(attribute(default, name = "type"))]
            pub type_: Option<String>,
            /// Roster pushes are sent (roster access, version 0.4).
            #[xml(attribute(default))]
            pub push: Option<String>,
            /// The IQ namespaces allowed (iq access, version 0.4).
            #[xml(child(n = ..))]
            pub namespaces: Vec<$namespace>,
        }

        #[doc = concat!("`<namespace/>` of an iq `<perm/>` (", $version, ").")]
        #[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
        #[xml(namespace = $ns, name = "namespace")]
        pub struct $namespace {
            /// The payload namespace.
            #[xml(attribute)]
            pub ns: String,
            /// `get`, `set` or `both`.
            #[xml(attribute(name = "type"))]
            pub type_: String,
        }
    };
}

privilege_elements!(
    NS_PRIVILEGE_2,
    Privilege,
    Perm,
    PermNamespace,
    "urn:xmpp:privilege:2"
);
privilege_elements!(
    NS_PRIVILEGE_1,
    PrivilegeV1,
    PermV1,
    PermNamespaceV1,
    "urn:xmpp:privilege:1"
);

impl From<PrivilegeV1> for Privilege {
    /// Version 0.3's permissions, read as 0.4's (the same shape).
    fn from(p: PrivilegeV1) -> Self {
        Privilege {
            perms: p
                .perms
                .into_iter()
                .map(|p| Perm {
                    access: p.access,
                    type_: p.type_,
                    push: p.push,
                    namespaces: p
                        .namespaces
                        .into_iter()
                        .map(|n| PermNamespace {
                            ns: n.ns,
                            type_: n.type_,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_support::round_trip;

    fn perm(access: &str, type_: Option<&str>, push: Option<&str>) -> Perm {
        Perm {
            access: access.into(),
            type_: type_.map(Into::into),
            push: push.map(Into::into),
            namespaces: Vec::new(),
        }
    }

    #[test]
    fn roster_and_message_permissions() {
        // §4 "Roster access" and §5 "Message permission", the <privilege/> parts.
        round_trip(
            "<privilege xmlns='urn:xmpp:privilege:2'>
    <perm access='roster' type='both' push='true'/>
  </privilege>",
            &Privilege {
                perms: vec![perm("roster", Some("both"), Some("true"))],
            },
        );
        round_trip(
            "<privilege xmlns='urn:xmpp:privilege:2'>
        <perm access='roster' type='both' push='true'/>
        <perm access='message' type='outgoing'/>
    </privilege>",
            &Privilege {
                perms: vec![
                    perm("roster", Some("both"), Some("true")),
                    perm("message", Some("outgoing"), None),
                ],
            },
        );
    }

    #[test]
    fn iq_permission_with_namespaces() {
        // §6 "IQ permission".
        let mut p = perm("iq", None, None);
        p.namespaces = vec![PermNamespace {
            ns: "http://jabber.org/protocol/pubsub".into(),
            type_: "set".into(),
        }];
        round_trip(
            "<privilege xmlns='urn:xmpp:privilege:2'>
    <perm access='iq'>
      <namespace ns='http://jabber.org/protocol/pubsub' type='set' />
    </perm>
  </privilege>",
            &Privilege { perms: vec![p] },
        );
    }

    #[test]
    fn version_1_reads_as_version_2() {
        let v1 = PrivilegeV1 {
            perms: vec![PermV1 {
                access: "presence".into(),
                type_: Some("managed_entity".into()),
                push: None,
                namespaces: Vec::new(),
            }],
        };
        round_trip(
            "<privilege xmlns='urn:xmpp:privilege:1'>
               <perm access='presence' type='managed_entity'/>
             </privilege>",
            &v1,
        );
        assert_eq!(
            Privilege::from(v1),
            Privilege {
                perms: vec![perm("presence", Some("managed_entity"), None)]
            }
        );
    }
}
