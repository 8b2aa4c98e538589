//! The resting-order book: limit and stop orders waiting for their price, kept sorted by
//! trigger price per symbol and kind, so that matching a quote costs in proportion to the
//! orders it triggers, not to every order resting. Owns only the waiting orders; what they
//! hold (margin, the account's count) is the ledger's.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rtx_monitoring::catalogue::{OrderType, Side};

use super::ledger::Reservation;
use super::router::OrderRequest;
use crate::market::Quote;
use crate::store::OrderRecord;

/// A resting order: the request, its stored record, and the margin it holds.
#[derive(Clone, Debug)]
pub struct Resting {
    /// The validated request.
    pub request: OrderRequest,
    /// The order as stored (`pending`).
    pub record: OrderRecord,
    /// What it holds on its account.
    pub reservation: Reservation,
}

/// A trigger price, ordered totally, then the arrival sequence that keeps equal prices apart
/// and in time priority.
#[derive(Clone, Copy, Debug)]
struct Key(f64, u64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// One symbol's resting orders in four sorted maps, one per trigger condition.
#[derive(Debug, Default)]
struct SymbolBook {
    /// Limit buys: fire when the ask falls to their price or below.
    limit_buys: BTreeMap<Key, Resting>,
    /// Stop buys: fire when the ask rises to their price or above.
    stop_buys: BTreeMap<Key, Resting>,
    /// Limit sells: fire when the bid rises to their price or above.
    limit_sells: BTreeMap<Key, Resting>,
    /// Stop sells: fire when the bid falls to their price or below.
    stop_sells: BTreeMap<Key, Resting>,
}

/// Removes and returns the entries priced at `price` or above.
fn take_at_or_above(map: &mut BTreeMap<Key, Resting>, price: f64, out: &mut Vec<Resting>) {
    if map.last_key_value().is_some_and(|(k, _)| k.0 >= price) {
        out.extend(map.split_off(&Key(price, 0)).into_values());
    }
}

/// Removes and returns the entries priced at `price` or below.
fn take_at_or_below(map: &mut BTreeMap<Key, Resting>, price: f64, out: &mut Vec<Resting>) {
    if map.first_key_value().is_some_and(|(k, _)| k.0 <= price) {
        let above = map.split_off(&Key(price, u64::MAX));
        out.extend(std::mem::replace(map, above).into_values());
    }
}

/// Every symbol's resting orders.
#[derive(Debug)]
pub struct RestingBook {
    symbols: Vec<SymbolBook>,
    next_seq: u64,
}

impl RestingBook {
    /// An empty book for `symbols` symbols.
    pub fn new(symbols: usize) -> Self {
        Self {
            symbols: (0..symbols).map(|_| SymbolBook::default()).collect(),
            next_seq: 0,
        }
    }

    /// Adds a limit or stop order (a market order or one without a price is ignored: it
    /// cannot rest). Returns how many orders now rest on its symbol.
    pub fn insert(&mut self, resting: Resting) -> usize {
        let request = &resting.request;
        let Some(price) = request.price else {
            return self.len(request.symbol.index());
        };
        let symbol = request.symbol.index();
        let book = &mut self.symbols[symbol];
        let map = match (request.order_type, request.side) {
            (OrderType::Market, _) => return self.len(symbol),
            (OrderType::Limit, Side::Buy) => &mut book.limit_buys,
            (OrderType::Stop, Side::Buy) => &mut book.stop_buys,
            (OrderType::Limit, Side::Sell) => &mut book.limit_sells,
            (OrderType::Stop, Side::Sell) => &mut book.stop_sells,
        };
        self.next_seq += 1;
        map.insert(Key(price, self.next_seq), resting);
        self.len(symbol)
    }

    /// Removes and returns the orders of symbol `index` that `quote` triggers, in price then
    /// time priority within each kind.
    pub fn take_triggered(&mut self, index: usize, quote: &Quote) -> Vec<Resting> {
        let book = &mut self.symbols[index];
        let mut fired = Vec::new();
        take_at_or_above(&mut book.limit_buys, quote.ask, &mut fired);
        take_at_or_below(&mut book.stop_buys, quote.ask, &mut fired);
        take_at_or_below(&mut book.limit_sells, quote.bid, &mut fired);
        take_at_or_above(&mut book.stop_sells, quote.bid, &mut fired);
        fired
    }

    /// Orders resting on symbol `index`.
    pub fn len(&self, index: usize) -> usize {
        let book = &self.symbols[index];
        book.limit_buys.len()
            + book.stop_buys.len()
            + book.limit_sells.len()
            + book.stop_sells.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OrderStatus;
    use crate::trading::accounts::Account;
    use crate::trading::router::triggers;
    use proptest::prelude::*;
    use rtx_monitoring::catalogue::{CatalogueConfig, SymbolId, TradingMetrics};
    use rtx_monitoring::metrics::Registry;
    use std::sync::Arc;

    fn resting(
        symbol: SymbolId,
        order_type: OrderType,
        side: Side,
        price: f64,
        n: usize,
    ) -> Resting {
        let metrics =
            TradingMetrics::new(&Registry::disabled(), &CatalogueConfig::default()).unwrap();
        let account = Arc::new(Account::new(
            "a".into(),
            "retail".into(),
            0.0,
            metrics.accounts.account("a"),
        ));
        Resting {
            request: OrderRequest {
                account,
                symbol,
                side,
                order_type,
                volume: 1.0,
                price: Some(price),
                client_order_id: None,
            },
            record: OrderRecord {
                id: n.to_string(),
                client_order_id: None,
                account_id: "a".into(),
                symbol: "EURUSD".into(),
                side,
                order_type,
                volume: 1.0,
                price: Some(price),
                status: OrderStatus::Pending,
                reason: None,
                route: None,
                fill_price: None,
                lp: None,
                created_at: String::new(),
                latency_us: 0,
            },
            reservation: Reservation::default(),
        }
    }

    fn symbol() -> SymbolId {
        TradingMetrics::new(&Registry::disabled(), &CatalogueConfig::default())
            .unwrap()
            .symbol("EURUSD")
            .unwrap()
    }

    fn kind() -> impl Strategy<Value = (OrderType, Side)> {
        prop_oneof![
            Just((OrderType::Limit, Side::Buy)),
            Just((OrderType::Stop, Side::Buy)),
            Just((OrderType::Limit, Side::Sell)),
            Just((OrderType::Stop, Side::Sell)),
        ]
    }

    proptest! {
        /// The book fires exactly the orders the trigger rule says a quote fires, no more, no
        /// fewer, and keeps the rest, over a sequence of quotes.
        #[test]
        fn the_book_fires_exactly_what_the_trigger_rule_fires(
            orders in proptest::collection::vec((kind(), 1_000u32..1_200), 0..60),
            quotes in proptest::collection::vec((1_000u32..1_200, 1u32..5), 1..10),
        ) {
            let eurusd = symbol();
            let mut book = RestingBook::new(eurusd.index() + 1);
            let mut expected: Vec<Resting> = Vec::new();
            for (n, ((order_type, side), ticks)) in orders.into_iter().enumerate() {
                let r = resting(eurusd, order_type, side, f64::from(ticks) / 1000.0, n);
                expected.push(r.clone());
                book.insert(r);
            }
            for (bid_ticks, spread) in quotes {
                let quote = Quote {
                    bid: f64::from(bid_ticks) / 1000.0,
                    ask: f64::from(bid_ticks + spread) / 1000.0,
                    timestamp: 0.0,
                };
                let mut fired: Vec<String> = book
                    .take_triggered(eurusd.index(), &quote)
                    .into_iter()
                    .map(|r| r.record.id)
                    .collect();
                let (mut want, keep): (Vec<Resting>, Vec<Resting>) =
                    expected.drain(..).partition(|r| {
                        triggers(r.request.order_type, r.request.side, r.request.price.unwrap(), &quote)
                    });
                expected = keep;
                fired.sort();
                let mut want: Vec<String> = want.drain(..).map(|r| r.record.id).collect();
                want.sort();
                prop_assert_eq!(fired, want);
                prop_assert_eq!(book.len(eurusd.index()), expected.len());
            }
        }
    }

    #[test]
    fn equal_prices_fire_in_time_order() {
        let eurusd = symbol();
        let mut book = RestingBook::new(eurusd.index() + 1);
        for n in 0..3 {
            book.insert(resting(eurusd, OrderType::Limit, Side::Buy, 1.05, n));
        }
        let quote = Quote {
            bid: 1.0499,
            ask: 1.05,
            timestamp: 0.0,
        };
        let ids: Vec<String> = book
            .take_triggered(eurusd.index(), &quote)
            .into_iter()
            .map(|r| r.record.id)
            .collect();
        assert_eq!(ids, ["0", "1", "2"]);
    }
}
