//! The parent/worker message format.
//!
//! Each message is one SOCK_SEQPACKET datagram: `len u16 BE` (length of what
//! follows), `version u8`, `kind u8`, then the kind's fields. Decoding checks
//! every byte: the declared length against the datagram, the version, the
//! kind, and the exact field length of that kind. Nothing is variable-length
//! in a request, so a request is tiny and fully checkable.
//!
//! The hand-over and a reload (parent → worker) can be larger than one
//! datagram: their header declares the length, and the bytes follow in
//! numbered chunks ([`crate::bulk`]).

use thiserror::Error;

use crate::startup::{StartupFailure, StartupStep, MAX_ERRNO};

pub const VERSION: u8 = 1;
/// Largest datagram.
pub const MAX_MESSAGE: usize = 65535;
/// Bytes of a chunk datagram besides its payload: envelope and number.
pub const CHUNK_OVERHEAD: usize = 4 + 4;

const KIND_RUN_HOOK: u8 = 1;
const KIND_REBIND: u8 = 2;
const KIND_STARTUP_FAILED: u8 = 3;
const KIND_OK: u8 = 0x81;
const KIND_REFUSED: u8 = 0x82;
const KIND_SOCKET: u8 = 0x83;
const KIND_HANDOVER: u8 = 0x90;
const KIND_RELOAD: u8 = 0x91;
const KIND_CHUNK: u8 = 0x92;

/// Hook events the worker may ask for (tunnel up/down are the parent's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    PathUp,
    PathDown,
}

/// Worker → parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Run `up_script` (PathUp) or `down_script` (PathDown) for the client
    /// path of this name (a config name, [`valid_path_name`]): names stay
    /// right across a reload, where positions would not.
    RunHook { event: HookEvent, path: String },
    /// Bind a fresh socket for a path (its local address changed).
    Rebind { path: u8 },
    /// The worker could not start (step u8, errno u32 BE); it exits next.
    StartupFailed(StartupFailure),
}

/// Parent → worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Refused(String),
    /// A new socket for the path follows as SCM_RIGHTS.
    Socket {
        path: u8,
    },
    /// The worker's settings: `len` bytes of JSON follow in chunks; the
    /// descriptors come with this header as SCM_RIGHTS.
    Handover {
        len: u32,
    },
    /// A reloaded configuration: `len` bytes of JSON follow in chunks;
    /// sockets for new paths come with this header. Sent unasked, on SIGHUP.
    Reload {
        len: u32,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MsgError {
    #[error("message of {0} bytes is too short")]
    Short(usize),
    #[error("declared length {declared} but {actual} bytes follow")]
    Length { declared: usize, actual: usize },
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("unknown message kind {0:#04x}")]
    Kind(u8),
    #[error("message kind {kind:#04x} has {len} field bytes, expected {expected}")]
    Fields { kind: u8, len: usize, expected: usize },
    #[error("unknown hook event {0}")]
    Event(u8),
    #[error("path name is not 1 to 32 characters of A-Z a-z 0-9 _ . -")]
    PathName,
    #[error("unknown start-up step {0}")]
    Step(u8),
    #[error("errno {0} is out of range")]
    Errno(u32),
    #[error("message too large")]
    TooLarge,
    #[error("refusal reason is not UTF-8")]
    Utf8,
    #[error("chunk {got} where chunk {expected} was due")]
    ChunkOrder { expected: u32, got: u32 },
    #[error("chunk of {got} bytes where {expected} were due")]
    ChunkLength { expected: usize, got: usize },
    #[error("chunk carried {0} descriptors")]
    ChunkDescriptors(usize),
    #[error("chunk after the end of the message")]
    ChunkBeyondEnd,
    #[error("message ended after {got} of {expected} bytes")]
    Truncated { expected: usize, got: usize },
}

fn frame(kind: u8, fields: &[u8]) -> Vec<u8> {
    let len = 2 + fields.len();
    let mut v = Vec::with_capacity(2 + len);
    v.extend_from_slice(&(len.min(u16::MAX as usize) as u16).to_be_bytes());
    v.push(VERSION);
    v.push(kind);
    v.extend_from_slice(fields);
    v
}

