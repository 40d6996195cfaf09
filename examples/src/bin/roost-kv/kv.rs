//! What a key/value store looks like on the wire and in files: the item payload, the
//! text escaping of the line protocol, the commands it carries, and the JSON map files.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use minidom::Element;
use xso::{AsXml, FromXml};

/// Namespace of the value payload.
pub const KV_NS: &str = "urn:roost:kv:0";

/// The payload of an item: `<value xmlns='urn:roost:kv:0'>TEXT</value>`. The item id is
/// the key, the text (whitespace kept as it is) the value.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = KV_NS, name = "value")]
pub struct Value {
    /// The value.
    #[xml(text)]
    pub text: String,
}

/// The payload element carrying `text`.
pub fn encode(text: &str) -> Element {
    let v = Value {
        text: text.to_owned(),
    };
    // A `<value/>` with text always serializes; the error type has no other case to report.
    xso::transform(&v).unwrap_or_else(|e| unreachable!("a <value/> is XML: {e}"))
}

/// The value a payload carries; `None` when it is not a `<value/>` of this namespace (an
/// item someone published with another payload: the key then counts as absent).
pub fn decode(payload: &Element) -> Option<String> {
    // Without xso's `pedantic` feature, unknown children would be dropped silently, and
    // with them any text around them.
    if payload.children().next().is_some() {
        return None;
    }
    xso::transform::<Value, _>(payload).ok().map(|v| v.text)
}

/// Checks that `s` can be a key (an item id) or value: XML 1.0 carries every character but
/// the control characters other than tab, newline and carriage return; keys must not be
/// empty either.
pub fn check_text(what: &str, s: &str) -> anyhow::Result<()> {
    if what == "key" && s.is_empty() {
        bail!("a key must not be empty");
    }
    if let Some(c) = s.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        bail!(
            "the {what} contains U+{:04X}, which XML cannot carry",
            c as u32
        );
    }
    Ok(())
}

/// `s` as one word of the line protocol: `\` as `\\`, tab, newline and carriage return as
/// `\t`, `\n`, `\r`, other control characters as `\xHH`, and (with `space`, for keys)
/// spaces as `\x20`, so that a key never splits a line.
pub fn escape(s: &str, space: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' ' if space => out.push_str("\\x20"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`].
pub fn unescape(s: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let hex: String = it.by_ref().take(2).collect();
                let b = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .with_context(|| format!("bad escape \\x{hex} (two hex digits expected)"))?;
                out.push(char::from(b));
            }
            Some(other) => bail!("unknown escape \\{other} (use \\\\, \\t, \\n, \\r or \\xHH)"),
            None => bail!("a lone \\ at the end of the line (write \\\\)"),
        }
    }
    Ok(out)
}

/// One change of the map, as the line protocol writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `put KEY VALUE`
    Put(String, String),
    /// `del KEY`
    Del(String),
}

impl Change {
    /// The key it changes.
    pub fn key(&self) -> &str {
        match self {
            Change::Put(k, _) | Change::Del(k) => k,
        }
    }

    /// The change as one line (without the newline): `put KEY VALUE` or `del KEY`.
    pub fn line(&self) -> String {
        match self {
            Change::Put(k, v) => format!("put {} {}", escape(k, true), escape(v, false)),
            Change::Del(k) => format!("del {}", escape(k, true)),
        }
    }
}

/// A line of the stdin protocol of `clone` and `write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send this change to the node.
    Write(Change),
    /// Write the `--dump` file now.
    Dump,
}

/// Parses one line: `put KEY VALUE` (the value is the rest of the line after one space,
/// possibly empty), `del KEY`, `dump`; blank lines and lines starting with `#` give `None`.
pub fn parse_line(line: &str) -> anyhow::Result<Option<Command>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let cmd = match verb {
        "put" => {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            let (k, v) = (unescape(k)?, unescape(v)?);
            check_text("key", &k)?;
            check_text("value", &v)?;
            Command::Write(Change::Put(k, v))
        }
        "del" => {
            if rest.contains(' ') {
                bail!("del takes one key (write a space in a key as \\x20)");
            }
            let k = unescape(rest)?;
            check_text("key", &k)?;
            Command::Write(Change::Del(k))
        }
        "dump" if rest.is_empty() => Command::Dump,
        _ => bail!("expected `put KEY VALUE`, `del KEY` or `dump`"),
    };
    Ok(Some(cmd))
}

