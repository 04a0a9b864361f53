//! Playback over HTTP: playlists made per request from the catalog, for
//! players to fetch directly. [`routes`] reads the URLs (pure);
//! [`signing`] signs and verifies them (ApsaraVideo Live's Type A
//! `auth_key`, pure); [`listener`] serves them, with the headers of
//! [`answer`]. In local mode it also serves the local store's
//! [`objects`], in the [`byte_ranges`] players ask for. [`host`] reads
//! the host a request names. Bodies are handed over by [`sending`], which
//! gives up on a client that takes nothing.

pub mod answer;
pub mod byte_ranges;
pub mod host;
pub mod listener;
pub mod objects;
pub mod routes;
pub mod sending;
pub mod signing;

pub use listener::Playback;
