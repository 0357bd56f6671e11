//! The nftables model, pure: the canonical form of cloison's table (the one comparison
//! of a live table with a plan), its `nft -f` text, and reading counters in a listing.
//! Running `nft` is an edge, in the `cloison` crate.

pub mod canonical;
pub mod listing;
pub mod text;

pub use canonical::{Sync, compare};
pub use listing::{Counts, carry_counters, counters, keep_highest};