/// Checks the envelope; returns (kind, fields).
fn unframe(b: &[u8]) -> Result<(u8, &[u8]), MsgError> {
    if b.len() < 4 {
        return Err(MsgError::Short(b.len()));
    }
    if b.len() > MAX_MESSAGE {
        return Err(MsgError::TooLarge);
    }
    let declared = u16::from_be_bytes([b[0], b[1]]) as usize;
    if declared != b.len() - 2 {
        return Err(MsgError::Length {
            declared,
            actual: b.len() - 2,
        });
    }
    if b[2] != VERSION {
        return Err(MsgError::Version(b[2]));
    }
    Ok((b[3], &b[4..]))
}

fn fixed(kind: u8, f: &[u8], expected: usize) -> Result<(), MsgError> {
    if f.len() != expected {
        return Err(MsgError::Fields {
            kind,
            len: f.len(),
            expected,
        });
    }
    Ok(())
}

/// A path name as the config allows it: 1 to 32 characters of
/// `A-Z a-z 0-9 _ . -` (so never a control character in the parent's log
/// or a hook's environment).
pub fn valid_path_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::RunHook { event, path } => {
                let e = match event {
                    HookEvent::PathUp => 1,
                    HookEvent::PathDown => 2,
                };
                let mut f = vec![e];
                f.extend_from_slice(path.as_bytes());
                frame(KIND_RUN_HOOK, &f)
            }
            Request::Rebind { path } => frame(KIND_REBIND, &[*path]),
            Request::StartupFailed(f) => {
                let e = f.errno.to_be_bytes();
                frame(KIND_STARTUP_FAILED, &[f.step.code(), e[0], e[1], e[2], e[3]])
            }
        }
    }

    pub fn decode(b: &[u8]) -> Result<Request, MsgError> {
        let (kind, f) = unframe(b)?;
        match kind {
            KIND_RUN_HOOK => {
                let Some((&e, name)) = f.split_first() else {
                    return Err(MsgError::Fields {
                        kind,
                        len: 0,
                        expected: 2,
                    });
                };
                let event = match e {
                    1 => HookEvent::PathUp,
                    2 => HookEvent::PathDown,
                    e => return Err(MsgError::Event(e)),
                };
                let path = std::str::from_utf8(name)
                    .ok()
                    .filter(|n| valid_path_name(n))
                    .ok_or(MsgError::PathName)?;
                Ok(Request::RunHook {
                    event,
                    path: path.to_string(),
                })
            }
            KIND_REBIND => {
                fixed(kind, f, 1)?;
                Ok(Request::Rebind { path: f[0] })
            }
            KIND_STARTUP_FAILED => {
                fixed(kind, f, 5)?;
                let step = StartupStep::from_code(f[0]).ok_or(MsgError::Step(f[0]))?;
                let errno = u32::from_be_bytes([f[1], f[2], f[3], f[4]]);
                if errno > MAX_ERRNO {
                    return Err(MsgError::Errno(errno));
                }
                Ok(Request::StartupFailed(StartupFailure { step, errno }))
            }
            k => Err(MsgError::Kind(k)),
        }
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Ok => frame(KIND_OK, &[]),
            Reply::Refused(why) => {
                let mut s = why.as_bytes();
                s = &s[..s.len().min(200)];
                while std::str::from_utf8(s).is_err() {
                    s = &s[..s.len() - 1];
                }
                frame(KIND_REFUSED, s)
            }
            Reply::Socket { path } => frame(KIND_SOCKET, &[*path]),
            Reply::Handover { len } => frame(KIND_HANDOVER, &len.to_be_bytes()),
            Reply::Reload { len } => frame(KIND_RELOAD, &len.to_be_bytes()),
        }
    }

    pub fn decode(b: &[u8]) -> Result<Reply, MsgError> {
        let (kind, f) = unframe(b)?;
        match kind {
            KIND_OK => fixed(kind, f, 0).map(|_| Reply::Ok),
            KIND_REFUSED => Ok(Reply::Refused(
                std::str::from_utf8(f).map_err(|_| MsgError::Utf8)?.to_string(),
            )),
            KIND_SOCKET => fixed(kind, f, 1).map(|_| Reply::Socket { path: f[0] }),
            KIND_HANDOVER => fixed(kind, f, 4).map(|_| Reply::Handover {
                len: u32::from_be_bytes([f[0], f[1], f[2], f[3]]),
            }),
            KIND_RELOAD => fixed(kind, f, 4).map(|_| Reply::Reload {
                len: u32::from_be_bytes([f[0], f[1], f[2], f[3]]),
            }),
            k => Err(MsgError::Kind(k)),
        }
    }
}

