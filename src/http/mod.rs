//! Writing HTTP answers: the JSON envelope of SPEC §4 and the one error writer
//! ([`envelope`]), objects with their exact headers, ranges and 304s ([`delivery`]),
//! and how a body is presented to a browser ([`presentation`]).

pub mod delivery;
pub mod envelope;
pub mod exchange;
pub mod presentation;
