//! Stable names for the core's objects: unlike positions in its lists,
//! they survive a reload (a kept path keeps its id; a new or replaced one
//! gets a fresh id, never one used before).

use std::fmt;

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
