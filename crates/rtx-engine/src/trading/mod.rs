//! The trading core: accounts and positions (`accounts.rs`), the order router and execution
//! (`router.rs`), what orders hold while they are checked and in flight (`ledger.rs`), resting
//! limit and stop orders (`book.rs`), closing out an account (`stop_out.rs`), and the
//! mark-to-market loop that drives margin calls and stop-outs (`risk.rs`).

pub mod accounts;
mod book;
mod ledger;
pub mod risk;
pub mod router;
mod stop_out;

pub use router::{OrderRequest, Router, RouterConfig, SubmitError};
