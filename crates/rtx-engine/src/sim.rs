//! Simulated order flow, so that a freshly started engine trades and every dashboard panel has
//! data: market orders mostly, some resting limit and stop orders, the odd large order that
//! goes to an LP, and the odd oversized one that risk rejects.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtx_monitoring::catalogue::{OrderType, Side};
use tokio::sync::watch;

use crate::market::unix_now;
use crate::trading::{OrderRequest, Router};

/// Submits about `rate` orders per second until `shutdown` flips; 0 does nothing.
pub async fn run(router: Arc<Router>, rate: f64, mut shutdown: watch::Receiver<bool>) {
    if rate <= 0.0 {
        return;
    }
    let mut rng = SmallRng::from_entropy();
    let accounts: Vec<_> = router.accounts().iter().cloned().collect();
    let symbols = router.market().instruments().len();
    if accounts.is_empty() || symbols == 0 {
        return;
    }
    // Orders sent before the first quote would only be rejected for want of a price.
    for _ in 0..50 {
        if router.market().has_quotes() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.min(10_000.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let account = Arc::clone(&accounts[rng.gen_range(0..accounts.len())]);
        let name = router.market().instruments()[rng.gen_range(0..symbols)]
            .name
            .clone();
        let Some(symbol) = router.market().symbol(&name) else {
            continue;
        };
        let side = if rng.gen_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let roll: f64 = rng.gen();
        let volume = match roll {
            r if r < 0.01 => router.config().max_order_lots * 2.0,
            r if r < 0.05 => router.config().abook_min_lots,
            _ => [0.01, 0.05, 0.1, 0.2, 0.5, 1.0][rng.gen_range(0..6)],
        };
        let (order_type, price) = match rng.gen_range(0..20) {
            0 | 1 => (
                OrderType::Limit,
                resting_price(&router, symbol, side, true, &mut rng),
            ),
            2 => (
                OrderType::Stop,
                resting_price(&router, symbol, side, false, &mut rng),
            ),
            _ => (OrderType::Market, None),
        };
        let order_type = if price.is_none() {
            OrderType::Market
        } else {
            order_type
        };
        let request = OrderRequest {
            account,
            symbol,
            side,
            order_type,
            volume,
            price,
            client_order_id: None,
        };
        let router = Arc::clone(&router);
        tokio::spawn(async move {
            // A refusal while draining is expected at shutdown; nothing else to do with it.
            let _ = router.submit(request).await;
        });
    }
}

/// A price a few pips away on the resting side: below the ask for a buy limit, above for a
/// buy stop, mirrored for sells.
fn resting_price(
    router: &Router,
    symbol: rtx_monitoring::catalogue::SymbolId,
    side: Side,
    limit: bool,
    rng: &mut SmallRng,
) -> Option<f64> {
    let (quote, _, _) =
        router
            .market()
            .best(symbol, unix_now(), router.config().max_quote_age_secs)?;
    let pip = router.market().instrument(symbol).pip;
    let away = pip * rng.gen_range(1.0..8.0);
    let below = matches!((side, limit), (Side::Buy, true) | (Side::Sell, false));
    Some(if below {
        quote.bid - away
    } else {
        quote.ask + away
    })
}
