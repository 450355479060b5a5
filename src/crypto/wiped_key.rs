//! [`WipedKey`]: a ring AEAD key whose bytes are zeroed when it is dropped.
//!
//! ring's key objects do not zeroize on drop (RustCrypto's do). The key is
//! kept in its own heap allocation as `MaybeUninit<LessSafeKey>`, so that
//! `Drop` can overwrite every byte of it with zeros (volatile writes, via
//! `zeroize`) without ever leaving an invalid `LessSafeKey` that could be
//! read or dropped: `MaybeUninit` has no validity invariant and never runs
//! its contents' destructor.
//!
//! That skipping the destructor loses nothing was checked in ring 0.17.14:
//! `LessSafeKey` is `{ inner: KeyInner, algorithm: &'static Algorithm }`,
//! `KeyInner` an enum of fixed-size key schedules (ChaCha20: `[u32; 8]`) held
//! inline, no heap memory, and no `Drop` impl anywhere in ring's library
//! code. Soundness does not depend on it; wiping everything does.
//!
//! Not covered (as with any Rust value moved by value): copies the compiler
//! may leave on the stack while ring builds the key before it is boxed. The
//! raw key bytes the caller passes in are the caller's to wipe
//! ([`crate::proto::handshake::SessionKeys`] holds them `Zeroizing`).

use std::mem::MaybeUninit;
use std::sync::atomic::{compiler_fence, Ordering};

use ring::aead::LessSafeKey;
use zeroize::Zeroize;

pub struct WipedKey(Box<MaybeUninit<LessSafeKey>>);

impl WipedKey {
    pub fn new(key: LessSafeKey) -> Self {
        WipedKey(Box::new(MaybeUninit::new(key)))
    }

    #[inline]
    pub fn get(&self) -> &LessSafeKey {
        // SAFETY: initialised by `new`; only `drop` de-initialises it (zeros), and nothing reads it after.
        unsafe { self.0.assume_init_ref() }
    }
}

impl Drop for WipedKey {
    fn drop(&mut self) {
        // Volatile writes of zeros over all `size_of::<LessSafeKey>()` bytes.
        self.0.zeroize();
        compiler_fence(Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::aead::{UnboundKey, CHACHA20_POLY1305};

    /// Only after a wipe: before it, unused enum space and padding are uninitialised.
    fn bytes(w: &WipedKey) -> Vec<u8> {
        let p = w.0.as_ptr().cast::<u8>();
        (0..std::mem::size_of::<LessSafeKey>())
            // SAFETY: in bounds of the boxed value; called only after a wipe initialised every byte.
            .map(|i| unsafe { p.add(i).read() })
            .collect()
    }

    #[test]
    fn wipes_the_key_in_place() {
        let key = [0xa5u8; 32];
        let mut w = WipedKey::new(LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &key).unwrap(),
        ));
        assert_eq!(w.get().algorithm(), &CHACHA20_POLY1305);
        // What `drop` does, observed before the allocation is freed; dropping
        // `w` afterwards only writes the zeros again.
        w.0.zeroize();
        assert!(bytes(&w).iter().all(|&b| b == 0));
    }
}
