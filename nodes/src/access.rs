//! The capability table (§4.1) and the one `may()` check every operation calls first.
//! Filled in by the engine work; see `service`.
