//! Answer bodies handed to the connection a chunk at a time, each within
//! [`STALL`]: a client that takes no bytes for that long (a slow-read
//! attack, or a player that went away without closing) loses the answer,
//! and with it the memory of a playlist or the open file of an object,
//! rather than holding them for as long as it keeps the connection open.
//! The connection closes itself after as long without a write (see
//! [`crate::connections::side`]); over HTTP/2 a stream's window may stay
//! closed while the socket is not, so the clock runs on the body too.

use std::io::SeekFrom;
use std::time::Duration;

use bytes::Bytes;
use hyper::Body;
use hyper::body::Sender;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Longest a chunk of an answer may wait for the client to take the one
/// before it: as long as the connection waits for a write.
pub const STALL: Duration = crate::connections::side::WRITE_STALL;
/// Bytes handed over at a time. An answer of at most this many bytes is
/// handed over whole: the connection's own buffer takes it at once.
const CHUNK_BYTES: usize = 128 * 1024;

/// `bytes` as an answer body.
pub fn bytes(bytes: Vec<u8>) -> Body {
    if bytes.len() <= CHUNK_BYTES {
        return Body::from(bytes);
    }
    let (mut sender, body) = Body::channel();
    let mut rest = Bytes::from(bytes);
    tokio::spawn(async move {
        while !rest.is_empty() {
            let chunk = rest.split_to(CHUNK_BYTES.min(rest.len()));
            sender = match send(sender, chunk).await {
                Some(sender) => sender,
                None => return,
            };
        }
    });
    body
}

/// `len` bytes of `file` from `first`, read a chunk at a time as the client
/// takes them, with `held` kept until the last is taken or the answer is
/// given up. A file that ends early (cut short since it was opened) aborts
/// the body, so the client sees a broken answer rather than a short one.
pub fn file(file: std::fs::File, first: u64, len: u64, held: impl Send + 'static) -> Body {
    let (sender, body) = Body::channel();
    tokio::spawn(async move {
        let _held = held;
        let mut sender = sender;
        let mut file = tokio::fs::File::from_std(file);
        if file.seek(SeekFrom::Start(first)).await.is_err() {
            sender.abort();
            return;
        }
        let mut left = len;
        while left > 0 {
            let mut chunk = vec![0; (CHUNK_BYTES as u64).min(left) as usize];
            match file.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    sender.abort();
                    return;
                }
                Ok(read) => {
                    chunk.truncate(read);
                    left -= read as u64;
                    sender = match send(sender, Bytes::from(chunk)).await {
                        Some(sender) => sender,
                        None => return,
                    };
                }
            }
        }
    });
    body
}

/// Hands `chunk` over once the client has taken the one before: the
/// sender back, or `None` when the client went away or took nothing for
/// [`STALL`] (the answer is then aborted, which closes an HTTP/1.1
/// connection and resets an HTTP/2 stream).
async fn send(mut sender: Sender, chunk: Bytes) -> Option<Sender> {
    match tokio::time::timeout(STALL, sender.send_data(chunk)).await {
        Ok(Ok(())) => Some(sender),
        Ok(Err(_)) => None,
        Err(_) => {
            sender.abort();
            None
        }
    }
}
