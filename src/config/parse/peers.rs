//! `[[peer]]` tables: keys, allowed_ips, and one owner per prefix.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use ipnet::IpNet;
use mlvpn_keys::PublicKey;
use toml::Spanned;

use super::context::Ctx;
use super::raw::RawPeer;
use super::values::parse_cidrs;
use super::ConfigError;
use crate::config::{Mode, PeerConfig};

pub(super) fn parse_peers(
    cx: &Ctx<'_>,
    mode: Mode,
    raw: &[Spanned<RawPeer>],
    our_public: PublicKey,
) -> Result<Vec<PeerConfig>, ConfigError> {
    if raw.is_empty() {
        return cx.err_file(
            "no [[peer]]: a client needs its server's public key, a server one [[peer]] per client",
        );
    }
    if mode == Mode::Client && raw.len() > 1 {
        return cx.err(raw[1].span(), "a client has exactly one [[peer]] (its server)");
    }
    let mut peers: Vec<PeerConfig> = Vec::with_capacity(raw.len());
    // A concentrator has thousands of peers: duplicates by hash, not by scan.
    let mut seen: HashSet<PublicKey> = HashSet::with_capacity(raw.len());
    for p in raw.iter().map(Spanned::get_ref) {
        let public_key = peer_public_key(cx, p, our_public)?;
        if !seen.insert(public_key) {
            return cx.err(p.public_key.span(), "peer.public_key: duplicate peer");
        }
        let allowed_ips = peer_allowed_ips(cx, mode, p)?;
        peers.push(PeerConfig {
            public_key,
            allowed_ips,
        });
    }
    Ok(peers)
}

/// The peer's key: base64 of a real key, not a placeholder, not ours.
fn peer_public_key(cx: &Ctx<'_>, p: &RawPeer, our_public: PublicKey) -> Result<PublicKey, ConfigError> {
    let key_span = p.public_key.span();
    let text = p.public_key.get_ref().trim();
    // The example configs carry @...@ placeholders for deployments to fill.
    if text.len() > 1 && text.starts_with('@') && text.ends_with('@') {
        return cx.err(
            key_span,
            format!(
                "peer.public_key: \"{text}\" is a placeholder; replace it with the peer's key \
                 (`mlvpn-rs pubkey < KEYFILE` on the other side)"
            ),
        );
    }
    let public_key = match PublicKey::from_base64(text) {
        Ok(k) => k,
        Err(e) => {
            let msg = format!("peer.public_key: {e}; expected the output of `mlvpn-rs pubkey`");
            return cx.err(key_span, msg);
        }
    };
    if public_key == our_public {
        let msg = "peer.public_key: this is our own public key; expected the other side's";
        return cx.err(key_span, msg);
    }
    Ok(public_key)
}

/// The peer's allowed_ips: required on a server, everything by default on
/// a client.
fn peer_allowed_ips(cx: &Ctx<'_>, mode: Mode, p: &RawPeer) -> Result<Vec<IpNet>, ConfigError> {
    match &p.allowed_ips {
        Some(list) => {
            let nets = parse_cidrs(cx, "peer.allowed_ips", list.get_ref())?;
            if nets.is_empty() {
                return cx.err(list.span(), "peer.allowed_ips: empty; expected at least one CIDR");
            }
            Ok(nets)
        }
        // A client routes everything by default (a full tunnel: the
        // parent installs policy routing so the paths' own datagrams
        // keep to their uplinks, see docs/routing.md).
        None if mode == Mode::Client => Ok(["0.0.0.0/0", "::/0"]
            .iter()
            .map(|n| n.parse().expect("valid CIDR"))
            .collect()),
        None => cx.err(
            p.public_key.span(),
            "peer: a server peer needs allowed_ips \
             (the client's inner addresses, e.g. [\"10.42.0.2/32\"])",
        ),
    }
}

/// A prefix belongs to one peer: the same prefix (host bits aside) in two
/// peers' `allowed_ips` is refused, naming both lines. (Nested prefixes
/// are fine: the longest match decides.)
pub(super) fn check_prefixes_have_one_owner(
    cx: &Ctx<'_>,
    raw: &[Spanned<RawPeer>],
) -> Result<(), ConfigError> {
    let mut owner: HashMap<IpNet, (usize, usize)> = HashMap::new();
    for (i, p) in raw.iter().enumerate() {
        let Some(list) = &p.get_ref().allowed_ips else {
            continue;
        };
        for s in list.get_ref() {
            let Ok(net) = s.get_ref().parse::<IpNet>() else {
                continue;
            };
            match owner.entry(net.trunc()) {
                Entry::Occupied(e) if e.get().0 != i => {
                    let msg = format!(
                        "peer.allowed_ips: {} is also in the allowed_ips of the peer at line {}; \
                         a prefix belongs to one peer",
                        net.trunc(),
                        cx.line_of(e.get().1)
                    );
                    return cx.err(s.span(), msg);
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(v) => {
                    v.insert((i, s.span().start));
                }
            }
        }
    }
    Ok(())
}
