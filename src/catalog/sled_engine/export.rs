//! Reading a whole sled catalog a page at a time, in key order, for moving
//! it to another engine: streams with their names, manifests, token
//! answers.

use std::ops::Bound;

use prost::Message;

use super::super::{CatalogError, ManifestRecord, StreamName, TokenAnswer, TokenRecord};
use super::{SledCatalog, StreamRecord};

fn corrupt(err: impl std::fmt::Display) -> CatalogError {
    CatalogError::Corrupt(err.to_string())
}

/// The keys after `after`: every key for the first page.
fn keys_after(after: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = match after {
        Some(key) => Bound::Excluded(key.to_vec()),
        None => Bound::Unbounded,
    };
    (start, Bound::Unbounded)
}

impl SledCatalog {
    /// Every stream, with its name, in key order.
    pub fn all_streams(&self) -> Result<Vec<(StreamName, StreamRecord)>, CatalogError> {
        let mut streams = Vec::new();
        for entry in self.streams.iter() {
            let (key, value) = entry?;
            let parts: Vec<&[u8]> = key.split(|byte| *byte == 0).collect();
            let [domain, app, stream] = parts[..] else {
                return Err(corrupt("a stream key is not three names"));
            };
            let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(corrupt);
            let name = StreamName {
                domain: text(domain)?,
                app: text(app)?,
                stream: text(stream)?,
            };
            streams.push((name, StreamRecord::decode(&*value).map_err(corrupt)?));
        }
        Ok(streams)
    }

    /// Up to `limit` manifests after the record id `after`, expired ones
    /// included.
    pub fn manifest_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ManifestRecord>, CatalogError> {
        let mut page = Vec::new();
        for entry in self.manifests.range(keys_after(after)) {
            let (_, value) = entry?;
            page.push(ManifestRecord::decode(&*value).map_err(corrupt)?);
            if page.len() == limit {
                break;
            }
        }
        Ok(page)
    }

    /// Up to `limit` token answers after the key `after`, expired ones
    /// included.
    pub fn token_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<TokenAnswer>, CatalogError> {
        let mut page = Vec::new();
        for entry in self.tokens.range(keys_after(after)) {
            let (key, value) = entry?;
            page.push(TokenAnswer {
                key: key.to_vec(),
                record: TokenRecord::decode(&*value).map_err(corrupt)?,
            });
            if page.len() == limit {
                break;
            }
        }
        Ok(page)
    }
}
