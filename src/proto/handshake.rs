//! Noise `IKpsk2` handshake, one per path (via `snow`).
//!
//! The client is the initiator and knows the server's static key; the server
//! learns the client's static key from the first message and accepts it only
//! if it is a configured peer. The initiation's encrypted payload carries a
//! wall-clock timestamp (refused unless newer than the last one accepted for
//! that peer and path, so captured initiations cannot be replayed) and the
//! client's path id and name. The PSK slot is filled with zeros: the Noise
//! pattern keeps room for a pre-shared key without requiring one.
//!
//! The result of a completed handshake is a pair of raw ChaCha20-Poly1305 keys
//! ([`SessionKeys`]); the data plane uses them directly.

use mlvpn_keys::{PrivateKey, PublicKey};
use thiserror::Error;
use zeroize::Zeroizing;

use super::cookie::Cookie;
use super::mac::Mac1Key;
use super::wire::{self, Initiation, Response, INIT_LEN, INIT_PAYLOAD_LEN, MAC_LEN, RESP_LEN};

const NOISE_PARAMS: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// Mixed into every handshake hash: a handshake completes only between two
/// speakers of this protocol at this version (another Noise-based protocol,
/// or a later version with other framing, cannot be confused with it).
const PROLOGUE: &[u8] = b"mlvpn-rs protocol 1";
const PSK: [u8; 32] = [0; 32];
/// Longest path name carried in an initiation.
pub const MAX_PATH_NAME: usize = 32;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("bad mac1")]
    BadMac,
    #[error("noise: {0}")]
    Noise(String),
    #[error("malformed handshake payload")]
    Payload,
}

impl From<snow::Error> for HandshakeError {
    fn from(e: snow::Error) -> Self {
        HandshakeError::Noise(e.to_string())
    }
}

/// Raw transport keys, zeroized on drop.
pub struct SessionKeys {
    pub send: Zeroizing<[u8; 32]>,
    pub recv: Zeroizing<[u8; 32]>,
}

/// What the initiator tells the responder inside the encrypted payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitPayload {
    /// Wall clock, ns since 1970; strictly increasing per peer.
    pub unix_ns: u64,
    /// The client's index of the path (stable for the daemon's lifetime).
    pub path_id: u8,
    /// The client's name of the path (for status and logs).
    pub path_name: String,
}

impl InitPayload {
    fn encode(&self) -> [u8; INIT_PAYLOAD_LEN] {
        let mut b = [0u8; INIT_PAYLOAD_LEN];
        b[..8].copy_from_slice(&self.unix_ns.to_le_bytes());
        b[8] = self.path_id;
        let name = &self.path_name.as_bytes()[..self.path_name.len().min(MAX_PATH_NAME)];
        b[9] = name.len() as u8;
        b[10..10 + name.len()].copy_from_slice(name);
        b
    }

    fn decode(b: &[u8]) -> Result<Self, HandshakeError> {
        if b.len() != INIT_PAYLOAD_LEN {
            return Err(HandshakeError::Payload);
        }
        let n = b[9] as usize;
        if n > MAX_PATH_NAME {
            return Err(HandshakeError::Payload);
        }
        let name = std::str::from_utf8(&b[10..10 + n]).map_err(|_| HandshakeError::Payload)?;
        if !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        {
            return Err(HandshakeError::Payload);
        }
        Ok(InitPayload {
            unix_ns: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            path_id: b[8],
            path_name: name.to_string(),
        })
    }
}

fn builder(local: &PrivateKey) -> snow::Builder<'_> {
    snow::Builder::new(NOISE_PARAMS.parse().expect("valid noise params"))
        .local_private_key(local.as_bytes())
        .prologue(PROLOGUE)
        .psk(2, &PSK)
}

/// An initiation sent and waiting for its response.
pub struct Initiator {
    hs: snow::HandshakeState,
    pub sender: u32,
    /// The `mac1` sent: a cookie reply to this initiation is bound to it.
    pub mac1: [u8; MAC_LEN],
    /// Whether it carried a `mac2` (a cookie).
    pub with_cookie: bool,
    /// A cookie reply to it was taken (at most one is).
    pub cookie_taken: bool,
}

