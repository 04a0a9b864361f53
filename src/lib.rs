//! record-index: a catalog of recorded MPEG-TS segments that writes M3U8
//! VOD playlists for any UTC time range of a live stream, without copying
//! media.
//!
//! Map of the modules:
//! - [`manifest`]: the domain model every module speaks in (`Segment`,
//!   `Format`, `Micros`), and the pure rules: time formats, names, the
//!   OssObject template, the range rule, segment selection, the playlist
//!   writer, relative URIs.
//! - [`media`]: the MPEG-TS probe: codec, picture size, PTS span, keyframes.
//! - [`catalog`]: the catalog contract ([`catalog::Catalog`]: segments,
//!   manifests, ClientToken answers, retention) and its engines: the
//!   embedded [`catalog::sled_engine`], with a module per kind of record
//!   and backup and restore of a catalog directory in the file format of
//!   [`catalog::sled_engine::backup::format`], and
//!   [`catalog::postgres`] for a catalog that replicas share.
//! - [`storage`]: object stores (local directory, S3-compatible) where
//!   playlists are written.
//! - [`service`]: the operations (every RPC), free of gRPC transport:
//!   request messages in, response messages out.
//! - [`api`]: the gRPC adapter: the gate layer (request id, authentication,
//!   admission, deadlines, one log line per request), the handlers and the
//!   error-to-status mapping.
//! - [`admission`]: per-account rate limits behind the [`admission::Admission`]
//!   trait, shared by the gRPC gate and the SRS webhook; the in-process
//!   GCRA limiter runs on the injected clock.
//! - [`telemetry`]: the Prometheus metrics and their `/metrics` listener.
//! - [`auth`]: accounts, API keys and RAM-style statements.
//! - [`operations`]: the RPCs' names, RAM actions and default rate limits.
//! - [`patterns`]: `*` patterns of domains, buckets and RAM statements:
//!   matching, and whether two patterns can match one name.
//! - [`webhook`]: the HTTP listener for SRS `on_hls` callbacks.
//! - [`playback`]: the HTTP listener for players: playlists made per
//!   request, to a closed range or the live edge, and their signed URLs.
//! - [`connections`]: the gRPC listener's accept loop: the connection cap
//!   below the descriptor limit, handshake and idle deadlines.
//! - [`import`]: reading recorders' playlists into the catalog (`record-index import`).
//! - [`config`], [`clock`], [`error`], [`server`]: configuration, the time
//!   source (the wall clock, and a steady reading for intervals), the one
//!   error enum, and the assembly of it all.

pub mod admission;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod connections;
pub mod error;
pub mod import;
pub mod manifest;
pub mod media;
pub mod operations;
pub mod patterns;
pub mod playback;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod webhook;

/// Types generated from `proto/recordindex/v1/record_index.proto`.
pub mod proto {
    tonic::include_proto!("recordindex.v1");

    /// The encoded descriptor set served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("record_index_descriptor");
}
