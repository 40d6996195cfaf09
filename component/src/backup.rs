//! Online backup.