impl Initiator {
    /// Builds an initiation to `remote` into a new message; with the
    /// server's `cookie`, if we hold a fresh one, as `mac2`.
    pub fn start(
        local: &PrivateKey,
        remote: &PublicKey,
        sender: u32,
        payload: &InitPayload,
        cookie: Option<&Cookie>,
    ) -> Result<(Initiator, [u8; INIT_LEN]), HandshakeError> {
        let mut hs = builder(local).remote_public_key(&remote.0).build_initiator()?;
        let mut msg = [0u8; INIT_LEN];
        let at = wire::encode_handshake_header(&mut msg, wire::TYPE_INITIATION, sender, None);
        let n = hs.write_message(&payload.encode(), &mut msg[at..INIT_LEN - 2 * MAC_LEN])?;
        debug_assert_eq!(at + n, INIT_LEN - 2 * MAC_LEN);
        let mac1_at = INIT_LEN - 2 * MAC_LEN;
        let mac = Mac1Key::for_receiver(remote).compute(&msg[..mac1_at]);
        msg[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);
        let mac2_at = mac1_at + MAC_LEN;
        if let Some(cookie) = cookie {
            let m2 = super::cookie::mac2(cookie, &msg[..mac2_at]);
            msg[mac2_at..].copy_from_slice(&m2);
        }
        Ok((
            Initiator {
                hs,
                sender,
                mac1: mac,
                with_cookie: cookie.is_some(),
                cookie_taken: false,
            },
            msg,
        ))
    }

    /// Completes the handshake with the responder's message. `mac1` must
    /// already have been verified with our own [`Mac1Key`]. A response that
    /// fails leaves the handshake as it was (snow restores its state), so a
    /// forged response cannot keep the genuine one from completing it.
    pub fn finish(&mut self, resp: &Response<'_>) -> Result<SessionKeys, HandshakeError> {
        let mut payload = [0u8; 16];
        let n = self.hs.read_message(resp.noise, &mut payload)?;
        if n != 0 || !self.hs.is_handshake_finished() {
            return Err(HandshakeError::Payload);
        }
        let (i2r, r2i) = self.hs.dangerously_get_raw_split();
        Ok(SessionKeys {
            send: Zeroizing::new(i2r),
            recv: Zeroizing::new(r2i),
        })
    }
}

/// A responder that has read an initiation and knows who sent it.
pub struct Responder {
    hs: snow::HandshakeState,
    /// The initiator's static key, as proven by the Noise message.
    pub remote: PublicKey,
    pub payload: InitPayload,
    /// The initiator's session index.
    pub remote_index: u32,
}

impl Responder {
    /// Reads an initiation. `mac1` must already have been checked (it is
    /// cheap; this is a Diffie-Hellman).
    pub fn read(local: &PrivateKey, init: &Initiation<'_>) -> Result<Responder, HandshakeError> {
        let mut hs = builder(local).build_responder()?;
        let mut payload = [0u8; INIT_PAYLOAD_LEN + 16];
        let n = hs.read_message(init.noise, &mut payload)?;
        let payload = InitPayload::decode(&payload[..n])?;
        let remote = hs.get_remote_static().ok_or(HandshakeError::Payload)?;
        let remote = PublicKey(remote.try_into().map_err(|_| HandshakeError::Payload)?);
        Ok(Responder {
            hs,
            remote,
            payload,
            remote_index: init.sender,
        })
    }

