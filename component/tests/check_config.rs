//! `roost --check-config`, and the packaged `/etc/roost/roost.toml` (packaging/roost.toml)
//! checked against the settings the binary knows, so that the two cannot drift apart.

use clap::CommandFactory;
use roost_component::config::Cli;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn packaged() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/roost.toml")
}

/// `roost ARGS` with no `ROOST_*` variable inherited.
fn roost(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roost"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ROOST_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).output().expect("run roost")
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The TOML key of every setting: the long flags but `--config` and `--check-config`.
fn setting_keys() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !matches!(*l, "config" | "check-config" | "help" | "version"))
        .map(|l| match l {
            // The one flag whose key differs: `--relay` repeats, `relays` is a list.
            "relay" => "relays".to_owned(),
            l => l.replace('-', "_"),
        })
        .collect()
}

/// `(key, commented out)` for each `key = value` line, set or commented out.
fn settings_in(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| {
            let (commented, rest) = match l.strip_prefix('#') {
                Some(r) => (true, r.trim_start()),
                None => (false, l),
            };
            let (key, _) = rest.split_once(" = ")?;
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| (key.to_owned(), commented))
        })
        .collect()
}

#[test]
fn packaged_config_names_every_setting_once() {
    let text = std::fs::read_to_string(packaged()).unwrap();
    let found = settings_in(&text);
    for key in setting_keys() {
        let n = found.iter().filter(|(k, _)| *k == key).count();
        assert_eq!(
            n, 1,
            "packaging/roost.toml has `{key} = …` {n} times, want once"
        );
    }
    for (key, _) in &found {
        assert!(
            setting_keys().contains(key),
            "packaging/roost.toml names `{key}`, which is not a setting"
        );
    }
}

#[test]
fn packaged_config_is_valid_with_every_setting_set() {
    let text = std::fs::read_to_string(packaged()).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(r) if !settings_in(l).is_empty() => r.trim_start().to_owned(),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roost.toml");
    std::fs::write(&path, uncommented).unwrap();
    let out = roost(&["--check-config", "--config", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let said = lines(&out.stdout);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("configuration OK"), "{said:?}");
}

#[test]
fn packaged_config_as_shipped_asks_for_the_jid() {
    // As installed, only the domain is missing (and the secret file, outside the package).
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let config = packaged();
    let base = [
        "--check-config",
        "--config",
        config.to_str().unwrap(),
        "--secret-file",
        secret.to_str().unwrap(),
    ];
    let out = roost(&base);
    assert_eq!(out.status.code(), Some(2));
    let said = lines(&out.stderr);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("jid"), "{said:?}");
    let mut with_jid = base.to_vec();
    with_jid.extend(["--jid", "pubsub.example.org"]);
    assert!(roost(&with_jid).status.success());
}

#[test]
fn check_config_names_the_bad_setting() {
    for (args, setting) in [
        (&["--max-items-per-node", "0"][..], "max_items_per_node"),
        (&["--log", "roost=bogus=1"][..], "log"),
        (&["--server", "nope"][..], "server"),
        (&["--secret-file", "/nonexistent/secret"][..], "secret_file"),
    ] {
        let mut all = vec!["--check-config", "--jid", "pubsub.example.org"];
        if setting != "secret_file" {
            all.extend(["--secret", "s"]);
        }
        all.extend_from_slice(args);
        let out = roost(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let said = lines(&out.stderr);
        assert_eq!(said.len(), 1, "{args:?}: {said:?}");
        assert!(said[0].contains(setting), "{args:?}: {said:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
