//! The reservation ledger: what orders that passed their risk check hold until they fill or
//! fail. A check and its reservation are one step under the ledger's lock, so no interleaving
//! of concurrent orders can take an account's margin past its equity or a symbol's net
//! exposure past its limit; only a market move can, and then margin call and stop-out act.
//!
//! Owns the per-symbol net exposure (filled and in flight) and the account fields that hold
//! reservations (`reserved_margin`, `in_flight_lots`, `resting`). Knows nothing of routing,
//! LPs or the database.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rtx_monitoring::catalogue::{RejectReason, Side, SymbolId};

use super::accounts::{notional_usd, signed_lots, Account, AccountState, Accounts, Position};
use super::router::{OrderRequest, RouterConfig};
use crate::market::{Market, Quote, CONTRACT_SIZE};

/// Margin held per lot beyond the position's own margin, in pips of price: what a fill may
/// cost beyond the quote the check saw (an LP's slippage), so that filling an order that used
/// all free margin does not put the account into margin call by itself.
const SLIPPAGE_ALLOWANCE_PIPS: f64 = 1.0;

/// Net lots of one symbol across all accounts: filled, and held by orders in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct SymbolExposure {
    /// Signed lots of filled positions.
    net: f64,
    /// Lots of orders in flight, `[buy, sell]`.
    in_flight: [f64; 2],
}

/// What one order holds: margin on its account and, once it is about to execute, lots against
/// its symbol's exposure limit. Released when the order fails, turned into a position when it
/// fills.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[must_use]
pub struct Reservation {
    /// USD of margin held on the account.
    pub margin: f64,
    /// Lots held against the symbol's exposure limit and the account's in-flight lots.
    pub lots: f64,
    /// Lots the margin covers: the order's lots less the part of the position it was counted
    /// as closing when it was checked.
    pub opening: f64,
}

/// Why a check refused an order.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The rejection reason label.
    pub reason: RejectReason,
    /// The reason in words, for the order's `reason`.
    pub text: String,
}

impl Refusal {
    fn new(reason: RejectReason, text: String) -> Self {
        Self { reason, text }
    }
}

/// The per-symbol exposure and the account reservations.
#[derive(Debug)]
pub struct Ledger {
    symbols: Mutex<Vec<SymbolExposure>>,
    leverage: f64,
    max_net_exposure_usd: f64,
    max_resting_per_account: usize,
}

/// The order a reservation is for: whose, which symbol and side, how many lots.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// The account that holds it.
    pub account: &'a Account,
    /// The symbol whose exposure it counts against.
    pub symbol: SymbolId,
    /// Its side.
    pub side: Side,
    /// Its lots.
    pub lots: f64,
}

impl<'a> Claim<'a> {
    /// The claim of an order request.
    pub fn of(req: &'a OrderRequest) -> Self {
        Self {
            account: &req.account,
            symbol: req.symbol,
            side: req.side,
            lots: req.volume,
        }
    }
}

/// What a fill did to its account, so that it can be taken back if it cannot be stored.
#[derive(Clone, Copy, Debug)]
pub struct AppliedFill {
    before: (Option<Position>, f64),
    after: (Option<Position>, f64),
    signed: f64,
    /// P&L the fill realized, in USD.
    pub realized: f64,
    /// The fill's sequence number: taken under the account's lock, so that replaying fills in
    /// sequence order after a restart nets each account's fills in the order they happened.
    pub seq: i64,
}

/// Takes `amount` back from a held total. Sums of floats that were added and taken back in a
/// different order leave residues like 4e-12; below a millionth (of a dollar or a lot) the
/// total is nothing, so it reads as exactly nothing.
fn give_back(held: &mut f64, amount: f64) {
    *held -= amount;
    if *held < 1e-6 {
        *held = 0.0;
    }
}

