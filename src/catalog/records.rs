//! Records of manifests and ClientToken answers, as every engine keeps
//! them: encoded with prost, so fields can be added later without breaking
//! what is already stored.

use crate::manifest::Micros;

/// Metadata of one written manifest: what the Describe APIs return.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ManifestRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub record_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub domain_name: String,
    #[prost(string, tag = "3")]
    pub app_name: String,
    #[prost(string, tag = "4")]
    pub stream_name: String,
    #[prost(string, tag = "5")]
    pub oss_endpoint: String,
    #[prost(string, tag = "6")]
    pub oss_bucket: String,
    #[prost(string, tag = "7")]
    pub oss_object: String,
    #[prost(string, tag = "8")]
    pub record_url: String,
    /// StartTime and EndTime of the request, as sent.
    #[prost(string, tag = "9")]
    pub start_time: String,
    #[prost(string, tag = "10")]
    pub end_time: String,
    #[prost(int64, tag = "11")]
    pub created: Micros,
    /// After this instant the record is invisible and may be swept.
    #[prost(int64, tag = "12")]
    pub expires: Micros,
    #[prost(double, tag = "13")]
    pub duration: f64,
    #[prost(uint32, tag = "14")]
    pub width: u32,
    #[prost(uint32, tag = "15")]
    pub height: u32,
    #[prost(uint32, tag = "16")]
    pub segment_count: u32,
    /// Id of the stream in the catalog, for its listing index.
    #[prost(uint64, tag = "17")]
    pub stream_id: u64,
}

/// The first answer to a request sent with a ClientToken.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TokenRecord {
    /// SHA-256 of the request without its token: a retry must match it.
    #[prost(bytes = "vec", tag = "1")]
    pub fingerprint: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub created: Micros,
    /// The encoded response message of the first request.
    #[prost(bytes = "vec", tag = "3")]
    pub response: Vec<u8>,
}

impl ManifestRecord {
    pub fn id_bytes(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        let len = self.record_id.len().min(16);
        id[..len].copy_from_slice(&self.record_id[..len]);
        id
    }

    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.id_bytes())
    }
}
