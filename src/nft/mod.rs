//! nftables: the canonical form of cloison's table and its text rendering (pure), and
//! the edge that runs `nft` (apply, list, counters).

pub mod canonical;
pub mod run;
pub mod text;

pub use run::{Counts, Nft, NftError};
