//! The content-addressed object folder beside the database.
//!
//! Large files (data sets, checkpoints) live here under `ab/cdef…` named by a blake3 hash; the
//! database holds only the hash and the relative path. Writes go to a temporary file first and are
//! renamed into place, so concurrent runs writing the same object never see a partial file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "object {path} is corrupt: its content hashes to {actual}, but it was stored as {expected}"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("object {hash} is missing from {folder}")]
    Missing { hash: String, folder: PathBuf },
}

/// Where an object was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub hash: String,
    /// Path relative to the object folder.
    pub relative_path: String,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ObjectStore {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ObjectError + '_ {
    move |source| ObjectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ObjectStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn relative_path(hash: &str) -> String {
        format!("{}/{}", &hash[..2], &hash[2..])
    }

    pub fn path_of(&self, hash: &str) -> PathBuf {
        self.root.join(Self::relative_path(hash))
    }

    /// Stores `bytes` under the blake3 hash of the bytes themselves.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<StoredObject, ObjectError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        self.put_with_hash(&hash, bytes)
    }

    /// Stores `bytes` under a hash computed by the caller (checkpoints hash their tensor content,
    /// not their file bytes). An object already present is left as it is.
    pub fn put_with_hash(&self, hash: &str, bytes: &[u8]) -> Result<StoredObject, ObjectError> {
        let path = self.path_of(hash);
        let relative_path = Self::relative_path(hash);
        if !path.exists() {
            let dir = path.parent().expect("objects live in a subfolder");
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            remove_orphaned_writes(dir, &hash[2..]);
            // Named by host and pid: on a folder that several nodes mount, a pid alone names
            // no one process, and only this host can tell whether its own writers live.
            let tmp = dir.join(format!(
                ".{}.{}.{}.tmp",
                &hash[2..],
                this_host(),
                std::process::id()
            ));
            let written = fs::File::create(&tmp)
                .and_then(|mut file| {
                    file.write_all(bytes)?;
                    file.sync_all()
                })
                .map_err(io_err(&tmp))
                .and_then(|()| {
                    crate::faults::point("object-written");
                    fs::rename(&tmp, &path).map_err(io_err(&path))
                });
            if let Err(e) = written {
                // A half-written file would hold space a full disk needs back (and be left for
                // nobody); the object is simply not there, and a rerun writes it again.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            crate::faults::point("object-stored");
        }
        Ok(StoredObject {
            hash: hash.to_string(),
            relative_path,
            bytes: bytes.len() as u64,
        })
    }

    /// Reads an object stored by [`put_bytes`](Self::put_bytes), verifying its content hash.
    pub fn get_verified(&self, hash: &str) -> Result<Vec<u8>, ObjectError> {
        let bytes = self.get_unverified(hash)?;
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if actual != hash {
            return Err(ObjectError::HashMismatch {
                path: self.path_of(hash),
                expected: hash.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads an object whose hash is not over its bytes; the caller verifies its own way.
    pub fn get_unverified(&self, hash: &str) -> Result<Vec<u8>, ObjectError> {
        let path = self.path_of(hash);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ObjectError::Missing {
                hash: hash.to_string(),
                folder: self.root.clone(),
            }),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

/// This host's name as a temporary object file carries it (a file name has no `/`).
fn this_host() -> String {
    super::this_host().replace('/', "_")
}

/// Removes temporary files of the object `name` (in `dir`) left by writers of this host that
/// were killed before they could rename or remove them. A resumed run writes the same objects
/// again, so its first write of each one clears what the killed run left. A live writer's file
/// is kept, and so is every file of another host, whose processes this host cannot see.
fn remove_orphaned_writes(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    let here = this_host();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(writer) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
        else {
            continue;
        };
        // `host.pid`; a bare `pid` is from a lab before hosts were named, on this host.
        let (host, pid) = writer.rsplit_once('.').unwrap_or((here.as_str(), writer));
        let Ok(pid) = pid.parse::<i64>() else {
            continue;
        };
        if host == here && !super::process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_corruption_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path());
        let stored = store.put_bytes(b"hello").unwrap();
        assert_eq!(stored.bytes, 5);
        assert_eq!(store.get_verified(&stored.hash).unwrap(), b"hello");
        // Storing again is a no-op with the same address.
        assert_eq!(store.put_bytes(b"hello").unwrap(), stored);
        fs::write(store.path_of(&stored.hash), b"jello").unwrap();
        let err = store.get_verified(&stored.hash).unwrap_err();
        assert!(matches!(err, ObjectError::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&stored.hash));
        let missing = store.get_verified(&"0".repeat(64)).unwrap_err();
        assert!(matches!(missing, ObjectError::Missing { .. }));
    }

    #[test]
    fn a_killed_writers_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path());
        let hash = blake3::hash(b"weights").to_hex().to_string();
        let folder = store.path_of(&hash).parent().unwrap().to_path_buf();
        fs::create_dir_all(&folder).unwrap();
        // No process has pid 2^31 - 1 (the kernel's limit is 2^22); pid 1 always runs.
        let here = this_host();
        let dead = folder.join(format!(".{}.{here}.2147483647.tmp", &hash[2..]));
        let dead_unnamed = folder.join(format!(".{}.2147483647.tmp", &hash[2..]));
        let live = folder.join(format!(".{}.{here}.1.tmp", &hash[2..]));
        let elsewhere = folder.join(format!(".{}.node-7.lab.2147483647.tmp", &hash[2..]));
        let other = folder.join(format!(".ffff.{here}.2147483647.tmp"));
        for file in [&dead, &dead_unnamed, &live, &elsewhere, &other] {
            fs::write(file, b"half").unwrap();
        }
        store.put_bytes(b"weights").unwrap();
        assert!(!dead.exists() && !dead_unnamed.exists());
        assert!(live.exists(), "a live writer's file is its own");
        assert!(
            elsewhere.exists(),
            "another host's writer may live: only that host can tell"
        );
        assert!(
            other.exists(),
            "another object's file waits for that object's write"
        );
    }
}