/// Gives back what `reservation` holds on its account: the margin, and the in-flight lots that
/// other orders' margin checks count; but `keep` of the margin stays held while other orders on
/// the same side of the same symbol are in flight, until the last of them is done.
///
/// Orders in flight together were checked in arrival order: the first took the part of the
/// position it would close as needing no margin, and a later one held margin for all its lots.
/// Fills need not come in that order. When the later one fills first, it closes that part
/// itself, and the earlier one is left opening lots it holds no margin for: the filled order
/// keeps the margin of the lots it closed but was not counted as closing (found by
/// `no_interleaving_passes_a_limit`: buy 5 and buy 3 in flight against a short 3, the buy 3
/// filling first, then a sell 4.5 passing the check and margin past equity once the buy 5
/// filled).
fn release_on_account(
    state: &mut AccountState,
    claim: &Claim<'_>,
    reservation: Reservation,
    keep: f64,
) {
    let side = side_index(claim.side);
    if reservation.lots <= 0.0 {
        // A resting order's hold: no in-flight lots, nothing for others to rely on.
        give_back(&mut state.reserved_margin, reservation.margin);
        return;
    }
    let others_in_flight = match state.in_flight_lots.get_mut(&claim.symbol) {
        Some(l) => {
            give_back(&mut l[side], reservation.lots);
            l[side] > 0.0
        }
        None => false,
    };
    if others_in_flight {
        let keep = keep.clamp(0.0, reservation.margin);
        give_back(&mut state.reserved_margin, reservation.margin - keep);
        if keep > 0.0 {
            state.held_back.entry(claim.symbol).or_default()[side] += keep;
        }
        return;
    }
    let held = state
        .held_back
        .get_mut(&claim.symbol)
        .map_or(0.0, |h| std::mem::take(&mut h[side]));
    give_back(&mut state.reserved_margin, reservation.margin + held);
}

/// The lots of a `side` order of `lots` that would close part of `position` (signed lots).
fn closing_lots(position: f64, side: Side, lots: f64) -> f64 {
    if position * signed_lots(side, 1.0) < 0.0 {
        position.abs().min(lots)
    } else {
        0.0
    }
}

fn side_index(side: Side) -> usize {
    usize::from(side == Side::Sell)
}

/// Notional of `lots` at `price`, in USD.
fn notional_at(market: &Market, symbol: SymbolId, lots: f64, price: f64, now: f64) -> f64 {
    let instrument = market.instrument(symbol);
    market.to_usd(lots * CONTRACT_SIZE * price, &instrument.quote, now)
}

impl Ledger {
    /// An empty ledger for `symbols` symbols under `config`'s limits.
    pub fn new(symbols: usize, config: &RouterConfig) -> Self {
        Self {
            symbols: Mutex::new(vec![SymbolExposure::default(); symbols]),
            leverage: config.leverage,
            max_net_exposure_usd: config.max_net_exposure_usd,
            max_resting_per_account: config.max_resting_orders_per_account,
        }
    }

    fn symbols(&self) -> MutexGuard<'_, Vec<SymbolExposure>> {
        self.symbols.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Recomputes filled net exposure from the accounts' positions (after a restart).
    pub fn recount(&self, accounts: &Accounts) {
        let mut symbols = self.symbols();
        symbols.iter_mut().for_each(|s| s.net = 0.0);
        for account in accounts.iter() {
            for (symbol, p) in &account.lock().positions {
                symbols[symbol.index()].net += p.lots;
            }
        }
    }

    /// Signed filled lots of `symbol` across all accounts.
    #[cfg(test)]
    pub fn net_lots(&self, symbol: SymbolId) -> f64 {
        self.symbols()[symbol.index()].net
    }

