//! Who holds a data directory: sled locks its `db` file exclusively (`flock`) while a
//! database is open, so a second process (`roost export` next to a running Roost) cannot
//! open it. Linux lists the holders of such locks in `/proc/locks`, with their pid.

use std::path::Path;

/// The pid holding sled's lock on the database in `sled_dir` (its `db` file), when the
/// system says (Linux `/proc/locks`); `None` when nobody does or it cannot be told.
pub fn holder(sled_dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(sled_dir.join("db")).ok()?;
    let (dev, ino) = (meta.dev(), meta.ino());
    // glibc's encoding of dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 13358 fe:00:7448678 0 EOF"
        let f: Vec<&str> = line.split_whitespace().collect();
        let (pid, id) = (f.get(4)?, f.get(5)?);
        let mut parts = id.split(':');
        let maj = u64::from_str_radix(parts.next()?, 16).ok()?;
        let min = u64::from_str_radix(parts.next()?, 16).ok()?;
        let i: u64 = parts.next()?.parse().ok()?;
        (maj == major && min == minor && i == ino)
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// The data directory is in use, if it is: the one line to show.
pub fn in_use(data_dir: &Path) -> Option<String> {
    let sled_dir = data_dir.join(crate::layout::V2);
    let pid = holder(&sled_dir)?;
    Some(in_use_message(data_dir, Some(pid)))
}

/// The line saying that `data_dir` is held, by `pid` when known, and what to do.
pub fn in_use_message(data_dir: &Path, pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(
            "data dir {} is in use by a running Roost (pid {pid}): stop it first, or take an \
             online backup with `kill -USR1 {pid}` and use that",
            data_dir.display()
        ),
        None => format!(
            "data dir {} is in use by a running Roost (another process holds its lock): \
             stop it first, or take an online backup with SIGUSR1 and use that",
            data_dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_database_names_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let _store = crate::SledStore::open(dir.path()).unwrap();
        assert_eq!(
            holder(&dir.path().join(crate::layout::V2)),
            Some(std::process::id())
        );
        let line = in_use(dir.path()).unwrap();
        assert!(line.contains("in use by a running Roost (pid"), "{line}");
    }

    #[test]
    fn a_free_database_has_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::SledStore::open(dir.path()).unwrap());
        // sled's flusher may keep the lock a moment after the drop.
        let t = std::time::Instant::now();
        while holder(&dir.path().join(crate::layout::V2)).is_some() {
            assert!(
                t.elapsed() < crate::LOCK_PATIENCE,
                "the lock outlived the store"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(in_use(dir.path()), None);
    }
}
