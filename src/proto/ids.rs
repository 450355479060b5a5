//! Stable names for the core's objects: unlike positions in its lists,
//! they survive a reload (a kept path or socket keeps its id; a new or
//! replaced one gets a fresh id, never one used before).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One path of one peer, for as long as the tunnel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u32);

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path#{}", self.0)
    }
}

/// Hands out path ids, each once.
#[derive(Debug, Default)]
pub struct PathIds {
    next: u32,
}

impl PathIds {
    pub fn fresh(&mut self) -> PathId {
        let id = PathId(self.next);
        self.next += 1;
        id
    }
}

/// One local UDP socket, for as long as it is open: the daemon names each
/// socket it opens with a fresh id and keeps it across reloads, so the
/// core and the event loop agree on a socket without positions that a
/// reload would shift. The id travels between the parent and the worker
/// beside the socket's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SocketId(u32);

impl SocketId {
    /// The id numbered `raw`: for tests and harnesses that name their
    /// sockets themselves (the daemon uses [`SocketIds`]).
    pub const fn new(raw: u32) -> SocketId {
        SocketId(raw)
    }

    /// The number inside, for harnesses that keep sockets in a list.
    pub const fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

/// Hands out socket ids, each once.
#[derive(Debug, Default)]
pub struct SocketIds {
    next: u32,
}

impl SocketIds {
    pub fn fresh(&mut self) -> SocketId {
        let id = SocketId(self.next);
        self.next += 1;
        id
    }
}
