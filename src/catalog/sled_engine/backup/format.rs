//! The catalog backup file: every sled collection, as `sled::Db::export`
//! yields it, in one self-describing file.
//!
//! The file (version 1; integers big-endian, `bytes` is a u32 length and
//! that many bytes):
//!
//! ```text
//! magic    "RIDXBKUP" (8 bytes)
//! version  u16 = 1
//! next_id  u64: an id sled's generator had not handed out when the backup
//!          was taken; a restored catalog only hands out ids from it on
//! records, each starting with a tag byte:
//!   1  collection: type (bytes), name (bytes); the entries that follow
//!      belong to it
//!   2  entry: part count (u32), then each part (bytes); for a sled tree
//!      the parts are key and value
//!   0  end: collections (u64), entries (u64)
//! sha256   32 bytes: SHA-256 of every byte before it
//! ```
//!
//! [`Encoder`] and [`Decoder`] work on any writer and reader and touch no
//! file and no sled, so every rule of the format is tested on bytes in
//! memory.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"RIDXBKUP";
pub const VERSION: u16 = 1;

const TAG_END: u8 = 0;
const TAG_COLLECTION: u8 = 1;
const TAG_ENTRY: u8 = 2;
const CHECKSUM_LEN: usize = 32;

/// sled's only collection type.
const TREE: &[u8] = b"tree";

/// What the header carries besides magic and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub next_id: u64,
}

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub collections: u64,
    pub entries: u64,
    /// Size of the whole file.
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} collections, {} entries, {} bytes",
            self.collections, self.entries, self.bytes
        )
    }
}

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a record-index catalog backup (wrong magic bytes)")]
    BadMagic,
    #[error(
        "backup format version {0} is not supported (this record-index reads version {VERSION})"
    )]
    UnsupportedVersion(u16),
    #[error("the file ends early: it is truncated or was not completely written")]
    Truncated,
    #[error("the SHA-256 checksum does not match: the file is corrupt")]
    BadChecksum,
    #[error("the file is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(io::Error),
}

impl From<io::Error> for FormatError {
    fn from(err: io::Error) -> FormatError {
        match err.kind() {
            io::ErrorKind::UnexpectedEof => FormatError::Truncated,
            _ => FormatError::Io(err),
        }
    }
}

/// Writes a backup file to `out`, hashing as it goes.
pub struct Encoder<W: Write> {
    out: W,
    hash: Sha256,
    summary: Summary,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Encoder<W>> {
        let mut encoder = Encoder {
            out,
            hash: Sha256::new(),
            summary: Summary::default(),
        };
        encoder.put(MAGIC)?;
        encoder.put(&VERSION.to_be_bytes())?;
        encoder.put(&header.next_id.to_be_bytes())?;
        Ok(encoder)
    }

    /// Starts a collection; the entries written next belong to it.
    pub fn collection(&mut self, kind: &[u8], name: &[u8]) -> io::Result<()> {
        self.put(&[TAG_COLLECTION])?;
        self.put_bytes(kind)?;
        self.put_bytes(name)?;
        self.summary.collections += 1;
        Ok(())
    }

    pub fn entry<P: AsRef<[u8]>>(&mut self, parts: &[P]) -> io::Result<()> {
        if self.summary.collections == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an entry before any collection",
            ));
        }
        self.put(&[TAG_ENTRY])?;
        self.put(&length(parts.len())?.to_be_bytes())?;
        for part in parts {
            self.put_bytes(part.as_ref())?;
        }
        self.summary.entries += 1;
        Ok(())
    }

    /// Writes the end record and the checksum; returns the writer, not
    /// flushed, and what the file holds.
    pub fn finish(mut self) -> io::Result<(W, Summary)> {
        self.put(&[TAG_END])?;
        self.put(&self.summary.collections.to_be_bytes())?;
        self.put(&self.summary.entries.to_be_bytes())?;
        let checksum = self.hash.finalize();
        self.out.write_all(&checksum)?;
        self.summary.bytes += CHECKSUM_LEN as u64;
        Ok((self.out, self.summary))
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)?;
        self.summary.bytes += bytes.len() as u64;
        Ok(())
    }

    fn put_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(&length(bytes.len())?.to_be_bytes())?;
        self.put(bytes)
    }
}

