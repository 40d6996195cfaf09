//! The matching stage.

mod deliver;
pub(crate) use deliver::{needs_presence, presence_bound};