    /// The margin an order of `lots` at `price` needs: the position's margin, the spread it
    /// crosses, and the slippage allowance; nothing for the part that closes an existing
    /// position not already claimed by other in-flight orders.
    fn required_margin(
        &self,
        market: &Market,
        state: &AccountState,
        claim: &Claim<'_>,
        price: f64,
        spread: f64,
        now: f64,
    ) -> (f64, f64) {
        let Claim {
            symbol, side, lots, ..
        } = *claim;
        let position = state.positions.get(&symbol).map_or(0.0, |p| p.lots);
        let claimed = state
            .in_flight_lots
            .get(&symbol)
            .map_or(0.0, |l| l[side_index(side)]);
        let closable = if position * signed_lots(side, 1.0) < 0.0 {
            (position.abs() - claimed).max(0.0)
        } else {
            0.0
        };
        let opening = (lots - closable).max(0.0);
        if opening <= 0.0 {
            return (0.0, 0.0);
        }
        let pip = market.instrument(symbol).pip;
        let costs = notional_at(
            market,
            symbol,
            opening,
            spread + SLIPPAGE_ALLOWANCE_PIPS * pip,
            now,
        );
        (
            notional_at(market, symbol, opening, price, now) / self.leverage + costs,
            opening,
        )
    }

    /// Checks and reserves in one step for an order about to execute at `quote`: the symbol's
    /// net exposure, counting every order in flight as if it filled, stays within the limit;
    /// the account's free margin (after every other reservation) covers the order, beyond the
    /// `held` margin a resting order brought with it.
    ///
    /// # Errors
    /// The [`Refusal`] when a limit would be passed; nothing is then held beyond `held`.
    pub fn reserve(
        &self,
        market: &Market,
        claim: &Claim<'_>,
        quote: &Quote,
        held: f64,
        now: f64,
    ) -> Result<Reservation, Refusal> {
        let Claim {
            account,
            symbol,
            side,
            lots,
        } = *claim;
        let mut symbols = self.symbols();
        let exposure = &mut symbols[symbol.index()];
        // The worst case on this order's side: every in-flight order on it fills, none of the
        // others does.
        let worst = match side {
            Side::Buy => exposure.net + exposure.in_flight[0] + lots,
            Side::Sell => -(exposure.net - exposure.in_flight[1] - lots),
        };
        if worst > 0.0 {
            let usd = notional_usd(market, symbol, worst, now);
            if usd > self.max_net_exposure_usd {
                return Err(Refusal::new(
                    RejectReason::ExposureLimit,
                    format!(
                        "net exposure would reach {usd:.0} USD, above the limit of {:.0}",
                        self.max_net_exposure_usd
                    ),
                ));
            }
        }
        let mut state = account.lock();
        let price = quote.price_for(side);
        let (required, opening) =
            self.required_margin(market, &state, claim, price, quote.ask - quote.bid, now);
        let extra = (required - held).max(0.0);
        if extra > 0.0 {
            let free = state.figures(market, self.leverage, now).free_margin;
            if extra > free {
                return Err(Refusal::new(
                    RejectReason::InsufficientMargin,
                    format!(
                        "required margin {required:.2} USD exceeds free margin {:.2} USD",
                        free + held
                    ),
                ));
            }
        }
        state.reserved_margin += extra;
        state.in_flight_lots.entry(symbol).or_default()[side_index(side)] += lots;
        drop(state);
        exposure.in_flight[side_index(side)] += lots;
        Ok(Reservation {
            margin: held + extra,
            lots,
            opening,
        })
    }

