//! The trading core: accounts and positions, the order router with its risk checks, resting
//! limit and stop orders, and the mark-to-market loop that drives margin calls and stop-outs.

pub mod accounts;
pub mod risk;
pub mod router;

pub use router::{OrderRequest, Router, RouterConfig, SubmitError};
