//! Guides: longer walks through a deployment than the crate docs' tutorial. Each code block is
//! a doctest, except where a block needs a crate this one does not depend on (it says which).

#[doc = include_str!("guide/web_service.md")]
pub mod web_service {}
