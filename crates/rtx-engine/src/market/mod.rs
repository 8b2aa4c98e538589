//! Market data: symbol conventions, the latest quote from every LP, the best price, and the
//! quote broadcast the WebSocket stream and the pending-order matcher read.

pub mod lp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use rtx_monitoring::catalogue::{LpErrorKind, LpId, Side, SymbolId, TradingMetrics};
use serde::Serialize;
use tokio::sync::broadcast;

/// Lot size in units of the base currency.
pub const CONTRACT_SIZE: f64 = 100_000.0;

/// A quote as the engine uses it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quote {
    /// Bid price.
    pub bid: f64,
    /// Ask price.
    pub ask: f64,
    /// Unix time of the quote, in seconds.
    pub timestamp: f64,
}

impl Quote {
    /// Mid price.
    pub fn mid(&self) -> f64 {
        (self.bid + self.ask) / 2.0
    }

    /// The price an order on `side` takes from this quote: the ask to buy, the bid to sell.
    pub fn price_for(&self, side: Side) -> f64 {
        if side == Side::Buy {
            self.ask
        } else {
            self.bid
        }
    }
}

/// A quote on the broadcast stream.
#[derive(Clone, Debug, Serialize)]
pub struct QuoteEvent {
    /// Symbol name.
    pub symbol: Arc<str>,
    /// LP name.
    pub lp: Arc<str>,
    /// Bid price.
    pub bid: f64,
    /// Ask price.
    pub ask: f64,
    /// Unix time in seconds.
    pub timestamp: f64,
    #[serde(skip)]
    pub(crate) symbol_id: SymbolId,
}

/// A configured symbol: its name, currencies, pip size and the price its simulation starts at.
#[derive(Clone, Debug)]
pub struct Instrument {
    /// Name, e.g. `EURUSD`.
    pub name: Arc<str>,
    /// Base currency (first three letters).
    pub base: String,
    /// Quote currency (last three letters).
    pub quote: String,
    /// Size of one pip in price units.
    pub pip: f64,
    /// Where the simulated price starts.
    pub reference_price: f64,
}

impl Instrument {
    /// Derives an instrument from a six-letter FX name; other names are treated as USD-quoted.
    pub fn from_name(name: &str) -> Self {
        let (base, quote) = if name.len() == 6 && name.is_ascii() {
            (name[..3].to_owned(), name[3..].to_owned())
        } else {
            (name.to_owned(), "USD".to_owned())
        };
        let reference_price = match name {
            "EURUSD" => 1.0850,
            "GBPUSD" => 1.2700,
            "USDJPY" => 151.50,
            "USDCHF" => 0.8800,
            "AUDUSD" => 0.6600,
            "USDCAD" => 1.3600,
            "NZDUSD" => 0.6100,
            "EURGBP" => 0.8550,
            "EURJPY" => 164.40,
            "GBPJPY" => 192.40,
            _ if quote == "JPY" => 100.0,
            _ => 1.0,
        };
        let pip = if quote == "JPY" { 0.01 } else { 0.0001 };
        Self {
            name: Arc::from(name),
            base,
            quote,
            pip,
            reference_price,
        }
    }
}

impl Instrument {
    /// Decimal places of a quote: a tenth of a pip (5, or 3 for JPY-quoted pairs).
    pub fn decimals(&self) -> usize {
        if self.pip < 0.001 {
            5
        } else {
            3
        }
    }

    /// Rounds a price to the instrument's quoting precision (a tenth of a pip), to the double
    /// nearest that decimal, so that it prints as the decimal it is (`1.27036`, never
    /// `1.2703600000000002`): dividing the whole number of ticks by an exact power of ten is
    /// correctly rounded, where multiplying by an inexact tick size (0.00001) is not.
    pub fn round(&self, price: f64) -> f64 {
        let scale = 10f64.powi(self.decimals() as i32);
        (price * scale).round() / scale
    }
}

/// The latest quote of every LP for every symbol, and the stream of new ones.
#[derive(Debug)]
pub struct Market {
    instruments: Vec<Instrument>,
    lp_names: Vec<Arc<str>>,
    /// `[symbol][lp]`: the latest quote, `None` until one arrives or after the LP disconnects.
    quotes: RwLock<Vec<Vec<Option<Quote>>>>,
    /// `[symbol][lp]`: the stored quote was already counted as stale (cleared by a new one), so
    /// a stalled feed counts once per quote, however often orders look at it.
    stale_counted: Vec<Vec<AtomicBool>>,
    stream: broadcast::Sender<QuoteEvent>,
    metrics: TradingMetrics,
}

impl Market {
    /// A market for the catalogue's configured symbols and LPs.
    pub fn new(metrics: TradingMetrics) -> Self {
        let instruments: Vec<Instrument> = metrics
            .symbols()
            .names()
            .map(Instrument::from_name)
            .collect();
        let lp_names: Vec<Arc<str>> = metrics.lps().names().map(Arc::from).collect();
        let quotes = RwLock::new(vec![vec![None; lp_names.len()]; instruments.len()]);
        let stale_counted = (0..instruments.len())
            .map(|_| {
                (0..lp_names.len())
                    .map(|_| AtomicBool::new(false))
                    .collect()
            })
            .collect();
        let (stream, _) = broadcast::channel(4096);
        Self {
            instruments,
            lp_names,
            quotes,
            stale_counted,
            stream,
            metrics,
        }
    }

