//! A directory as object storage: bucket = sub-directory, key = relative
//! path. Keys and buckets are validated before they reach here, so no key
//! can leave the root (no `..`, no leading `/`).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ByteRange, ListedObject, ObjectBytes, ObjectMeta, ObjectStore, StorageError};
use crate::manifest::names;
use crate::manifest::uri::encode_key;

pub struct LocalStore {
    /// Absolute, so `file://` URLs point at the same place from anywhere.
    root: PathBuf,
    /// Where objects are written before they are renamed into place: a
    /// directory of the root that no bucket can be named (bucket names start
    /// with a letter or digit), so no object is ever mistaken for one.
    tmp_dir: PathBuf,
    /// Starts the name of every temporary file this store writes, so those
    /// of earlier runs are told from its own.
    run: String,
}

/// The directory of the root that holds objects being written.
pub const TMP_DIR: &str = ".record-index-tmp";

impl LocalStore {
    /// Opens the store at `root` and removes the temporary files that
    /// writes cut off by a crash of an earlier run left there.
    pub fn new(root: PathBuf) -> std::io::Result<LocalStore> {
        let opened = std::time::SystemTime::now();
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let tmp_dir = root.join(TMP_DIR);
        create_dirs_durably(&tmp_dir)?;
        let store = LocalStore {
            root,
            tmp_dir,
            run: uuid::Uuid::new_v4().simple().to_string(),
        };
        let removed = store.remove_leftovers(opened)?;
        if removed > 0 {
            tracing::info!(
                root = %store.root.display(),
                removed,
                "removed temporary files that interrupted writes left"
            );
        }
        Ok(store)
    }

    /// Removes the temporary files of other runs last written before
    /// `before`: a write another process has in flight right now is left
    /// alone. Returns how many were removed.
    fn remove_leftovers(&self, before: std::time::SystemTime) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.tmp_dir)? {
            let entry = entry?;
            let ours = entry.file_name().to_string_lossy().starts_with(&self.run);
            let leftover = match entry.metadata() {
                Ok(metadata) => !ours && metadata.is_file() && metadata.modified()? < before,
                // Renamed into place meanwhile.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
                Err(err) => return Err(err),
            };
            if leftover {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(removed)
    }

    fn path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Opens object `key` of `bucket` to be served over HTTP, where the
    /// names come from a URL: they are checked again here, and the file
    /// must be a regular file whose real path lies inside the store (a
    /// symbolic link out of it, a directory, a FIFO or a file being written
    /// in [`TMP_DIR`] is `NotFound`, so nothing of the rest of the file
    /// system shows).
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<OpenedObject, StorageError> {
        if !names::is_bucket(bucket) || names::check_object_key(key).is_err() {
            return Err(StorageError::NotFound);
        }
        let (root, path) = (self.root.clone(), self.path(bucket, key));
        blocking(move || open_inside(&root, &path)).await
    }
}

/// An object opened for reading, with what HTTP says of it.
#[derive(Debug)]
pub struct OpenedObject {
    pub file: std::fs::File,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// Opens `path` if it is a regular file inside `root` once every symbolic
/// link is resolved. The check is of the file actually opened (its
/// descriptor's path where `/proc` has it), so a link swapped in between a
/// check and the open cannot lead out.
fn open_inside(root: &Path, path: &Path) -> std::io::Result<OpenedObject> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO would block the open until a writer came.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| path.canonicalize())?;
    let inside = real.starts_with(root) && !real.starts_with(root.join(TMP_DIR));
    if !metadata.is_file() || !inside {
        return Err(Error::from(ErrorKind::NotFound));
    }
    Ok(OpenedObject {
        file,
        size: metadata.len(),
        modified: metadata.modified()?,
    })
}

fn io_error(err: std::io::Error) -> StorageError {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound => StorageError::NotFound,
        // A retry cannot cure a name or a path the file system refuses.
        ErrorKind::InvalidFilename
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::AlreadyExists
        | ErrorKind::PermissionDenied
        | ErrorKind::ReadOnlyFilesystem => StorageError::Rejected(err.to_string()),
        _ => StorageError::Transient(err.to_string()),
    }
}

