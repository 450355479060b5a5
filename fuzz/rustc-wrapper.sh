#!/usr/bin/env bash
# RUSTC_WRAPPER for fuzz builds (fuzz/run.sh sets it): compiles the
# cryptography crates without coverage instrumentation. Their branches tell
# the fuzzer nothing about our code, and trace-compares in the field
# arithmetic made each Diffie-Hellman ~20x slower, most of the time of the
# `responder` and `transport` targets. Everything else is compiled as
# cargo-fuzz asks.
rustc=$1
shift
crate=
prev=
for a in "$@"; do
  [ "$prev" = --crate-name ] && crate=$a
  prev=$a
done
case "$crate" in
  curve25519_dalek | x25519_dalek | snow | chacha20 | chacha20poly1305 | poly1305 | blake2 | sha2 \
    | universal_hash | aead | cipher | rand_chacha | polyval | subtle | zeroize | digest | block_buffer) ;;
  *) exec "$rustc" "$@" ;;
esac
args=()
for a in "$@"; do
  case "$a" in
    -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-*) ;;
    *) args+=("$a") ;;
  esac
done
exec "$rustc" "${args[@]}"