/// One chunk of a large message (number u32 BE, then payload), written
/// into `out` (replacing what it held).
pub(crate) fn encode_chunk(seq: u32, part: &[u8], out: &mut Vec<u8>) {
    debug_assert!(CHUNK_OVERHEAD + part.len() <= MAX_MESSAGE);
    out.clear();
    out.extend_from_slice(&((2 + 4 + part.len()) as u16).to_be_bytes());
    out.push(VERSION);
    out.push(KIND_CHUNK);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(part);
}

/// (number, payload) of a chunk datagram.
pub(crate) fn decode_chunk(b: &[u8]) -> Result<(u32, &[u8]), MsgError> {
    let (kind, f) = unframe(b)?;
    if kind != KIND_CHUNK {
        return Err(MsgError::Kind(kind));
    }
    if f.len() < 4 {
        return Err(MsgError::Fields {
            kind,
            len: f.len(),
            expected: 4,
        });
    }
    Ok((u32::from_be_bytes([f[0], f[1], f[2], f[3]]), &f[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips() {
        for r in [
            Request::RunHook {
                event: HookEvent::PathUp,
                path: "lte".into(),
            },
            Request::RunHook {
                event: HookEvent::PathDown,
                path: "A-z_0.9-abcdefghijklmnopqrstuvwx".into(),
            },
            Request::Rebind { path: 1 },
            Request::StartupFailed(StartupFailure {
                step: StartupStep::Seccomp,
                errno: 1,
            }),
            Request::StartupFailed(StartupFailure {
                step: StartupStep::Verify,
                errno: 0,
            }),
        ] {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        for r in [
            Reply::Ok,
            Reply::Refused("no".into()),
            Reply::Socket { path: 2 },
            Reply::Handover { len: 3_000_000 },
            Reply::Reload { len: 0 },
        ] {
            assert_eq!(Reply::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn every_malformation_is_an_error() {
        let good = Request::Rebind { path: 1 }.encode();
        assert_eq!(Request::decode(&good[..3]), Err(MsgError::Short(3)));
        let mut bad = good.clone();
        bad[1] += 1;
        assert!(matches!(Request::decode(&bad), Err(MsgError::Length { .. })));
        let mut bad = good.clone();
        bad[2] = 9;
        assert_eq!(Request::decode(&bad), Err(MsgError::Version(9)));
        let mut bad = good.clone();
        bad[3] = 0x7f;
        assert_eq!(Request::decode(&bad), Err(MsgError::Kind(0x7f)));
        let mut bad = good.clone();
        bad.push(0);
        bad[1] += 1;
        assert!(matches!(Request::decode(&bad), Err(MsgError::Fields { .. })));
        let bad = frame(KIND_RUN_HOOK, &[]);
        assert!(matches!(Request::decode(&bad), Err(MsgError::Fields { .. })));
        for name in [&b""[..], b"dsl\n", b"dsl\x1b[2J", b"../x/y", &[b'a'; 33], b"\xff"] {
            let mut f = vec![1];
            f.extend_from_slice(name);
            let bad = frame(KIND_RUN_HOOK, &f);
            assert_eq!(Request::decode(&bad), Err(MsgError::PathName), "{name:?}");
        }
        let bad = frame(KIND_RUN_HOOK, &[7, b'a']);
        assert_eq!(Request::decode(&bad), Err(MsgError::Event(7)));
        let bad = frame(KIND_STARTUP_FAILED, &[99, 0, 0, 0, 1]);
        assert_eq!(Request::decode(&bad), Err(MsgError::Step(99)));
        let bad = frame(KIND_STARTUP_FAILED, &[4, 0, 0, 0x10, 0]);
        assert_eq!(Request::decode(&bad), Err(MsgError::Errno(4096)));
        let bad = frame(KIND_STARTUP_FAILED, &[4, 0, 0, 1]);
        assert!(matches!(Request::decode(&bad), Err(MsgError::Fields { .. })));
        // Replies are not requests.
        assert_eq!(Request::decode(&Reply::Ok.encode()), Err(MsgError::Kind(KIND_OK)));
        // Exhaustive short inputs never panic.
        for len in 0..8 {
            for b in 0..=255u8 {
                let _ = Request::decode(&vec![b; len]);
                let _ = Reply::decode(&vec![b; len]);
            }
        }
    }
}
