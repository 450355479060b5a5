//! Per-source-address rate limit for handshakes that reach Diffie-Hellman
//! while the server is under load (their `mac2` proved the address).
//!
//! A token bucket per IPv4 address or IPv6 /64 (not per port, nor per IPv6
//! address: one host, or one customer's /64, gets one budget however many
//! ports and addresses it uses, as in WireGuard), in a table of at most
//! [`MAX_ENTRIES`]. Full
//! buckets idle for a second carry no information and are dropped when the
//! table fills; if it is still full, an address not in it is refused (a
//! flood from more addresses than that is what the cookie stops anyway).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Handshakes per second per address, sustained.
pub const RATE_PER_SEC: f64 = 20.0;
/// Handshakes an address may make at once.
pub const BURST: f64 = 5.0;
/// Addresses tracked at most.
pub const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    /// Takes a token for `ip`; false = over its rate (or the table is full).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = budget_holder(ip);
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_ENTRIES {
            self.buckets
                .retain(|_, (_, last)| now.saturating_duration_since(*last) < Duration::from_secs(1));
            if self.buckets.len() >= MAX_ENTRIES {
                return false;
            }
        }
        let (tokens, last) = self.buckets.entry(ip).or_insert((BURST, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * RATE_PER_SEC;
        *tokens = (*tokens + refill).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The address a budget belongs to: an IPv4 address, or the /64 of an IPv6
/// one (a host typically owns a whole /64 and could rotate through it).
fn budget_holder(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(a) & !(u128::MAX >> 64)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_slash_64_shares_one_budget() {
        let t = Instant::now();
        let mut r = RateLimiter::default();
        let allowed = (0..100u16)
            .filter(|i| r.allow(format!("2001:db8:1:2::{i:x}").parse().unwrap(), t))
            .count();
        assert_eq!(allowed, BURST as usize, "100 addresses of one /64");
        assert_eq!(r.len(), 1);
        assert!(
            r.allow("2001:db8:1:3::1".parse().unwrap(), t),
            "the next /64 has its own"
        );
        // IPv4-mapped addresses (dual-stack sockets) count as IPv4.
        assert!(r.allow("::ffff:192.0.2.9".parse().unwrap(), t));
        assert!(r.buckets.contains_key(&"192.0.2.9".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn an_address_gets_its_burst_then_its_rate() {
        let t = Instant::now();
        let mut r = RateLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..100).filter(|_| r.allow(ip, t)).count();
        assert_eq!(allowed, BURST as usize);
        // One second later: 20 more, not 100.
        let later = t + Duration::from_secs(1);
        let allowed = (0..100).filter(|_| r.allow(ip, later)).count();
        assert_eq!(allowed, BURST as usize, "refill is capped at the burst");
        // Spread over a second at 50/s: about 20 pass.
        let allowed = (0..50)
            .filter(|i| r.allow(ip, later + Duration::from_millis(20 * (i + 1))))
            .count();
        assert!((19..=21).contains(&allowed), "{allowed}");
        // Another address is not affected.
        assert!(r.allow("192.0.2.2".parse().unwrap(), later));
    }

    #[test]
    fn the_table_never_grows_past_its_bound() {
        let t = Instant::now();
        let mut r = RateLimiter::default();
        for i in 0..(MAX_ENTRIES as u32 + 1000) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let ok = r.allow(ip, t);
            assert_eq!(ok, (i as usize) < MAX_ENTRIES, "address {i}");
        }
        assert_eq!(r.len(), MAX_ENTRIES);
        // Idle entries make room again.
        assert!(r.allow("192.0.2.9".parse().unwrap(), t + Duration::from_secs(2)));
        assert_eq!(r.len(), 1);
    }
}