/// The changes that turn `old` into `new`, in key order.
pub fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Change> {
    let mut out: Vec<Change> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| Change::Del(k.clone()))
        .collect();
    out.extend(
        new.iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| Change::Put(k.clone(), v.clone())),
    );
    out.sort_by(|a, b| a.key().cmp(b.key()));
    out
}

/// The map as a JSON object, keys sorted, one entry per line.
pub fn to_json(map: &BTreeMap<String, String>) -> String {
    // A map of strings always serializes.
    let mut s = serde_json::to_string_pretty(map).unwrap_or_else(|e| unreachable!("{e}"));
    s.push('\n');
    s
}

/// Writes `map` to `path` as [`to_json`] does, replacing the file atomically and durably.
pub fn save_map(path: &Path, map: &BTreeMap<String, String>) -> anyhow::Result<()> {
    roost_examples::replace_file(path, to_json(map).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A map written by [`save_map`]; `None` when the file does not exist.
pub fn load_map(path: &Path) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let map = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON object of strings (remove it to start afresh)",
            path.display()
        )
    })?;
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_text() {
        for text in [
            "",
            "plain",
            "  spaced\tout \n two lines ",
            "<&>'\" café ☃",
            "cr\r",
        ] {
            let e = encode(text);
            let wire = String::from(&e);
            let back: Element = wire.parse().unwrap();
            assert_eq!(decode(&back).as_deref(), Some(text), "via {wire}");
        }
        let e: Element = "<value xmlns='urn:roost:kv:0'>v</value>".parse().unwrap();
        assert_eq!(decode(&e).as_deref(), Some("v"));
    }

    #[test]
    fn foreign_payloads_are_not_values() {
        for xml in [
            "<value xmlns='urn:other'>v</value>",
            "<entry xmlns='http://www.w3.org/2005/Atom'/>",
            "<value xmlns='urn:roost:kv:0'><b/></value>",
        ] {
            let e: Element = xml.parse().unwrap();
            assert_eq!(decode(&e), None, "{xml}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        for s in [
            "",
            "a b",
            "back\\slash",
            "tab\tnl\ncr\r",
            "bell\u{7}del\u{7f}",
            "☃ x",
        ] {
            assert_eq!(unescape(&escape(s, true)).unwrap(), s);
            assert_eq!(unescape(&escape(s, false)).unwrap(), s);
            assert!(!escape(s, true).contains([' ', '\n', '\r']));
        }
        assert!(unescape("\\q").is_err());
        assert!(unescape("end\\").is_err());
        assert!(unescape("\\x4").is_err());
        assert!(unescape("\\xzz").is_err());
    }

    #[test]
    fn lines_parse() {
        let put = |k: &str, v: &str| Some(Command::Write(Change::Put(k.into(), v.into())));
        assert_eq!(parse_line("put k v w ").unwrap(), put("k", "v w "));
        assert_eq!(parse_line("put k").unwrap(), put("k", ""));
        assert_eq!(parse_line("put a\\x20b x\\ny").unwrap(), put("a b", "x\ny"));
        assert_eq!(
            parse_line("del k\r").unwrap(),
            Some(Command::Write(Change::Del("k".into())))
        );
        assert_eq!(parse_line("dump").unwrap(), Some(Command::Dump));
        assert_eq!(parse_line("# note").unwrap(), None);
        assert_eq!(parse_line("   ").unwrap(), None);
        for bad in [
            "put",
            "put  v",
            "del a b",
            "get k",
            "put k \\x01",
            "dump now",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        // What `Change::line` prints parses back to the same change.
        let c = Change::Put("k 1".into(), "two\nlines \\ ".into());
        assert_eq!(parse_line(&c.line()).unwrap(), Some(Command::Write(c)));
    }

    #[test]
    fn diff_lists_every_change_in_key_order() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let old = m(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let new = m(&[("a", "1"), ("b", "9"), ("d", "4")]);
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Put("b".into(), "9".into()),
                Change::Del("c".into()),
                Change::Put("d".into(), "4".into()),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn map_files_round_trip() {
        let dir = std::env::temp_dir().join(format!("roost-kv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("map.json");
        assert_eq!(load_map(&p).unwrap(), None);
        let mut m = BTreeMap::new();
        m.insert("k\n".to_owned(), "\"v\"\t☃".to_owned());
        save_map(&p, &m).unwrap();
        assert_eq!(load_map(&p).unwrap(), Some(m));
        std::fs::write(&p, "[1]").unwrap();
        assert!(load_map(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
