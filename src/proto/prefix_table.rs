//! Cryptokey routing: which peer owns an inner address, by longest prefix.
//!
//! A server may list `10.42.0.0/16` for one peer and `10.42.1.5/32` for
//! another: the /32 wins for 10.42.1.5 whatever the order of the config
//! (WireGuard's rule). The same table answers both directions: a packet from
//! the TUN goes to the peer that owns its destination, and a packet from
//! peer P is delivered only if P owns its source.
//!
//! One hash map per prefix length in use, searched from the longest: a
//! lookup costs one hash probe per distinct length (a fleet of /32s: one),
//! whatever the number of peers.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Maps prefixes to values (peer indices); lookups by longest match.
#[derive(Debug, Clone)]
pub struct PrefixTable<V> {
    v4: Family<u32, V>,
    v6: Family<u128, V>,
}

impl<V> Default for PrefixTable<V> {
    fn default() -> Self {
        PrefixTable {
            v4: Family::default(),
            v6: Family::default(),
        }
    }
}

/// The prefixes of one address family, by length.
#[derive(Debug, Clone)]
struct Family<A, V> {
    /// (prefix length, prefixes of that length), longest first.
    by_len: Vec<(u8, HashMap<A, V>)>,
}

impl<A, V> Default for Family<A, V> {
    fn default() -> Self {
        Family { by_len: Vec::new() }
    }
}

impl<A: Copy + Eq + std::hash::Hash, V: Copy> Family<A, V> {
    /// Inserts; returns the value the prefix had before, if any.
    fn insert(&mut self, len: u8, masked: A, v: V) -> Option<V> {
        let at = match self.by_len.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(i) => i,
            Err(i) => {
                self.by_len.insert(i, (len, HashMap::new()));
                i
            }
        };
        self.by_len[at].1.insert(masked, v)
    }

    fn lookup(&self, mask: impl Fn(u8) -> A) -> Option<V> {
        self.by_len
            .iter()
            .find_map(|(len, map)| map.get(&mask(*len)).copied())
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl<V: Copy> PrefixTable<V> {
    /// Adds `net` (host bits ignored) for `v`; returns the value it replaced
    /// if the same prefix was already in the table.
    pub fn insert(&mut self, net: IpNet, v: V) -> Option<V> {
        let len = net.prefix_len();
        match net.addr() {
            IpAddr::V4(a) => self.v4.insert(len, mask4(a.into(), len), v),
            IpAddr::V6(a) => self.v6.insert(len, mask6(a.into(), len), v),
        }
    }

    /// The value of the longest prefix that contains `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<V> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.lookup(|len| mask4(a, len))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.lookup(|len| mask6(a, len))
            }
        }
    }

    pub fn clear(&mut self) {
        self.v4.by_len.clear();
        self.v6.by_len.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_longest_prefix_wins_whatever_the_insertion_order() {
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let nets = [net("10.42.0.0/16"), net("10.42.1.5/32"), net("0.0.0.0/0")];
            let mut t = PrefixTable::default();
            for i in order {
                assert_eq!(t.insert(nets[i], i), None);
            }
            assert_eq!(t.lookup(ip("10.42.1.5")), Some(1));
            assert_eq!(t.lookup(ip("10.42.1.6")), Some(0));
            assert_eq!(t.lookup(ip("10.43.0.1")), Some(2));
            assert_eq!(t.lookup(ip("::1")), None, "no IPv6 prefix");
        }
    }

    #[test]
    fn host_bits_are_ignored_and_a_same_prefix_is_reported() {
        let mut t = PrefixTable::default();
        assert_eq!(t.insert(net("10.42.1.77/24"), 'a'), None);
        assert_eq!(t.insert(net("10.42.1.0/24"), 'b'), Some('a'));
        assert_eq!(t.lookup(ip("10.42.1.200")), Some('b'));
        assert_eq!(t.lookup(ip("10.42.2.1")), None);
    }

    #[test]
    fn ipv6_and_the_edges() {
        let mut t = PrefixTable::default();
        t.insert(net("::/0"), 0);
        t.insert(net("fd00::/64"), 1);
        t.insert(net("fd00::5/128"), 2);
        t.insert(net("255.255.255.255/32"), 3);
        assert_eq!(t.lookup(ip("fd00::5")), Some(2));
        assert_eq!(t.lookup(ip("fd00::6")), Some(1));
        assert_eq!(t.lookup(ip("fd00:0:0:1::6")), Some(0));
        assert_eq!(t.lookup(ip("255.255.255.255")), Some(3));
        assert_eq!(t.lookup(ip("255.255.255.254")), None);
        // IPv4-mapped IPv6 is IPv6 here (the TUN hands real IPv4 as IPv4).
        assert_eq!(t.lookup(ip("::ffff:255.255.255.255")), Some(0));
        t.clear();
        assert_eq!(t.lookup(ip("fd00::5")), None);
    }
}
