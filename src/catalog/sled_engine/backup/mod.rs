//! Backup and restore of the catalog directory: [`backup`] exports every
//! sled collection into one file of the [`format`](mod@format), and
//! [`restore`] reads such a file back into a new catalog with
//! `sled::Db::import`. The catalog must not be open elsewhere: sled's lock
//! is what makes the copy consistent.

pub mod format;

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::{is_locked, open_waiting};
use format::{Decoder, Encoder, Header, Item, verify};
pub use format::{FormatError, Summary};

/// Sled's page cache while restoring: the catalog is written once, in order.
const RESTORE_CACHE_BYTES: u64 = 64 << 20;

/// A failed backup or restore, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no catalog in {}: {reason}", .path.display())]
    NoCatalog { path: PathBuf, reason: &'static str },
    #[error(
        "the catalog in {} is in use, most likely by a running record-index: \
         stop the service first, then run this again",
        .0.display()
    )]
    InUse(PathBuf),
    #[error("cannot open the catalog in {}: {source}", .path.display())]
    Open { path: PathBuf, source: sled::Error },
    #[error("cannot read the catalog in {}: {message}", .path.display())]
    Export { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a usable catalog backup: {source}", .path.display())]
    Format { path: PathBuf, source: FormatError },
    #[error(
        "{} already holds a catalog; restore only into a new data directory \
         (nothing was changed)",
        .0.display()
    )]
    CatalogExists(PathBuf),
    #[error("restoring into {} failed, no catalog was left there: {message}", .path.display())]
    Import { path: PathBuf, message: String },
}

/// The catalog of a data directory.
pub fn catalog_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("catalog")
}

