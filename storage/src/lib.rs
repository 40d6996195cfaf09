//! Roost's sled store (implementation in progress).
