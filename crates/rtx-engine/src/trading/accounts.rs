//! Accounts and netting positions: balance, equity, margin, P&L, margin call and stop-out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rtx_monitoring::catalogue::{AccountGauges, Side, SymbolId};
use serde::Serialize;

use crate::market::{Market, CONTRACT_SIZE};

/// `lots` as a change of a netting position: positive to buy, negative to sell.
pub fn signed_lots(side: Side, lots: f64) -> f64 {
    if side == Side::Buy {
        lots
    } else {
        -lots
    }
}

/// One netting position: the signed volume and its average open price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Position {
    /// Signed lots: positive long, negative short.
    pub lots: f64,
    /// Average open price.
    pub average_price: f64,
    /// P&L realized on this symbol, in account currency.
    pub realized_pnl: f64,
}

/// An account's state; lock it through [`Account::lock`].
#[derive(Debug)]
pub struct AccountState {
    /// Cash balance in account currency.
    pub balance: f64,
    /// Positions by symbol.
    pub positions: HashMap<SymbolId, Position>,
    /// Below the margin-call level at the last evaluation.
    pub in_margin_call: bool,
    /// Margin held by orders that passed their risk check and have not filled or failed yet,
    /// and by resting orders (see the ledger), in USD.
    pub reserved_margin: f64,
    /// Lots of in-flight orders per symbol, `[buy, sell]`: an order only reduces a position
    /// by what the other in-flight orders on its side have not already claimed.
    pub in_flight_lots: HashMap<SymbolId, [f64; 2]>,
    /// Margin of finished in-flight orders kept in `reserved_margin` per symbol, `[buy, sell]`,
    /// until the last order in flight on that side is done (see the ledger's
    /// `release_on_account`).
    pub held_back: HashMap<SymbolId, [f64; 2]>,
    /// Resting limit and stop orders.
    pub resting: usize,
}

/// A trading account.
#[derive(Debug)]
pub struct Account {
    /// Identifier (`demo-1`).
    pub id: String,
    /// Group, used by the routing rule.
    pub group: String,
    state: Mutex<AccountState>,
    /// The account's metric gauges, resolved once.
    pub gauges: AccountGauges,
}

/// Figures derived from an account's state at current prices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AccountFigures {
    /// Cash balance.
    pub balance: f64,
    /// Balance plus unrealized P&L.
    pub equity: f64,
    /// Margin held by open positions.
    pub margin_used: f64,
    /// Margin held for orders in flight and resting orders.
    pub reserved_margin: f64,
    /// Equity minus margin used and reserved: what a new order may use.
    pub free_margin: f64,
    /// Equity over margin used, in percent (`None` with no margin used).
    pub margin_level: Option<f64>,
    /// Unrealized P&L.
    pub unrealized_pnl: f64,
}

impl Account {
    /// An account with `balance` and no positions.
    pub fn new(id: String, group: String, balance: f64, gauges: AccountGauges) -> Self {
        Self {
            id,
            group,
            state: Mutex::new(AccountState {
                balance,
                positions: HashMap::new(),
                in_margin_call: false,
                reserved_margin: 0.0,
                in_flight_lots: HashMap::new(),
                held_back: HashMap::new(),
                resting: 0,
            }),
            gauges,
        }
    }

    /// Locks the account for a read-modify-write.
    pub fn lock(&self) -> MutexGuard<'_, AccountState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Unrealized P&L of a position at current prices, in USD (the account currency).
pub fn unrealized_usd(market: &Market, symbol: SymbolId, p: &Position, now: f64) -> f64 {
    if p.lots == 0.0 {
        return 0.0;
    }
    let Some((quote, _, _)) = market.best(symbol, now, f64::INFINITY) else {
        return 0.0;
    };
    // A long closes at the bid, a short at the ask.
    let exit = if p.lots > 0.0 { quote.bid } else { quote.ask };
    let pnl_quote_ccy = (exit - p.average_price) * p.lots * CONTRACT_SIZE;
    market.to_usd(pnl_quote_ccy, &market.instrument(symbol).quote, now)
}

/// Notional of `lots` of `symbol` in USD at the current mid.
pub fn notional_usd(market: &Market, symbol: SymbolId, lots: f64, now: f64) -> f64 {
    let base = &market.instrument(symbol).base;
    market.to_usd(lots * CONTRACT_SIZE, base, now)
}

impl AccountState {
    /// Balance, equity and margin at current prices.
    pub fn figures(&self, market: &Market, leverage: f64, now: f64) -> AccountFigures {
        let mut unrealized = 0.0;
        let mut margin_used = 0.0;
        for (&symbol, p) in &self.positions {
            unrealized += unrealized_usd(market, symbol, p, now);
            margin_used += notional_usd(market, symbol, p.lots.abs(), now) / leverage;
        }
        let equity = self.balance + unrealized;
        AccountFigures {
            balance: self.balance,
            equity,
            margin_used,
            reserved_margin: self.reserved_margin,
            free_margin: equity - margin_used - self.reserved_margin,
            margin_level: (margin_used > 0.0).then(|| equity / margin_used * 100.0),
            unrealized_pnl: unrealized,
        }
    }

