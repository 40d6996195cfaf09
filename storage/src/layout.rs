//! Where the database of each schema version lives inside the data directory.
//!
//! ```text
//! DATA_DIR/v2/                     the schema-2 sled database (what Roost opens)
//! DATA_DIR/v2/roost-commits        its commit log ([`crate::wal`]), beside sled's files
//! DATA_DIR/v2.tmp/                 a migration under way (removed and redone if found)
//! DATA_DIR/{conf,db,snap.*,blobs}  a schema-1 database, as version-1 Roosts wrote it
//! ```
//!
//! A migration writes a new database rather than rewriting the old one in place: sled 0.34
//! never shrinks its page table, so a database that once held 22 M keys would keep their
//! memory after they were deleted. The new database is built in `v2.tmp`, flushed, and
//! renamed to `v2` (the commit point); only then are the version-1 files removed.

use roost_nodes::StoreError;
use std::path::{Path, PathBuf};

/// The directory of the schema-2 database.
pub const V2: &str = "v2";
/// Where a migration builds it.
pub const V2_TMP: &str = "v2.tmp";
/// Marks a `v2` built from the version-1 files beside it, which may then be removed.
pub const FROM_V1: &str = "migrated-from-v1";

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}

/// True when `dir` holds a version-1 sled database (sled's files at its top level).
pub fn holds_v1(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

/// Makes the data directory ready and returns the directory to open sled in: migrates a
/// version-1 database first, finishes an interrupted migration's clean-up, and removes a
/// migration that did not complete (it is redone).
pub fn prepare(dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let v2 = dir.join(V2);
    let tmp = dir.join(V2_TMP);
    if tmp.exists() {
        tracing::warn!("{} is an unfinished migration: removing it", tmp.display());
        std::fs::remove_dir_all(&tmp).map_err(|e| io("cannot remove", &tmp, e))?;
    }
    if v2.exists() {
        if v2.join(FROM_V1).exists() {
            remove_v1(dir)?;
            std::fs::remove_file(v2.join(FROM_V1))
                .map_err(|e| io("cannot remove", &v2.join(FROM_V1), e))?;
        } else if holds_v1(dir) {
            tracing::warn!(
                "{} holds both a version-2 database ({V2}/, used) and version-1 files \
                 (left alone: remove them if they are not needed)",
                dir.display()
            );
        }
        return Ok(v2);
    }
    if holds_v1(dir) {
        crate::migrate::v1_to_v2(dir, &tmp)?;
        sync_dir(&tmp)?;
        std::fs::rename(&tmp, &v2).map_err(|e| io("cannot rename to v2:", &tmp, e))?;
        sync_dir(dir)?;
        remove_v1(dir)?;
        std::fs::remove_file(v2.join(FROM_V1))
            .map_err(|e| io("cannot remove", &v2.join(FROM_V1), e))?;
    }
    Ok(v2)
}

/// Makes a directory's entries (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))
}

/// Removes sled's version-1 files from the top of the data directory.
fn remove_v1(dir: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io("cannot read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("cannot read", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name == "blobs" && path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| io("cannot remove", &path, e))?;
        } else if name == "conf" || name == "db" || name.starts_with("snap.") {
            std::fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
        }
    }
    tracing::info!("removed the version-1 files from {}", dir.display());
    Ok(())
}
