//! The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum.
//!
//! Sums are ones' complement sums of big-endian 16-bit words, kept folded to
//! 16 bits and not complemented, so partial sums can be added together;
//! [`finish`] complements a sum into the value stored in a header.

/// Ones' complement sum of `data` (an odd last byte is padded with zero)
/// added to `initial`.
///
/// Adds 8 bytes at a time into a 128-bit accumulator: since 2^16 = 1 modulo
/// 2^16 - 1, the sum of big-endian 64-bit words folds to the same 16 bits
/// as the sum of 16-bit words, at a quarter of the additions. A packet of
/// 64 KiB adds at most 2^13 words, far from overflowing 128 bits.
pub fn sum(data: &[u8], initial: u16) -> u16 {
    let mut acc = u128::from(initial);
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let (a, b) = c.split_at(8);
        acc += u128::from(u64::from_be_bytes(a.try_into().unwrap_or_default()));
        acc += u128::from(u64::from_be_bytes(b.try_into().unwrap_or_default()));
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 8 {
        acc += u128::from(u64::from_be_bytes(rest[..8].try_into().unwrap_or_default()));
        rest = &rest[8..];
    }
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        acc += u128::from(u64::from_be_bytes(last));
    }
    fold(acc)
}

/// Folds a wide sum to 16 bits with end-around carry. Only an all-zero sum
/// folds to 0.
fn fold(acc: u128) -> u16 {
    let (lo, carry) = (acc as u64).overflowing_add((acc >> 64) as u64);
    let mut s = lo + u64::from(carry);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Ones' complement addition of two sums.
pub fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The checksum to store: the complement of the sum.
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// Sum of the TCP/UDP pseudo-header. `src` and `dst` are the 4-byte IPv4 or
/// 16-byte IPv6 addresses; `l4_len` is the transport header plus payload.
/// The IPv4 and IPv6 layouts differ but their sums are the same words.
pub fn pseudo_header_sum(src: &[u8], dst: &[u8], protocol: u8, l4_len: u16) -> u16 {
    let s = sum(src, 0);
    let s = sum(dst, s);
    add(add(s, u16::from(protocol)), l4_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook definition, one 16-bit word at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            s += u32::from(w);
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0), 0xddf2);
    }

    #[test]
    fn agrees_with_the_word_by_word_sum_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(167) ^ 0xa5) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(sum(&data[..len], 0), reference(&data[..len]), "len {len}");
        }
        let ones = vec![0xffu8; 70_000];
        assert_eq!(sum(&ones, 0), reference(&ones));
    }

    #[test]
    fn only_zeros_sum_to_zero() {
        assert_eq!(sum(&[0; 33], 0), 0);
        assert_eq!(sum(&[0xff, 0xff], 0), 0xffff);
        assert_eq!(sum(&[0xff, 0xff, 0, 1], 0), 1);
    }

    #[test]
    fn sums_add() {
        let data: Vec<u8> = (0..101u8).collect();
        let whole = sum(&data, 0x1234);
        let split = sum(&data[40..], sum(&data[..40], 0x1234));
        assert_eq!(whole, split);
        assert_eq!(add(0xffff, 0x0001), 0x0001);
    }

    #[test]
    fn ipv4_header_example() {
        // A well-known IPv4 header whose checksum is b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(sum(&h, 0)), 0xb861);
    }
}