/// Writes every collection of the catalog in `data_dir` to `out`, through
/// `out` + `.tmp`, fsynced and then renamed, so `out` is either the old
/// file or the whole new one. The catalog must not be open elsewhere: sled
/// locks it, and holding that lock is what makes the copy consistent.
pub fn backup(
    data_dir: &Path,
    out: &Path,
    cache_capacity_bytes: u64,
) -> Result<Summary, BackupError> {
    let dir = catalog_dir(data_dir);
    existing_catalog(data_dir, &dir)?;
    let db = sled_config(&dir, cache_capacity_bytes)
        .open()
        .map_err(|source| open_error(&dir, source))?;
    let tmp = tmp_path(out);
    let written = write_backup(&db, &dir, &tmp);
    drop(db);
    let summary = match written {
        Ok(summary) => summary,
        Err(err) => {
            let _ = fs::remove_file(&tmp);
            return Err(err);
        }
    };
    if let Err(source) = fs::rename(&tmp, out) {
        let _ = fs::remove_file(&tmp);
        return Err(BackupError::Write {
            path: out.to_path_buf(),
            source,
        });
    }
    // The rename itself is durable once the directory is.
    sync_parent(out).map_err(|source| BackupError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(summary)
}

/// Restores a backup into a new catalog in `data_dir`. Refuses when the
/// catalog directory exists and is not empty; reads and checks the whole
/// file before creating anything, and removes what it created when it
/// fails after that.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Summary, BackupError> {
    let dir = catalog_dir(data_dir);
    let had_empty_dir = match fs::read_dir(&dir) {
        Ok(mut entries) => match entries.next() {
            None => true,
            Some(_) => return Err(BackupError::CatalogExists(dir)),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        // A file, or a directory we may not list: not ours to replace.
        Err(_) => return Err(BackupError::CatalogExists(dir)),
    };
    let format = |source| BackupError::Format {
        path: from.to_path_buf(),
        source,
    };
    let (header, summary) = verify(open_backup(from)?).map_err(format)?;

    let had_data_dir = data_dir.exists();
    fs::create_dir_all(&dir).map_err(|source| BackupError::Write {
        path: dir.clone(),
        source,
    })?;
    // sled panics on an I/O error during import, and asserts its own state
    // when ids are generated: either way, nothing may be left behind.
    let imported = catch_unwind(AssertUnwindSafe(|| {
        import_into(from, &dir, &header, &summary)
    }))
    .unwrap_or_else(|panic| Err(panic_message(panic)));
    match imported {
        Ok(()) => Ok(summary),
        Err(message) => {
            let _ = fs::remove_dir_all(&dir);
            if had_empty_dir {
                let _ = fs::create_dir(&dir);
            } else if !had_data_dir {
                let _ = fs::remove_dir(data_dir);
            }
            Err(BackupError::Import { path: dir, message })
        }
    }
}

/// The settings the service opens its catalog with (see
/// [`super::SledCatalog::open`]).
fn sled_config(dir: &Path, cache_capacity_bytes: u64) -> sled::Config {
    sled::Config::new()
        .path(dir)
        .cache_capacity(cache_capacity_bytes)
        .mode(sled::Mode::LowSpace)
}

/// sled creates a database wherever it is pointed, so the catalog's
/// files are looked for first.
fn existing_catalog(data_dir: &Path, dir: &Path) -> Result<(), BackupError> {
    let missing = |path: &Path, reason| {
        Err(BackupError::NoCatalog {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !data_dir.is_dir() {
        return missing(data_dir, "the data directory does not exist");
    }
    if !dir.is_dir() {
        return missing(
            data_dir,
            "it has no catalog directory (is it the service's data_dir?)",
        );
    }
    if !dir.join("db").is_file() || !dir.join("conf").is_file() {
        return missing(dir, "the directory holds no sled database");
    }
    Ok(())
}

fn open_error(dir: &Path, source: sled::Error) -> BackupError {
    if is_locked(&source) {
        return BackupError::InUse(dir.to_path_buf());
    }
    BackupError::Open {
        path: dir.to_path_buf(),
        source,
    }
}

/// Opens a database this process has just closed.
fn reopen(config: &sled::Config) -> sled::Result<sled::Db> {
    open_waiting(config, std::time::Duration::from_secs(10))
}

fn tmp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    out.with_file_name(name)
}

fn write_backup(db: &sled::Db, dir: &Path, tmp: &Path) -> Result<Summary, BackupError> {
    let write = |source| BackupError::Write {
        path: tmp.to_path_buf(),
        source,
    };
    let read = |message: String| BackupError::Export {
        path: dir.to_path_buf(),
        message,
    };
    // Every id handed out so far is below this one.
    let next_id = db.generate_id().map_err(|err| read(err.to_string()))?;
    let file = File::create(tmp).map_err(write)?;
    let mut encoder = Encoder::new(BufWriter::new(file), &Header { next_id }).map_err(write)?;
    // export's iterators panic on a read error.
    let exported = catch_unwind(AssertUnwindSafe(|| -> io::Result<()> {
        for (kind, name, entries) in db.export() {
            encoder.collection(&kind, &name)?;
            for entry in entries {
                encoder.entry(&entry)?;
            }
        }
        Ok(())
    }));
    match exported {
        Ok(result) => result.map_err(write)?,
        Err(panic) => return Err(read(panic_message(panic))),
    }
    let (writer, summary) = encoder.finish().map_err(write)?;
    let file = writer.into_inner().map_err(|err| write(err.into_error()))?;
    file.sync_all().map_err(write)?;
    Ok(summary)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

fn open_backup(from: &Path) -> Result<BufReader<File>, BackupError> {
    File::open(from)
        .map(BufReader::new)
        .map_err(|source| BackupError::Read {
            path: from.to_path_buf(),
            source,
        })
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "sled panicked".into())
}

/// Feeds one collection's entries to `sled::Db::import`, stopping at the
/// next collection (kept for the caller) or at the end.
struct Entries<'a, R: Read> {
    decoder: &'a mut Decoder<R>,
    next_collection: &'a mut Option<Item>,
    error: &'a mut Option<FormatError>,
}

impl<R: Read> Iterator for Entries<'_, R> {
    type Item = Vec<Vec<u8>>;

    fn next(&mut self) -> Option<Vec<Vec<u8>>> {
        match self.decoder.next_item() {
            Ok(Some(Item::Entry(parts))) => Some(parts),
            Ok(Some(collection)) => {
                *self.next_collection = Some(collection);
                None
            }
            Ok(None) => None,
            Err(err) => {
                *self.error = Some(err);
                None
            }
        }
    }
}

/// Imports the (already verified) file into a new database in `dir`, then
/// moves sled's id generator past every id the backed-up catalog had
/// handed out: export does not carry it, and the catalog's stream ids come
/// from it.
fn import_into(from: &Path, dir: &Path, header: &Header, summary: &Summary) -> Result<(), String> {
    let db = sled_config(dir, RESTORE_CACHE_BYTES)
        .create_new(true)
        .open()
        .map_err(|err| format!("cannot create the catalog: {err}"))?;
    let input = File::open(from)
        .map(BufReader::new)
        .map_err(|err| format!("cannot read {}: {err}", from.display()))?;
    let mut decoder = Decoder::new(input).map_err(|err| err.to_string())?;
    let mut next = decoder.next_item().map_err(|err| err.to_string())?;
    while let Some(item) = next.take() {
        let Item::Collection { kind, name } = item else {
            return Err("an entry before any collection".into());
        };
        let mut error = None;
        let entries = Entries {
            decoder: &mut decoder,
            next_collection: &mut next,
            error: &mut error,
        };
        db.import(vec![(kind, name, entries)]);
        if let Some(err) = error {
            return Err(format!("the backup changed while it was read: {err}"));
        }
    }
    if !decoder.finished() {
        return Err("the backup changed while it was read".into());
    }
    let mut imported = 0u64;
    for name in db.tree_names() {
        imported += db.open_tree(name).map_err(|err| err.to_string())?.len() as u64;
    }
    if imported != summary.entries {
        return Err(format!(
            "the catalog holds {imported} entries after the import, the backup {}",
            summary.entries
        ));
    }
    db.flush().map_err(|err| err.to_string())?;
    drop(db);
    advance_ids(dir, header.next_id)
}

/// sled puts a reopened generator at its persisted counter plus twice the
/// persist interval, and persists the counter when an id reaches the next
/// multiple of the interval. Reopening once with an interval over half of
/// `next_id` and taking one id therefore persists a counter of at least
/// `next_id`; reopening as the service does then checks it. The interval is
/// a multiple of the service's (sled's default), since sled expects the
/// persisted counter to be a multiple of the interval it runs with.
fn advance_ids(dir: &Path, next_id: u64) -> Result<(), String> {
    let failed = |err: sled::Error| format!("cannot set the id generator: {err}");
    let step = sled::Config::default().idgen_persist_interval;
    let interval = (next_id / 2 + 1).div_ceil(step) * step;
    let db = reopen(&sled_config(dir, RESTORE_CACHE_BYTES).idgen_persist_interval(interval))
        .map_err(failed)?;
    db.generate_id().map_err(failed)?;
    db.flush().map_err(failed)?;
    drop(db);
    let db = reopen(&sled_config(dir, RESTORE_CACHE_BYTES)).map_err(failed)?;
    let id = db.generate_id().map_err(failed)?;
    db.flush().map_err(failed)?;
    if id < next_id {
        return Err(format!(
            "the id generator stands at {id}, below {next_id} of the backed-up catalog"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database whose id generator was reopened several times, so it
    /// stands well past where a fresh one starts.
    fn populated(dir: &Path) -> (u64, u32) {
        let mut last_id = 0;
        for round in 0..3u8 {
            let db = reopen(&sled_config(dir, 1 << 20)).unwrap();
            last_id = db.generate_id().unwrap();
            let tree = db.open_tree(format!("tree{round}")).unwrap();
            for i in 0..500u32 {
                tree.insert(i.to_be_bytes(), vec![round; (i % 7) as usize])
                    .unwrap();
            }
            db.insert(b"default", b"tree").unwrap();
            db.flush().unwrap();
        }
        let db = reopen(&sled_config(dir, 1 << 20)).unwrap();
        let checksum = db.checksum().unwrap();
        (last_id, checksum)
    }

    /// [`backup`] of a catalog this test process has just closed (see
    /// [`reopen`]).
    fn backup_closed(data_dir: &Path, out: &Path) -> Result<Summary, BackupError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match backup(data_dir, out, 1 << 20) {
                Err(BackupError::InUse(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                done => return done,
            }
        }
    }

    #[test]
    fn backup_then_restore_copies_every_tree_and_the_id_generator() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        let (last_id, checksum) = populated(&catalog_dir(&source));
        assert!(last_id > 2_000_000, "{last_id}");
        let file = tmp.path().join("catalog.ridx");
        let summary = backup_closed(&source, &file).unwrap();
        assert_eq!((summary.collections, summary.entries), (4, 1501));
        assert_eq!(summary.bytes, fs::metadata(&file).unwrap().len());
        assert!(!tmp_path(&file).exists());

        let target = tmp.path().join("new-data");
        assert_eq!(restore(&file, &target).unwrap(), summary);
        let db = reopen(&sled_config(&catalog_dir(&target), 1 << 20)).unwrap();
        assert_eq!(db.checksum().unwrap(), checksum);
        assert!(db.generate_id().unwrap() > last_id);
    }

    #[test]
    fn backup_refuses_a_catalog_in_use_and_a_missing_one() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        populated(&catalog_dir(&data));
        let file = tmp.path().join("catalog.ridx");
        let held = reopen(&sled_config(&catalog_dir(&data), 1 << 20)).unwrap();
        let err = backup(&data, &file, 1 << 20).unwrap_err();
        assert!(matches!(err, BackupError::InUse(_)), "{err:?}");
        assert!(err.to_string().contains("stop the service first"), "{err}");
        assert!(!file.exists() && !tmp_path(&file).exists());
        drop(held);

        let empty = tmp.path().join("empty");
        for data_dir in [tmp.path().join("nowhere"), empty.clone()] {
            fs::create_dir_all(&empty).unwrap();
            let err = backup(&data_dir, &file, 1 << 20).unwrap_err();
            assert!(matches!(err, BackupError::NoCatalog { .. }), "{err:?}");
            assert!(!catalog_dir(&data_dir).exists(), "a catalog was created");
        }
        let err = backup_closed(&data, &tmp.path().join("no/such/dir/file")).unwrap_err();
        assert!(matches!(err, BackupError::Write { .. }), "{err:?}");
    }

    #[test]
    fn restore_refuses_a_catalog_and_leaves_nothing_of_a_bad_file() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        populated(&catalog_dir(&data));
        let file = tmp.path().join("catalog.ridx");
        backup_closed(&data, &file).unwrap();

        let err = restore(&file, &data).unwrap_err();
        assert!(matches!(err, BackupError::CatalogExists(_)), "{err:?}");

        let bytes = fs::read(&file).unwrap();
        let cut = tmp.path().join("cut.ridx");
        fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let target = tmp.path().join("target");
        let err = restore(&cut, &target).unwrap_err();
        assert!(
            matches!(
                err,
                BackupError::Format {
                    source: FormatError::Truncated,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!target.exists());

        // An empty catalog directory is no catalog: it is restored into.
        fs::create_dir_all(catalog_dir(&target)).unwrap();
        restore(&file, &target).unwrap();
    }
}