    /// Checks and holds margin for a resting order (and counts it against the account's cap of
    /// resting orders): its margin at its own price, with the current spread if known.
    ///
    /// # Errors
    /// The [`Refusal`] when the account is at its cap or its free margin does not cover it.
    pub fn reserve_resting(
        &self,
        market: &Market,
        claim: &Claim<'_>,
        price: f64,
        quote: Option<&Quote>,
        now: f64,
    ) -> Result<Reservation, Refusal> {
        let mut state = claim.account.lock();
        if state.resting >= self.max_resting_per_account {
            return Err(Refusal::new(
                RejectReason::RestingLimit,
                format!(
                    "the account already has {} resting orders, the most it may have",
                    state.resting
                ),
            ));
        }
        let spread = quote.map_or(0.0, |q| q.ask - q.bid);
        let (required, opening) = self.required_margin(market, &state, claim, price, spread, now);
        let free = state.figures(market, self.leverage, now).free_margin;
        if required > free {
            return Err(Refusal::new(
                RejectReason::InsufficientMargin,
                format!("required margin {required:.2} USD exceeds free margin {free:.2} USD"),
            ));
        }
        state.reserved_margin += required;
        state.resting += 1;
        Ok(Reservation {
            margin: required,
            lots: 0.0,
            opening,
        })
    }

    /// The margin a resting order of `lots` at `price` holds, without checking or holding it.
    pub fn resting_margin(&self, market: &Market, claim: &Claim<'_>, price: f64, now: f64) -> f64 {
        let state = claim.account.lock();
        self.required_margin(market, &state, claim, price, 0.0, now)
            .0
    }

    /// Holds margin for a resting order without a check: one restored after a restart, or put
    /// back after its fill could not be stored. It was accepted once; it keeps its place.
    pub fn hold_resting(&self, account: &Account, margin: f64) -> Reservation {
        let mut state = account.lock();
        state.reserved_margin += margin;
        state.resting += 1;
        Reservation {
            margin,
            lots: 0.0,
            opening: 0.0,
        }
    }

    /// A resting order left the book (it triggered): it no longer counts against the cap, and
    /// its margin stays held for its execution.
    pub fn leave_book(&self, account: &Account) {
        let mut state = account.lock();
        state.resting = state.resting.saturating_sub(1);
    }

    /// Gives back everything `reservation` holds (the order failed or was rejected).
    pub fn release(&self, claim: &Claim<'_>, reservation: Reservation) {
        // A failed order closed nothing: it takes no place from the others.
        release_on_account(&mut claim.account.lock(), claim, reservation, 0.0);
        if reservation.lots > 0.0 {
            let mut symbols = self.symbols();
            let exposure = &mut symbols[claim.symbol.index()];
            give_back(
                &mut exposure.in_flight[side_index(claim.side)],
                reservation.lots,
            );
        }
    }

    /// Turns `reservation` into a position: the fill is netted into the account and the
    /// symbol's exposure moves from in flight to filled, each in one step. The fill takes the
    /// next number of `fill_seq`.
    pub fn fill(
        &self,
        market: &Market,
        claim: &Claim<'_>,
        price: f64,
        reservation: Reservation,
        fill_seq: &AtomicI64,
        now: f64,
    ) -> AppliedFill {
        let Claim {
            account,
            symbol,
            side,
            lots,
        } = *claim;
        let mut state = account.lock();
        let seq = fill_seq.fetch_add(1, Ordering::AcqRel) + 1;
        // The lots this fill closes beyond what its check counted as closing were counted as
        // closing by an earlier order still in flight: their margin stays held for it.
        let position = state.positions.get(&symbol).map_or(0.0, |p| p.lots);
        let opening_now = lots - closing_lots(position, side, lots);
        let taken = (reservation.opening - opening_now).max(0.0);
        let keep = if reservation.opening > 0.0 {
            reservation.margin * taken / reservation.opening
        } else {
            0.0
        };
        release_on_account(&mut state, claim, reservation, keep);
        let before = (state.positions.get(&symbol).copied(), state.balance);
        let realized = state.apply_fill(market, symbol, side, lots, price, now);
        let after = (state.positions.get(&symbol).copied(), state.balance);
        drop(state);
        let signed = signed_lots(side, lots);
        let mut symbols = self.symbols();
        let exposure = &mut symbols[symbol.index()];
        exposure.net += signed;
        give_back(&mut exposure.in_flight[side_index(side)], reservation.lots);
        AppliedFill {
            before,
            after,
            signed,
            realized,
            seq,
        }
    }

