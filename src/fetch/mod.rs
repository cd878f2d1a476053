//! The fetch pipeline a download, the eager worker and a peer's fill all run: for an
//! original, the owner node or this node's cache ([`original`]); for a derived result,
//! the owner or a plan, the cache, the store's `_derived/` copy or a transform, and the
//! write back ([`derived`]).

pub mod derived;
pub mod original;
