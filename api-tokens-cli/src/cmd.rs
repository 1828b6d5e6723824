//! The commands, one module per concern.

pub mod import;
pub mod keys;
pub mod manage;
pub mod report;
pub mod revoke;
