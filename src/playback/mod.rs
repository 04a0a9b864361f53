//! Playback over HTTP: playlists made per request from the catalog, for
//! players to fetch directly. [`routes`] reads the URLs (pure);
//! [`listener`] serves them.

pub mod listener;
pub mod routes;

pub use listener::Playback;