/// Creates the missing directories above `dir` and makes each new entry
/// durable in its parent, so an acknowledged object cannot vanish with a
/// directory that existed only in the page cache.
fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    while !current.exists() {
        missing.push(current);
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

/// Calls `visit` with every entry below `root` that is not a directory.
/// Symbolic links are not followed: only the store's own tree is walked.
fn walk_files(
    root: &Path,
    mut visit: impl FnMut(&std::fs::DirEntry, &std::fs::Metadata) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                // Removed since the directory was read.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                visit(&entry, &metadata)?;
            }
        }
    }
    Ok(())
}

/// Writes through a temporary file and a rename, with fsyncs, so a reader
/// sees the old object or the whole new one, and a crash loses neither.
fn write_atomically(path: &Path, body: &[u8], tmp: &Path) -> std::io::Result<()> {
    let dir = path.parent().expect("object paths have a parent");
    create_dirs_durably(dir)?;
    // Made again should someone have removed it while the store is open.
    create_dirs_durably(tmp.parent().expect("temporary files have a parent"))?;
    let result = (|| {
        let mut file = std::fs::File::create(tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        std::fs::rename(tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StorageError::Transient(err.to_string()))?
        .map_err(io_error)
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _content_type: &str,
    ) -> Result<(), StorageError> {
        let path = self.path(bucket, key);
        let tmp = self
            .tmp_dir
            .join(format!("{}-{}", self.run, uuid::Uuid::new_v4().simple()));
        blocking(move || write_atomically(&path, &body, &tmp)).await
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectBytes, StorageError> {
        let path = self.path(bucket, key);
        blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = std::fs::File::open(path)?;
            let total_len = file.metadata()?.len();
            let (start, len) = match range {
                None => (0, total_len),
                Some(ByteRange::First(n)) => (0, n.min(total_len)),
                Some(ByteRange::Last(n)) => (total_len.saturating_sub(n), n.min(total_len)),
            };
            file.seek(SeekFrom::Start(start))?;
            let mut body = Vec::with_capacity(len as usize);
            file.take(len).read_to_end(&mut body)?;
            Ok(ObjectBytes {
                body: Bytes::from(body),
                total_len,
            })
        })
        .await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StorageError> {
        let path = self.path(bucket, key);
        blocking(move || {
            let metadata = std::fs::metadata(path)?;
            let modified = metadata.modified()?;
            let since_epoch = modified
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok(ObjectMeta {
                size: metadata.len(),
                last_modified: since_epoch.as_micros() as i64,
            })
        })
        .await
    }

    async fn check(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        blocking(move || std::fs::metadata(root).map(|_| ())).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let root = self.root.join(bucket);
        let prefix = prefix.to_string();
        blocking(move || {
            let mut found = Vec::new();
            walk_files(&root, |entry, metadata| {
                let path = entry.path();
                let Ok(relative) = path.strip_prefix(&root) else {
                    return Ok(());
                };
                let key: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let key = key.join("/");
                if !key.starts_with(&prefix) {
                    return Ok(());
                }
                let modified = metadata
                    .modified()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                found.push(ListedObject {
                    key,
                    meta: ObjectMeta {
                        size: metadata.len(),
                        last_modified: modified.as_micros() as i64,
                    },
                });
                Ok(())
            })?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        let path = self.path(bucket, key);
        blocking(move || std::fs::remove_file(path)).await
    }

    fn url(&self, bucket: &str, key: &str) -> String {
        let root = encode_key(self.root.to_string_lossy().trim_start_matches('/'));
        format!("file:///{root}/{bucket}/{}", encode_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("objects")).unwrap();
        store
            .put("b1", "a/b c.m3u8", Bytes::from_static(b"#EXTM3U\n"), "x")
            .await
            .unwrap();
        assert_eq!(
            store.get("b1", "a/b c.m3u8", None).await.unwrap().body,
            Bytes::from_static(b"#EXTM3U\n")
        );
        let head = store
            .get("b1", "a/b c.m3u8", Some(ByteRange::First(3)))
            .await
            .unwrap();
        assert_eq!((head.body.as_ref(), head.total_len), (&b"#EX"[..], 8));
        let tail = store
            .get("b1", "a/b c.m3u8", Some(ByteRange::Last(100)))
            .await
            .unwrap();
        assert_eq!(tail.body.len(), 8);
        let url = store.url("b1", "a/b c.m3u8");
        assert!(
            url.starts_with("file:///") && url.ends_with("/b1/a/b%20c.m3u8"),
            "{url}"
        );
        let listed = store.list("b1", "a/").await.unwrap();
        assert_eq!(
            listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            vec!["a/b c.m3u8"]
        );
        assert!(store.list("b1", "z").await.unwrap().is_empty());
        assert!(store.list("nobucket", "").await.unwrap().is_empty());
        store.delete("b1", "a/b c.m3u8").await.unwrap();
        // The longest name the file system takes works; a longer one is
        // refused for good rather than retried.
        let longest = format!("{}.m3u8", "n".repeat(250));
        store
            .put("b1", &longest, Bytes::from_static(b"x"), "x")
            .await
            .unwrap();
        let too_long = format!("{}.m3u8", "n".repeat(251));
        let refused = store
            .put("b1", &too_long, Bytes::from_static(b"x"), "x")
            .await;
        assert!(
            matches!(refused, Err(StorageError::Rejected(_))),
            "{refused:?}"
        );
        let left = std::fs::read_dir(dir.path().join("objects").join(TMP_DIR))
            .unwrap()
            .count();
        assert_eq!(left, 0, "a failed write left its temporary file");
        assert_eq!(
            store.get("b1", "a/b c.m3u8", None).await,
            Err(StorageError::NotFound)
        );
    }

    #[tokio::test]
    async fn objects_are_opened_inside_the_store_only() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("objects")).unwrap();
        let root = dir.path().join("objects");
        store
            .put("b01", "live/a.ts", Bytes::from_static(b"media"), "x")
            .await
            .unwrap();
        std::fs::write(dir.path().join("secret"), b"secret").unwrap();
        std::fs::write(root.join(TMP_DIR).join("partial"), b"half").unwrap();
        symlink(dir.path().join("secret"), root.join("b01/live/out.ts")).unwrap();
        symlink(dir.path(), root.join("b01/up")).unwrap();
        symlink(root.join("b01/live/a.ts"), root.join("b01/live/same.ts")).unwrap();
        symlink(
            root.join(TMP_DIR).join("partial"),
            root.join("b01/live/tmp.ts"),
        )
        .unwrap();
        let fifo = std::ffi::CString::new(root.join("b01/live/fifo.ts").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let opened = store.open_object("b01", "live/a.ts").await.unwrap();
        assert_eq!(opened.size, 5);
        let linked = store.open_object("b01", "live/same.ts").await.unwrap();
        assert_eq!(linked.size, 5, "a link inside the store is followed");
        for key in [
            "live/out.ts",
            "up/secret",
            "live/tmp.ts",
            "live/fifo.ts",
            "live",
            "live/none.ts",
            "../secret",
            "live/../a.ts",
        ] {
            let refused = store.open_object("b01", key).await;
            assert_eq!(refused.unwrap_err(), StorageError::NotFound, "{key}");
        }
        for bucket in [TMP_DIR, "..", "B01"] {
            let refused = store.open_object(bucket, "partial").await;
            assert_eq!(refused.unwrap_err(), StorageError::NotFound, "{bucket}");
        }
    }

    #[test]
    fn leftovers_of_earlier_runs_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("objects");
        let tmp_dir = root.join(TMP_DIR);
        std::fs::create_dir_all(root.join("b1/live")).unwrap();
        std::fs::create_dir_all(&tmp_dir).unwrap();
        let id = || uuid::Uuid::new_v4().simple().to_string();
        let leftovers = [
            tmp_dir.join(format!("{}-{}", id(), id())),
            tmp_dir.join(format!("{}-{}", id(), id())),
        ];
        // An object whose name looks like a temporary file is an object.
        let object = root.join(format!("b1/live/.tmp-{}", id()));
        for path in leftovers.iter().chain([&object]) {
            std::fs::write(path, b"x").unwrap();
        }
        let store = LocalStore::new(root.clone()).unwrap();
        assert!(leftovers.iter().all(|path| !path.exists()));
        assert!(object.exists());
        let ours = tmp_dir.join(format!("{}-{}", store.run, id()));
        std::fs::write(&ours, b"x").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        assert_eq!(store.remove_leftovers(later).unwrap(), 0);
        assert!(ours.exists(), "a write of this run was removed");
    }
}