    /// Takes back a fill whose transaction failed, so memory matches the database.
    pub fn undo_fill(&self, claim: &Claim<'_>, fill: AppliedFill) {
        let (account, symbol) = (claim.account, claim.symbol);
        let mut state = account.lock();
        let current = (state.positions.get(&symbol).copied(), state.balance);
        if current == fill.after {
            match fill.before.0 {
                Some(p) => {
                    state.positions.insert(symbol, p);
                }
                None => {
                    state.positions.remove(&symbol);
                }
            }
            state.balance = fill.before.1;
        } else {
            // Another fill landed since: reverse this one by its effect instead.
            let p = state.positions.entry(symbol).or_default();
            p.lots -= fill.signed;
            p.realized_pnl -= fill.realized;
            state.balance -= fill.realized;
        }
        drop(state);
        self.symbols()[symbol.index()].net -= fill.signed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rtx_monitoring::catalogue::{CatalogueConfig, TradingMetrics};
    use rtx_monitoring::metrics::Registry;

    fn metrics() -> TradingMetrics {
        TradingMetrics::new(&Registry::disabled(), &CatalogueConfig::default()).unwrap()
    }

    fn setup() -> (Market, SymbolId, Quote) {
        let metrics = metrics();
        let eurusd = metrics.symbol("EURUSD").unwrap();
        let market = Market::new(metrics.clone());
        let quote = Quote {
            bid: 1.1000,
            ask: 1.1002,
            timestamp: 1.0,
        };
        market.publish(metrics.lp("OANDA").unwrap(), eurusd, quote);
        (market, eurusd, quote)
    }

    fn account(id: &str, balance: f64) -> Account {
        Account::new(
            id.into(),
            "retail".into(),
            balance,
            metrics().accounts.account(id),
        )
    }

    fn claim(account: &Account, symbol: SymbolId, side: Side, lots: f64) -> Claim<'_> {
        Claim {
            account,
            symbol,
            side,
            lots,
        }
    }

    fn config(max_net_exposure_usd: f64) -> RouterConfig {
        RouterConfig {
            max_net_exposure_usd,
            ..RouterConfig::default()
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// An order from account `0`/`1` arrives and is checked.
        Arrive {
            account: usize,
            buy: bool,
            lots: f64,
        },
        /// The `n`-th still-open reservation (mod their count) fills.
        Fill(usize),
        /// The `n`-th still-open reservation (mod their count) fails.
        Fail(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..2, any::<bool>(), 1u32..=40).prop_map(|(account, buy, tenths)| {
                Step::Arrive {
                    account,
                    buy,
                    lots: f64::from(tenths) / 2.0,
                }
            }),
            any::<usize>().prop_map(Step::Fill),
            any::<usize>().prop_map(Step::Fail),
        ]
    }

