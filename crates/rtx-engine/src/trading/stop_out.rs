//! Stop-out: closing every position of an account whose margin level fell below the stop-out
//! level, at market, as B-book fills. A closing order bypasses the risk checks (refusing it
//! would leave the account losing), and is counted as an order path the drain waits for.

use std::sync::Arc;
use std::time::Instant;

use rtx_monitoring::catalogue::{OrderType, Outcome, Route, Side, SymbolId};

use super::accounts::{Account, Position};
use super::router::{Execution, OrderRequest, Router};
use crate::market::unix_now;

impl Router {
    /// Closes every position of `account` at market. Counts one stop-out when it closed
    /// anything; does nothing while the engine drains (the next start revalues the account).
    pub async fn stop_out(&self, account: &Arc<Account>) {
        let Some(_in_flight) = self.enter() else {
            return;
        };
        let positions: Vec<(SymbolId, Position)> = account
            .lock()
            .positions
            .iter()
            .filter(|(_, p)| p.lots != 0.0)
            .map(|(s, p)| (*s, *p))
            .collect();
        let mut closed = 0usize;
        for (symbol, p) in positions {
            let req = OrderRequest {
                account: Arc::clone(account),
                symbol,
                side: if p.lots > 0.0 { Side::Sell } else { Side::Buy },
                order_type: OrderType::Market,
                volume: p.lots.abs(),
                price: None,
                client_order_id: Some("stop-out".to_owned()),
            };
            let now = unix_now();
            let Some((quote, _, _)) = self.market().best(symbol, now, f64::INFINITY) else {
                continue;
            };
            let price = quote.price_for(req.side);
            let exec = Execution {
                outcome: Outcome::Filled,
                route: Route::BBook,
                price: Some(price),
                arrival_price: None,
                lp: None,
                reason: Some("stop-out".to_owned()),
                reject: None,
            };
            let record = self.new_record(&req, now);
            let stored = self
                .finish(req, record, exec, None, Instant::now(), true)
                .await;
            closed += usize::from(stored.is_ok());
        }
        if closed > 0 {
            self.metrics.accounts.record_stopout();
        }
    }
}
