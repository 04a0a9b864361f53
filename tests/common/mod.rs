//! Harness shared by the integration tests. Every part is real: a SeaweedFS
//! S3 server, MPEG-TS media cut by ffmpeg, the `record-index` binary itself,
//! and the outside tools (ffprobe, grpcurl, a Python client, Chromium
//! playing through hls.js, a strict HLS parser) a user would point at them;
//! the tests that control time run the server in their own process instead,
//! with a fixed clock.
//!
//! Processes: SeaweedFS is started once per test binary and shared (each test
//! works in its own bucket); a `record-index` server belongs to one test.
//! Both run under a tiny `sh` guard that SIGKILLs them as soon as our end of
//! the guard's stdin pipe closes. That pipe closes when a fixture is dropped
//! (also while a failing test unwinds) and when the test binary exits for any
//! reason, which matters for SeaweedFS: it lives in a static that is never
//! dropped, and it ignores SIGTERM for a long time.
//!
//! Each test binary uses a part of this harness only, so what one leaves
//! unused is not dead.
#![allow(dead_code, unused_imports)]

mod browser;
mod checks;
mod engines;
mod guard;
mod in_process;
mod media;
mod net;
mod pg_server;
mod redis;
mod requests;
mod seaweedfs;
mod server;
mod tools;

pub use browser::*;
pub use checks::*;
pub use engines::*;
pub use in_process::*;
pub use media::*;
pub use net::*;
pub use pg_server::*;
pub use redis::*;
pub use requests::*;
pub use seaweedfs::*;
pub use server::*;
pub use tools::*;