    proptest! {
        /// Whatever order arrivals, fills and failures interleave, at a fixed price: no
        /// account's margin used exceeds its equity and no symbol's net exposure its limit, at
        /// every step, and a failed order leaves nothing held.
        #[test]
        fn no_interleaving_passes_a_limit(steps in proptest::collection::vec(step(), 1..200)) {
            let (market, eurusd, quote) = setup();
            let limit = 2_000_000.0;
            let ledger = Ledger::new(market.instruments().len(), &config(limit));
            let accounts = [account("a", 10_000.0), account("b", 50_000.0)];
            let mut open: Vec<(usize, Side, f64, Reservation)> = Vec::new();
            for step in steps {
                match step {
                    Step::Arrive { account, buy, lots } => {
                        let side = if buy { Side::Buy } else { Side::Sell };
                        if let Ok(r) = ledger.reserve(&market, &claim(&accounts[account], eurusd, side, lots), &quote, 0.0, 2.0) {
                            open.push((account, side, lots, r));
                        }
                    }
                    Step::Fill(n) if !open.is_empty() => {
                        let (account, side, lots, r) = open.remove(n % open.len());
                        let price = quote.price_for(side);
                        let _ = ledger.fill(&market, &claim(&accounts[account], eurusd, side, lots), price, r, &AtomicI64::new(0), 2.0);
                    }
                    Step::Fail(n) if !open.is_empty() => {
                        let (account, side, _, r) = open.remove(n % open.len());
                        ledger.release(&claim(&accounts[account], eurusd, side, 0.0), r);
                    }
                    _ => {}
                }
                for a in &accounts {
                    let f = a.lock().figures(&market, 100.0, 2.0);
                    prop_assert!(f.margin_used + f.reserved_margin <= f.equity + 1e-6, "{f:?}");
                }
                let net = ledger.net_lots(eurusd).abs();
                prop_assert!(notional_usd(&market, eurusd, net, 2.0) <= limit + 1e-6, "net {net}");
            }
            for (account, side, _, r) in open.drain(..) {
                ledger.release(&claim(&accounts[account], eurusd, side, 0.0), r);
            }
            for a in &accounts {
                let state = a.lock();
                prop_assert!(state.reserved_margin.abs() < 1e-6, "{}", state.reserved_margin);
                prop_assert!(state.in_flight_lots.values().all(|l| l[0].abs() < 1e-9 && l[1].abs() < 1e-9));
            }
        }
    }

    #[test]
    fn a_closing_order_needs_no_margin_unless_another_order_already_claims_the_position() {
        let (market, eurusd, quote) = setup();
        let ledger = Ledger::new(market.instruments().len(), &config(1e12));
        let a = account("a", 2_000.0);
        let r = ledger
            .reserve(
                &market,
                &claim(&a, eurusd, Side::Buy, 1.0),
                &quote,
                0.0,
                2.0,
            )
            .unwrap();
        let _ = ledger.fill(
            &market,
            &claim(&a, eurusd, Side::Buy, 1.0),
            quote.ask,
            r,
            &AtomicI64::new(0),
            2.0,
        );
        // Free margin is now below one lot's margin: a new buy is refused, a closing sell is not.
        assert!(ledger
            .reserve(
                &market,
                &claim(&a, eurusd, Side::Buy, 1.0),
                &quote,
                0.0,
                2.0
            )
            .is_err());
        let close = ledger
            .reserve(
                &market,
                &claim(&a, eurusd, Side::Sell, 1.0),
                &quote,
                0.0,
                2.0,
            )
            .unwrap();
        assert_eq!(close.margin, 0.0);
        // A second closing sell finds the position claimed: it would open a short.
        let second = ledger.reserve(
            &market,
            &claim(&a, eurusd, Side::Sell, 1.0),
            &quote,
            0.0,
            2.0,
        );
        assert_eq!(second.unwrap_err().reason, RejectReason::InsufficientMargin);
    }

    #[test]
    fn resting_orders_hold_margin_and_stop_at_the_cap() {
        let (market, eurusd, quote) = setup();
        let ledger = Ledger::new(
            market.instruments().len(),
            &RouterConfig {
                max_resting_orders_per_account: 2,
                ..RouterConfig::default()
            },
        );
        let a = account("a", 100_000.0);
        let rest = |lots: f64| {
            ledger.reserve_resting(
                &market,
                &claim(&a, eurusd, Side::Buy, lots),
                1.05,
                Some(&quote),
                2.0,
            )
        };
        for _ in 0..2 {
            assert!(rest(1.0).unwrap().margin > 1_000.0);
        }
        assert_eq!(rest(1.0).unwrap_err().reason, RejectReason::RestingLimit);
        ledger.leave_book(&a);
        assert!(rest(1.0).is_ok());
        ledger.leave_book(&a);
        // 100 lots at 1.05 need 105,000 USD of margin: more than is free.
        assert_eq!(
            rest(100.0).unwrap_err().reason,
            RejectReason::InsufficientMargin
        );
    }
}
