//! Mark to market: on every quote, resting orders are checked; on every quote round, accounts
//! are revalued, margin calls and stop-outs applied, and the position and account gauges set.

use std::sync::Arc;
use std::time::Duration;

use rtx_monitoring::catalogue::{SymbolPositions, TradingMetrics};
use tokio::sync::{broadcast, watch};

use super::accounts::{notional_usd, unrealized_usd};
use super::router::Router;
use crate::market::unix_now;

/// How often accounts are revalued; quotes arrive in rounds of about this period.
const REVALUE_EVERY: Duration = Duration::from_millis(250);

/// Runs until `shutdown` flips.
pub async fn run(
    router: Arc<Router>,
    metrics: TradingMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut quotes = router.market().subscribe();
    let mut revalue = tokio::time::interval(REVALUE_EVERY);
    revalue.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            quote = quotes.recv() => match quote {
                Ok(q) => router.on_quote(q.symbol_id).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = revalue.tick() => revalue_all(&router, &metrics).await,
            _ = shutdown.changed() => break,
        }
    }
}

async fn revalue_all(router: &Arc<Router>, metrics: &TradingMetrics) {
    let market = router.market();
    let config = router.config();
    let now = unix_now();
    let symbols = market.instruments().len();
    let mut per_symbol = vec![SymbolPositions::default(); symbols];
    let (mut total_balance, mut total_equity, mut in_call) = (0.0, 0.0, 0usize);
    let mut stop_outs = Vec::new();
    for account in router.accounts().iter() {
        let mut state = account.lock();
        let figures = state.figures(market, config.leverage, now);
        for (symbol, p) in &state.positions {
            let s = &mut per_symbol[symbol.index()];
            if p.lots != 0.0 {
                s.open += 1.0;
            }
            if p.lots > 0.0 {
                s.long_lots += p.lots;
            } else {
                s.short_lots -= p.lots;
            }
            s.unrealized_pnl += unrealized_usd(market, *symbol, p, now);
            s.realized_pnl += p.realized_pnl;
            s.net_exposure += notional_usd(market, *symbol, p.lots.abs(), now) * p.lots.signum();
        }
        let level = figures.margin_level.unwrap_or(f64::INFINITY);
        state.in_margin_call = level < config.margin_call_level;
        if level < config.stop_out_level {
            stop_outs.push(Arc::clone(account));
        }
        in_call += usize::from(state.in_margin_call);
        drop(state);
        account
            .gauges
            .set(figures.balance, figures.equity, figures.margin_used);
        total_balance += figures.balance;
        total_equity += figures.equity;
    }
    for (symbol, figures) in metrics.symbol_ids().zip(per_symbol) {
        metrics.positions.set_symbol(symbol, figures);
    }
    metrics
        .accounts
        .set_totals(total_balance, total_equity, in_call);
    router.store().record_pool();
    for account in stop_outs {
        router.stop_out(&account).await;
    }
}
