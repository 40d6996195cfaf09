//! Storage contract suite.