fn length(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{len} bytes do not fit a u32 length"),
        )
    })
}

/// One record of a backup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Collection { kind: Vec<u8>, name: Vec<u8> },
    Entry(Vec<Vec<u8>>),
}

/// Reads a backup file record by record. The checksum is checked when the
/// end record is reached: until [`Decoder::next_item`] has returned
/// `Ok(None)`, nothing read may be trusted.
pub struct Decoder<R: Read> {
    input: R,
    hash: Sha256,
    header: Header,
    summary: Summary,
    done: bool,
}

impl<R: Read> Decoder<R> {
    /// Reads and checks the magic bytes and the version.
    pub fn new(input: R) -> Result<Decoder<R>, FormatError> {
        let mut decoder = Decoder {
            input,
            hash: Sha256::new(),
            header: Header { next_id: 0 },
            summary: Summary::default(),
            done: false,
        };
        let magic = decoder.take(MAGIC.len())?;
        if magic[..] != MAGIC[..magic.len()] {
            return Err(FormatError::BadMagic);
        }
        if magic.len() < MAGIC.len() {
            return Err(FormatError::Truncated);
        }
        let version = u16::from_be_bytes(decoder.fixed()?);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        decoder.header.next_id = u64::from_be_bytes(decoder.fixed()?);
        Ok(decoder)
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// What was read so far; the whole file's once the end is reached.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Whether the end record and the checksum were read and found right.
    pub fn finished(&self) -> bool {
        self.done
    }

    /// The next record, or `None` once the end record, the counts and the
    /// checksum are read and right and nothing follows them.
    pub fn next_item(&mut self) -> Result<Option<Item>, FormatError> {
        if self.done {
            return Ok(None);
        }
        let [tag] = self.fixed()?;
        match tag {
            TAG_COLLECTION => {
                let kind = self.bytes()?;
                let name = self.bytes()?;
                self.summary.collections += 1;
                Ok(Some(Item::Collection { kind, name }))
            }
            TAG_ENTRY => {
                if self.summary.collections == 0 {
                    return Err(FormatError::Corrupt(
                        "an entry before any collection".into(),
                    ));
                }
                let count = u32::from_be_bytes(self.fixed()?);
                // Not `with_capacity(count)`: the count is not checked yet.
                let mut parts = Vec::new();
                for _ in 0..count {
                    parts.push(self.bytes()?);
                }
                self.summary.entries += 1;
                Ok(Some(Item::Entry(parts)))
            }
            TAG_END => {
                let collections = u64::from_be_bytes(self.fixed()?);
                let entries = u64::from_be_bytes(self.fixed()?);
                let expected = std::mem::take(&mut self.hash).finalize();
                let mut checksum = [0u8; CHECKSUM_LEN];
                self.input.read_exact(&mut checksum)?;
                self.summary.bytes += CHECKSUM_LEN as u64;
                if checksum[..] != expected[..] {
                    return Err(FormatError::BadChecksum);
                }
                if (collections, entries) != (self.summary.collections, self.summary.entries) {
                    return Err(FormatError::Corrupt(format!(
                        "the end record counts {collections} collections and {entries} entries, \
                         the file holds {} and {}",
                        self.summary.collections, self.summary.entries
                    )));
                }
                let mut more = [0u8; 1];
                if self.input.read(&mut more)? != 0 {
                    return Err(FormatError::Corrupt("bytes after the checksum".into()));
                }
                self.done = true;
                Ok(None)
            }
            other => Err(FormatError::Corrupt(format!("unknown record tag {other}"))),
        }
    }

    /// Up to `len` bytes: fewer only at the end of the input. Reads through
    /// `take` so that a corrupt length cannot allocate more than the file
    /// holds.
    fn take(&mut self, len: usize) -> Result<Vec<u8>, FormatError> {
        let mut buf = Vec::new();
        (&mut self.input).take(len as u64).read_to_end(&mut buf)?;
        self.hash.update(&buf);
        self.summary.bytes += buf.len() as u64;
        Ok(buf)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let buf = self.take(N)?;
        buf.try_into().map_err(|_| FormatError::Truncated)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, FormatError> {
        let len = u32::from_be_bytes(self.fixed()?) as usize;
        let buf = self.take(len)?;
        if buf.len() < len {
            return Err(FormatError::Truncated);
        }
        Ok(buf)
    }
}

/// Reads a whole backup file and checks what `sled::Db::import` relies
/// on besides the checksum: only trees, each named once, entries of a key
/// and a value, keys strictly ascending within a tree (as export writes
/// them). Returns the header and what the file holds.
pub fn verify<R: Read>(input: R) -> Result<(Header, Summary), FormatError> {
    let mut decoder = Decoder::new(input)?;
    let mut names = std::collections::HashSet::new();
    let mut last_key: Option<Vec<u8>> = None;
    while let Some(item) = decoder.next_item()? {
        match item {
            Item::Collection { kind, name } => {
                if kind != TREE {
                    return Err(FormatError::Corrupt(format!(
                        "collection type {:?} is not a sled tree",
                        String::from_utf8_lossy(&kind)
                    )));
                }
                if !names.insert(name.clone()) {
                    return Err(FormatError::Corrupt(format!(
                        "tree {:?} appears twice",
                        String::from_utf8_lossy(&name)
                    )));
                }
                last_key = None;
            }
            Item::Entry(mut parts) => {
                if parts.len() != 2 {
                    return Err(FormatError::Corrupt(format!(
                        "an entry of {} parts, not key and value",
                        parts.len()
                    )));
                }
                parts.truncate(1);
                let key = parts.pop().expect("two parts");
                if last_key.as_ref().is_some_and(|last| *last >= key) {
                    return Err(FormatError::Corrupt("keys of a tree out of order".into()));
                }
                last_key = Some(key);
            }
        }
    }
    Ok((decoder.header(), decoder.summary()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header { next_id: 4_000_123 };

    fn sample() -> Vec<Item> {
        vec![
            Item::Collection {
                kind: TREE.to_vec(),
                name: b"__sled__default".to_vec(),
            },
            Item::Collection {
                kind: TREE.to_vec(),
                name: b"segments".to_vec(),
            },
            Item::Entry(vec![b"a".to_vec(), vec![0, 1, 2, 255]]),
            Item::Entry(vec![b"b".to_vec(), Vec::new()]),
            Item::Entry(vec![b"c".to_vec(), vec![7; 1000]]),
            Item::Collection {
                kind: TREE.to_vec(),
                name: b"streams".to_vec(),
            },
            Item::Entry(vec![b"example.com\0live\0s1".to_vec(), b"x".to_vec()]),
        ]
    }

    fn encode(header: &Header, items: &[Item]) -> (Vec<u8>, Summary) {
        let mut encoder = Encoder::new(Vec::new(), header).unwrap();
        for item in items {
            match item {
                Item::Collection { kind, name } => encoder.collection(kind, name).unwrap(),
                Item::Entry(parts) => encoder.entry(parts).unwrap(),
            }
        }
        encoder.finish().unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<(Header, Vec<Item>, Summary), FormatError> {
        let mut decoder = Decoder::new(bytes)?;
        let mut items = Vec::new();
        while let Some(item) = decoder.next_item()? {
            items.push(item);
        }
        assert!(decoder.finished());
        Ok((decoder.header(), items, decoder.summary()))
    }

    #[test]
    fn roundtrip() {
        let (bytes, summary) = encode(&HEADER, &sample());
        assert_eq!(
            summary,
            Summary {
                collections: 3,
                entries: 4,
                bytes: bytes.len() as u64
            }
        );
        assert_eq!(&bytes[..8], MAGIC);
        let (header, items, read) = decode(&bytes).unwrap();
        assert_eq!((header, items, read), (HEADER, sample(), summary));
        assert_eq!(verify(&bytes[..]).unwrap(), (HEADER, summary));
    }

    #[test]
    fn an_empty_catalog_roundtrips() {
        let (bytes, summary) = encode(&Header { next_id: 0 }, &[]);
        let (header, items, _) = decode(&bytes).unwrap();
        assert_eq!((header.next_id, items.len()), (0, 0));
        assert_eq!((summary.collections, summary.entries), (0, 0));
    }

    #[test]
    fn every_truncation_is_caught() {
        let (bytes, _) = encode(&HEADER, &sample());
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).map(|_| ()).unwrap_err();
            assert!(
                matches!(err, FormatError::Truncated),
                "cut at {len} of {}: {err:?}",
                bytes.len()
            );
        }
    }

    #[test]
    fn bad_magic_and_unknown_versions_are_refused() {
        let (mut bytes, _) = encode(&HEADER, &sample());
        let err = decode(b"# record-index.toml\nlisten = \"127.0.0.1:0\"\n").unwrap_err();
        assert!(matches!(err, FormatError::BadMagic), "{err:?}");
        assert!(matches!(
            decode(b"RIDX").unwrap_err(),
            FormatError::Truncated
        ));
        bytes[9] = 2;
        assert!(matches!(
            decode(&bytes).unwrap_err(),
            FormatError::UnsupportedVersion(2)
        ));
        bytes[0] ^= 0x20;
        assert!(matches!(decode(&bytes).unwrap_err(), FormatError::BadMagic));
    }

    #[test]
    fn a_changed_byte_fails_the_checksum() {
        let (bytes, _) = encode(&HEADER, &sample());
        // A byte of a value, of the header's next_id, and of the checksum.
        let value_at = bytes.windows(4).position(|w| w == [0, 1, 2, 255]).unwrap();
        for at in [value_at + 3, 12, bytes.len() - 1] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 1;
            let err = decode(&corrupt).map(|_| ()).unwrap_err();
            assert!(
                matches!(err, FormatError::BadChecksum),
                "byte {at}: {err:?}"
            );
        }
    }

    #[test]
    fn bytes_after_the_checksum_are_refused() {
        let (mut bytes, _) = encode(&HEADER, &sample());
        bytes.push(0);
        assert!(matches!(
            decode(&bytes).unwrap_err(),
            FormatError::Corrupt(_)
        ));
    }

    #[test]
    fn verify_refuses_what_import_cannot_take() {
        let tree = |name: &[u8]| Item::Collection {
            kind: TREE.to_vec(),
            name: name.to_vec(),
        };
        let entry = |key: &[u8]| Item::Entry(vec![key.to_vec(), b"v".to_vec()]);
        let cases = [
            vec![Item::Collection {
                kind: b"log".to_vec(),
                name: b"x".to_vec(),
            }],
            vec![tree(b"a"), tree(b"a")],
            vec![tree(b"a"), entry(b"2"), entry(b"1")],
            vec![tree(b"a"), entry(b"1"), entry(b"1")],
            vec![tree(b"a"), Item::Entry(vec![b"k".to_vec()])],
        ];
        for items in cases {
            let (bytes, _) = encode(&HEADER, &items);
            let err = verify(&bytes[..]).unwrap_err();
            assert!(matches!(err, FormatError::Corrupt(_)), "{items:?}: {err:?}");
        }
        // Keys start over in every tree.
        let (bytes, _) = encode(&HEADER, &[tree(b"a"), entry(b"2"), tree(b"b"), entry(b"1")]);
        verify(&bytes[..]).unwrap();
    }

    #[test]
    fn an_entry_needs_a_collection() {
        let mut encoder = Encoder::new(Vec::new(), &HEADER).unwrap();
        assert!(encoder.entry(&[b"k"]).is_err());
    }
}
