//! Importing recordings made before the service existed.

pub mod playlist;
pub mod runner;
