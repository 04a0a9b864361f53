//! Playback over HTTP: playlists made per request, for players.

pub mod signing;