    /// Writes the response (with `mac1` for the initiator) and returns the
    /// transport keys.
    pub fn respond(mut self, sender: u32) -> Result<(SessionKeys, [u8; RESP_LEN]), HandshakeError> {
        let mut msg = [0u8; RESP_LEN];
        let at =
            wire::encode_handshake_header(&mut msg, wire::TYPE_RESPONSE, sender, Some(self.remote_index));
        let mac1_at = RESP_LEN - 2 * MAC_LEN;
        let n = self.hs.write_message(&[], &mut msg[at..mac1_at])?;
        debug_assert_eq!(at + n, mac1_at);
        let mac = Mac1Key::for_receiver(&self.remote).compute(&msg[..mac1_at]);
        msg[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);
        let (i2r, r2i) = self.hs.dangerously_get_raw_split();
        Ok((
            SessionKeys {
                send: Zeroizing::new(r2i),
                recv: Zeroizing::new(i2r),
            },
            msg,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{decode, Message};
    use crate::test_support::fixtures::key;

    fn keys() -> (PrivateKey, PrivateKey) {
        (key(7), key(9))
    }

    #[test]
    fn full_handshake_agrees_on_keys() {
        let (client, server) = keys();
        let payload = InitPayload {
            unix_ns: 42,
            path_id: 3,
            path_name: "lte".into(),
        };
        let (ini, msg) = Initiator::start(&client, &server.public_key(), 11, &payload, None).unwrap();
        let Ok(Message::Initiation(init)) = decode(&msg) else {
            panic!()
        };
        assert!(Mac1Key::for_receiver(&server.public_key()).verify(init.mac1_covered, init.mac1));
        let r = Responder::read(&server, &init).unwrap();
        assert_eq!(r.remote, client.public_key());
        assert_eq!(r.payload, payload);
        assert_eq!(r.remote_index, 11);
        let (skeys, resp) = r.respond(22).unwrap();
        let Ok(Message::Response(resp)) = decode(&resp) else {
            panic!()
        };
        assert!(Mac1Key::for_receiver(&client.public_key()).verify(resp.mac1_covered, resp.mac1));
        assert_eq!((resp.sender, resp.receiver), (22, 11));
        let mut ini = ini;
        let ckeys = ini.finish(&resp).unwrap();
        assert_eq!(*ckeys.send, *skeys.recv);
        assert_eq!(*ckeys.recv, *skeys.send);
        assert_ne!(*ckeys.send, *ckeys.recv);
    }

    #[test]
    fn a_forged_response_leaves_the_handshake_for_the_genuine_one() {
        let (client, server) = keys();
        let payload = InitPayload {
            unix_ns: 42,
            path_id: 0,
            path_name: "dsl".into(),
        };
        let (mut ini, msg) = Initiator::start(&client, &server.public_key(), 11, &payload, None).unwrap();
        let Ok(Message::Initiation(init)) = decode(&msg) else {
            panic!()
        };
        let (skeys, genuine) = Responder::read(&server, &init).unwrap().respond(22).unwrap();
        // A forgery: the genuine shape, another ephemeral key, a valid mac1.
        let mut forged = genuine;
        forged[12..44].copy_from_slice(&[0x55; 32]);
        let mac1_at = RESP_LEN - 2 * MAC_LEN;
        let mac = Mac1Key::for_receiver(&client.public_key()).compute(&forged[..mac1_at]);
        forged[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);
        for _ in 0..3 {
            let Ok(Message::Response(f)) = decode(&forged) else {
                panic!()
            };
            assert!(ini.finish(&f).is_err());
        }
        let Ok(Message::Response(g)) = decode(&genuine) else {
            panic!()
        };
        let ckeys = ini.finish(&g).expect("the genuine response still completes it");
        assert_eq!(*ckeys.send, *skeys.recv);
    }

    #[test]
    fn wrong_responder_key_fails() {
        let (client, server) = keys();
        let other = key(5);
        let payload = InitPayload {
            unix_ns: 1,
            path_id: 0,
            path_name: "a".into(),
        };
        let (_, msg) = Initiator::start(&client, &server.public_key(), 1, &payload, None).unwrap();
        let Ok(Message::Initiation(init)) = decode(&msg) else {
            panic!()
        };
        assert!(Responder::read(&other, &init).is_err());
    }

    #[test]
    fn tampered_initiation_fails() {
        let (client, server) = keys();
        let payload = InitPayload {
            unix_ns: 1,
            path_id: 0,
            path_name: "a".into(),
        };
        let (_, mut msg) = Initiator::start(&client, &server.public_key(), 1, &payload, None).unwrap();
        msg[60] ^= 1;
        let Ok(Message::Initiation(init)) = decode(&msg) else {
            panic!()
        };
        assert!(!Mac1Key::for_receiver(&server.public_key()).verify(init.mac1_covered, init.mac1));
        assert!(Responder::read(&server, &init).is_err());
    }
}