    /// Nets a fill into the position; returns the P&L it realized, in USD, already added to
    /// the balance.
    pub fn apply_fill(
        &mut self,
        market: &Market,
        symbol: SymbolId,
        side: Side,
        lots: f64,
        price: f64,
        now: f64,
    ) -> f64 {
        let signed = signed_lots(side, lots);
        let position = self.positions.entry(symbol).or_default();
        let mut realized_quote_ccy = 0.0;
        if position.lots == 0.0 || position.lots.signum() == signed.signum() {
            let total = position.lots + signed;
            position.average_price =
                (position.average_price * position.lots + price * signed) / total;
            position.lots = total;
        } else {
            let closing = signed.abs().min(position.lots.abs());
            realized_quote_ccy =
                (price - position.average_price) * closing * CONTRACT_SIZE * position.lots.signum();
            let remaining = position.lots + signed;
            if remaining.abs() < 1e-9 {
                position.lots = 0.0;
                position.average_price = 0.0;
            } else if remaining.signum() == position.lots.signum() {
                position.lots = remaining;
            } else {
                // The fill flipped the position: the rest opens at the fill price.
                position.lots = remaining;
                position.average_price = price;
            }
        }
        let realized = market.to_usd(realized_quote_ccy, &market.instrument(symbol).quote, now);
        position.realized_pnl += realized;
        self.balance += realized;
        realized
    }
}

impl AccountState {
    /// Re-applies a stored fill at start: rebuilds the position, leaving the stored balance
    /// (which already holds the realized P&L) as it is.
    pub fn replay_fill(
        &mut self,
        market: &Market,
        symbol: SymbolId,
        side: Side,
        lots: f64,
        price: f64,
    ) {
        let realized = self.apply_fill(market, symbol, side, lots, price, 0.0);
        self.balance -= realized;
    }
}

/// Every account, by id.
#[derive(Debug, Default)]
pub struct Accounts {
    by_id: HashMap<String, Arc<Account>>,
}

impl Accounts {
    /// Adds an account.
    pub fn insert(&mut self, account: Account) {
        self.by_id.insert(account.id.clone(), Arc::new(account));
    }

    /// Looks an account up.
    pub fn get(&self, id: &str) -> Option<&Arc<Account>> {
        self.by_id.get(id)
    }

    /// Every account, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtx_monitoring::catalogue::{CatalogueConfig, TradingMetrics};
    use rtx_monitoring::metrics::Registry;

    use crate::market::Quote;

    fn market() -> (Market, SymbolId) {
        let metrics =
            TradingMetrics::new(&Registry::disabled(), &CatalogueConfig::default()).unwrap();
        let eurusd = metrics.symbol("EURUSD").unwrap();
        let market = Market::new(metrics.clone());
        let lp = metrics.lp("OANDA").unwrap();
        market.publish(
            lp,
            eurusd,
            Quote {
                bid: 1.1000,
                ask: 1.1002,
                timestamp: crate::market::unix_now(),
            },
        );
        (market, eurusd)
    }

    fn state() -> AccountState {
        AccountState {
            balance: 10_000.0,
            positions: HashMap::new(),
            in_margin_call: false,
            reserved_margin: 0.0,
            in_flight_lots: HashMap::new(),
            held_back: HashMap::new(),
            resting: 0,
        }
    }

    #[test]
    fn netting_averages_adds_and_realizes_on_reduction() {
        let (market, eurusd) = market();
        let mut s = state();
        assert_eq!(
            s.apply_fill(&market, eurusd, Side::Buy, 1.0, 1.1000, 0.0),
            0.0
        );
        s.apply_fill(&market, eurusd, Side::Buy, 1.0, 1.1010, 0.0);
        let p = s.positions[&eurusd];
        assert!((p.lots - 2.0).abs() < 1e-12 && (p.average_price - 1.1005).abs() < 1e-12);
        // Selling 1 lot 10 pips above the average realizes 1 lot × 100,000 × 0.0010 = 100 USD.
        let realized = s.apply_fill(&market, eurusd, Side::Sell, 1.0, 1.1015, 0.0);
        assert!((realized - 100.0).abs() < 1e-6, "{realized}");
        assert!((s.balance - 10_100.0).abs() < 1e-6);
        assert!((s.positions[&eurusd].lots - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_fill_larger_than_the_position_flips_it_at_the_fill_price() {
        let (market, eurusd) = market();
        let mut s = state();
        s.apply_fill(&market, eurusd, Side::Buy, 1.0, 1.1000, 0.0);
        let realized = s.apply_fill(&market, eurusd, Side::Sell, 3.0, 1.0990, 0.0);
        assert!((realized + 100.0).abs() < 1e-6, "{realized}");
        let p = s.positions[&eurusd];
        assert!((p.lots + 2.0).abs() < 1e-12 && (p.average_price - 1.0990).abs() < 1e-12);
    }

    #[test]
    fn figures_mark_to_market_at_the_closing_side() {
        let (market, eurusd) = market();
        let mut s = state();
        s.apply_fill(&market, eurusd, Side::Buy, 1.0, 1.1002, 0.0);
        let f = s.figures(&market, 100.0, crate::market::unix_now());
        // A long closes at the bid: 2 pips below the entry = -20 USD.
        assert!((f.unrealized_pnl + 20.0).abs() < 1e-6, "{f:?}");
        assert!((f.margin_used - 1_100.0).abs() < 1.0, "{f:?}");
        assert!((f.free_margin - (f.equity - f.margin_used - f.reserved_margin)).abs() < 1e-9);
        let replayed = {
            let mut r = state();
            r.replay_fill(&market, eurusd, Side::Buy, 1.0, 1.1002);
            r.replay_fill(&market, eurusd, Side::Sell, 1.0, 1.1100);
            r
        };
        assert_eq!(
            replayed.balance, 10_000.0,
            "replay rebuilds positions, not the stored balance"
        );
    }
}
