//! Eager derivation (`apps.<id>.eager`): results made in the background as soon as an
//! upload of an image completes, so the first download of each is a cache `HIT`.
//! [`queue`] is where uploads are handed in (below the services every request
//! shares); [`worker`] makes their results through the download's own pipeline.

pub mod queue;
pub mod worker;