    /// The configured instruments in symbol-id order.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// The instrument of a symbol.
    pub fn instrument(&self, symbol: SymbolId) -> &Instrument {
        &self.instruments[symbol.index()]
    }

    /// Resolves a symbol name.
    pub fn symbol(&self, name: &str) -> Option<SymbolId> {
        self.metrics.symbol(name)
    }

    /// Stores a new quote from `lp` and publishes it.
    pub fn publish(&self, lp: LpId, symbol: SymbolId, quote: Quote) {
        {
            let mut quotes = self.quotes.write().unwrap_or_else(PoisonError::into_inner);
            quotes[symbol.index()][lp.index()] = Some(quote);
        }
        self.stale_counted[symbol.index()][lp.index()].store(false, Ordering::Relaxed);
        let instrument = self.instrument(symbol);
        let spread_pips = (quote.ask - quote.bid) / instrument.pip;
        self.metrics
            .lp
            .record_quote(lp, symbol, spread_pips, quote.timestamp);
        // Nobody listening is fine: the stream is best effort by design.
        let _ = self.stream.send(QuoteEvent {
            symbol: Arc::clone(&instrument.name),
            lp: Arc::clone(&self.lp_names[lp.index()]),
            bid: quote.bid,
            ask: quote.ask,
            timestamp: quote.timestamp,
            symbol_id: symbol,
        });
    }

    /// Forgets an LP's quotes (it disconnected: its prices are no longer executable).
    pub fn clear_lp(&self, lp: LpId) {
        let mut quotes = self.quotes.write().unwrap_or_else(PoisonError::into_inner);
        for row in quotes.iter_mut() {
            row[lp.index()] = None;
        }
    }

    /// Best bid and best ask across LPs whose quote is younger than `max_age_seconds`, with
    /// the LP that offers the better side for `buy`. With a finite limit (an executable price
    /// is wanted), a quote skipped for its age counts once as that LP's `stale_quote` error:
    /// the LP may still be connected, which is exactly the failure the counter exists to show.
    pub fn best(
        &self,
        symbol: SymbolId,
        now: f64,
        max_age_seconds: f64,
    ) -> Option<(Quote, Option<LpId>, Option<LpId>)> {
        let quotes = self.quotes.read().unwrap_or_else(PoisonError::into_inner);
        let row = quotes.get(symbol.index())?;
        let mut best: Option<Quote> = None;
        let (mut best_bid_lp, mut best_ask_lp) = (None, None);
        let counted = &self.stale_counted[symbol.index()];
        for ((lp, q), counted) in self.metrics.lp_ids().zip(row).zip(counted) {
            let Some(q) = *q else { continue };
            if now - q.timestamp > max_age_seconds {
                if max_age_seconds.is_finite() && !counted.swap(true, Ordering::Relaxed) {
                    self.metrics.lp.record_error(lp, LpErrorKind::StaleQuote);
                }
                continue;
            }
            let lp = Some(lp);
            let b = best.get_or_insert(q);
            if q.bid >= b.bid {
                b.bid = q.bid;
                best_bid_lp = lp;
            }
            if q.ask <= b.ask {
                b.ask = q.ask;
                best_ask_lp = lp;
            }
            b.timestamp = b.timestamp.max(q.timestamp);
        }
        best.map(|q| (q, best_bid_lp, best_ask_lp))
    }

    /// Converts an amount in `currency` to USD at current mid prices (1:1 when no rate is known).
    pub fn to_usd(&self, amount: f64, currency: &str, now: f64) -> f64 {
        if currency == "USD" {
            return amount;
        }
        for (id, inst) in self.metrics.symbol_ids().zip(&self.instruments) {
            if inst.base == currency && inst.quote == "USD" {
                if let Some((q, _, _)) = self.best(id, now, f64::INFINITY) {
                    return amount * q.mid();
                }
            }
            if inst.base == "USD" && inst.quote == currency {
                if let Some((q, _, _)) = self.best(id, now, f64::INFINITY) {
                    return amount / q.mid();
                }
            }
        }
        amount
    }

    /// True once any LP has quoted any symbol.
    pub fn has_quotes(&self) -> bool {
        self.quotes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flatten()
            .any(Option::is_some)
    }

    /// A receiver of every new quote.
    pub fn subscribe(&self) -> broadcast::Receiver<QuoteEvent> {
        self.stream.subscribe()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A rounded price prints as the decimal it is, with no more places than the instrument
        /// quotes (`1.2703600000000002` was 350 of 1,000 fill prices in the API).
        #[test]
        fn a_rounded_price_prints_at_its_instruments_precision(
            price in 0.5f64..250.0,
            name in prop_oneof![Just("EURUSD"), Just("USDJPY"), Just("GBPJPY"), Just("XAUUSD")],
        ) {
            let instrument = Instrument::from_name(name);
            let rounded = instrument.round(price);
            let printed = rounded.to_string();
            let places = printed.split_once('.').map_or(0, |(_, f)| f.len());
            prop_assert!(places <= instrument.decimals(), "{name}: {price} → {printed}");
            prop_assert!((rounded - price).abs() <= instrument.pip / 20.0 + 1e-12);
            prop_assert_eq!(printed.parse::<f64>().ok(), Some(rounded));
        }
    }
}
