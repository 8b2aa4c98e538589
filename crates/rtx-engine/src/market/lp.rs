//! Simulated liquidity-provider sessions: a connection state machine with reconnect backoff,
//! sequenced quote and heartbeat messages, order round trips with a latency distribution, and
//! the faults a desk sees in production (latency spikes, stale quotes, rejects, timeouts,
//! sequence gaps, dropped sessions).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtx_monitoring::catalogue::{LpErrorKind, LpId, LpOperation, SymbolId, TradingMetrics};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{unix_now, Market, Quote};

/// How one simulated LP behaves; every field has a realistic default.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LpBehaviour {
    /// Median one-way latency in milliseconds.
    pub latency_ms: f64,
    /// Exponential jitter added to the latency, mean in milliseconds.
    pub jitter_ms: f64,
    /// Probability that a message suffers a latency spike.
    pub spike_probability: f64,
    /// Extra latency of a spike, in milliseconds.
    pub spike_ms: f64,
    /// Interval between quote rounds (one quote per symbol), in milliseconds.
    pub quote_interval_ms: u64,
    /// Heartbeat interval, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Typical spread in pips.
    pub spread_pips: f64,
    /// Probability that the LP rejects an order.
    pub reject_probability: f64,
    /// Probability that an order gets no answer before `order_timeout_ms`.
    pub timeout_probability: f64,
    /// How long the engine waits for an order answer, in milliseconds.
    pub order_timeout_ms: u64,
    /// Probability that a message skips sequence numbers (lost messages).
    pub sequence_gap_probability: f64,
    /// Probability, per heartbeat, that the session drops and must reconnect.
    pub drop_probability: f64,
    /// Stop sending quotes this many seconds after connecting, while staying connected
    /// (0 = never): the stale-feed fault.
    pub stale_after_secs: u64,
}

impl Default for LpBehaviour {
    fn default() -> Self {
        Self {
            latency_ms: 2.0,
            jitter_ms: 1.0,
            spike_probability: 0.001,
            spike_ms: 150.0,
            quote_interval_ms: 250,
            heartbeat_interval_ms: 1000,
            spread_pips: 0.8,
            reject_probability: 0.005,
            timeout_probability: 0.0005,
            order_timeout_ms: 1000,
            sequence_gap_probability: 0.0005,
            drop_probability: 0.0,
            stale_after_secs: 0,
        }
    }
}

/// Connection states of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LpState {
    /// Logging on.
    Connecting,
    /// Logged on; quotes and orders flow.
    Connected,
    /// Down (dropped, or held down by an operator).
    Disconnected,
    /// Waiting out the backoff before the next logon.
    Reconnecting,
}

impl LpState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Connecting,
            1 => Self::Connected,
            2 => Self::Disconnected,
            _ => Self::Reconnecting,
        }
    }
}

/// Why an LP order did not fill.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LpError {
    /// The LP refused it.
    #[error("rejected by {lp}")]
    Rejected {
        /// LP name.
        lp: String,
    },
    /// No answer in time.
    #[error("no answer from {lp} within {timeout_ms} ms")]
    Timeout {
        /// LP name.
        lp: String,
        /// The deadline.
        timeout_ms: u64,
    },
    /// The session is not connected.
    #[error("{lp} is not connected")]
    NotConnected {
        /// LP name.
        lp: String,
    },
}

/// One simulated LP session, shared by the session task and the order router.
#[derive(Debug)]
pub struct LpSession {
    id: LpId,
    name: String,
    behaviour: LpBehaviour,
    state: AtomicU8,
    /// Set by an operator's disconnect; the session stays down until cleared.
    held_down: AtomicBool,
    wake: watch::Sender<()>,
    /// Both ends of the message sequence, under one lock: numbering a message and checking it
    /// against the expected number must be one step, or two messages numbered concurrently can
    /// be checked out of order and count a gap that never happened.
    sequence: Mutex<Sequence>,
    /// Messages the LP will skip before its next message (an operator's injected gap).
    injected_gap: AtomicU64,
    market: Arc<Market>,
    metrics: TradingMetrics,
    /// Simulated price per symbol (the LP's own view of the market).
    walks: Mutex<Vec<PriceWalk>>,
}

/// The LP's outgoing sequence number and the number the engine expects next.
#[derive(Debug)]
struct Sequence {
    lp_next: u64,
    expected: u64,
}

/// One symbol's simulated mid and the level its random walk is pulled back to.
#[derive(Clone, Copy, Debug)]
struct PriceWalk {
    mid: f64,
    anchor: f64,
}

impl LpSession {
    /// A session for `name`, not yet started.
    pub fn new(
        id: LpId,
        name: String,
        behaviour: LpBehaviour,
        market: Arc<Market>,
        metrics: TradingMetrics,
    ) -> Arc<Self> {
        let walks = market
            .instruments()
            .iter()
            .map(|i| PriceWalk {
                mid: i.reference_price,
                anchor: i.reference_price,
            })
            .collect();
        let (wake, _) = watch::channel(());
        Arc::new(Self {
            id,
            name,
            behaviour,
            state: AtomicU8::new(LpState::Disconnected as u8),
            held_down: AtomicBool::new(false),
            wake,
            sequence: Mutex::new(Sequence {
                lp_next: 1,
                expected: 1,
            }),
            injected_gap: AtomicU64::new(0),
            market,
            metrics,
            walks: Mutex::new(walks),
        })
    }

    /// The LP's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The LP's id.
    pub fn id(&self) -> LpId {
        self.id
    }

    /// Current state.
    pub fn state(&self) -> LpState {
        LpState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// True when orders can be sent.
    pub fn is_connected(&self) -> bool {
        self.state() == LpState::Connected
    }

    fn set_state(&self, state: LpState) {
        self.state.store(state as u8, Ordering::Release);
        let connected = state == LpState::Connected;
        self.metrics.lp.set_connected(self.id, connected);
        if !connected {
            self.market.clear_lp(self.id);
        }
    }

    /// Operator fault injection: drop the session and keep it down until [`Self::connect`].
    pub fn disconnect(&self) {
        self.held_down.store(true, Ordering::Release);
        self.wake.send_replace(());
    }

    /// Operator fault injection: let the session log on again.
    pub fn connect(&self) {
        self.held_down.store(false, Ordering::Release);
        self.wake.send_replace(());
    }

    /// Operator fault injection: the LP loses the next `messages` messages it sends, so the
    /// engine sees a sequence gap of exactly that size on the message after.
    pub fn inject_sequence_gap(&self, messages: u64) {
        self.injected_gap.fetch_add(messages, Ordering::AcqRel);
    }

    /// Operator fault injection: moves the LP's simulated price of `symbol` to `mid`, and the
    /// level its random walk returns to with it, so the market stays there instead of drifting
    /// back. The LP's next quote is around the new price.
    pub fn move_price(&self, symbol: SymbolId, mid: f64) {
        let mut walks = self.walks.lock().unwrap_or_else(PoisonError::into_inner);
        walks[symbol.index()] = PriceWalk { mid, anchor: mid };
    }

    /// Resynchronises on logon: the engine expects whatever the LP sends next.
    fn resync_sequence(&self) {
        let mut sequence = self.sequence.lock().unwrap_or_else(PoisonError::into_inner);
        sequence.expected = sequence.lp_next;
    }

    fn sample_latency(&self, rng: &mut impl Rng) -> Duration {
        let b = &self.behaviour;
        let jitter = -b.jitter_ms * (1.0 - rng.gen::<f64>()).ln();
        let spike = if rng.gen::<f64>() < b.spike_probability {
            b.spike_ms
        } else {
            0.0
        };
        Duration::from_secs_f64((b.latency_ms + jitter + spike).max(0.0) / 1000.0)
    }

    /// Receives one sequenced message from the LP: counts the messages a gap lost.
    fn receive_sequenced(&self, rng: &mut impl Rng) {
        let random = if rng.gen::<f64>() < self.behaviour.sequence_gap_probability {
            rng.gen_range(1..=3)
        } else {
            0
        };
        let missed = {
            let mut sequence = self.sequence.lock().unwrap_or_else(PoisonError::into_inner);
            let skip = random + self.injected_gap.swap(0, Ordering::AcqRel);
            let seq = sequence.lp_next + skip;
            sequence.lp_next = seq + 1;
            let missed = seq.saturating_sub(sequence.expected);
            sequence.expected = seq + 1;
            missed
        };
        if missed > 0 {
            self.metrics.lp.record_sequence_gap(self.id, missed);
        }
    }

    /// Counts and refuses a request to an LP that is down (checked before sending and again
    /// when the answer arrives, since the session may drop in between).
    fn ensure_connected(&self) -> Result<(), LpError> {
        if self.is_connected() {
            return Ok(());
        }
        self.metrics
            .lp
            .record_error(self.id, LpErrorKind::Connection);
        Err(LpError::NotConnected {
            lp: self.name.clone(),
        })
    }

    /// Sends an order and waits for the LP's answer: a fill price, a reject, or a timeout.
    ///
    /// # Errors
    /// [`LpError`] when the LP is down, rejects, or does not answer in time.
    pub async fn execute(&self, symbol: SymbolId, buy: bool) -> Result<f64, LpError> {
        self.ensure_connected()?;
        let (latency, roll, slip) = {
            let mut rng = rand::thread_rng();
            (
                self.sample_latency(&mut rng) * 2,
                rng.gen::<f64>(),
                rng.gen::<f64>() * 0.2 - 0.05,
            )
        };
        let b = &self.behaviour;
        if roll < b.timeout_probability {
            tokio::time::sleep(Duration::from_millis(b.order_timeout_ms)).await;
            self.metrics.lp.record_error(self.id, LpErrorKind::Timeout);
            return Err(LpError::Timeout {
                lp: self.name.clone(),
                timeout_ms: b.order_timeout_ms,
            });
        }
        // The round trip as the engine saw it, measured around the wait rather than the delay
        // that was drawn: a busy runtime or a late timer is part of what the desk waits for.
        let sent = std::time::Instant::now();
        tokio::time::sleep(latency).await;
        self.metrics
            .lp
            .record_latency(self.id, LpOperation::Order, sent.elapsed());
        self.receive_sequenced(&mut rand::thread_rng());
        if roll < b.timeout_probability + b.reject_probability {
            self.metrics.lp.record_error(self.id, LpErrorKind::Reject);
            return Err(LpError::Rejected {
                lp: self.name.clone(),
            });
        }
        self.ensure_connected()?;
        let mid = self.walks.lock().unwrap_or_else(PoisonError::into_inner)[symbol.index()].mid;
        let instrument = self.market.instrument(symbol);
        let half_spread = b.spread_pips * instrument.pip / 2.0;
        let slippage = slip * instrument.pip;
        Ok(instrument.round(if buy {
            mid + half_spread + slippage
        } else {
            mid - half_spread - slippage
        }))
    }

    fn next_quote(&self, rng: &mut SmallRng, symbol: usize) -> Quote {
        let instrument = &self.market.instruments()[symbol];
        let mut walks = self.walks.lock().unwrap_or_else(PoisonError::into_inner);
        let walk = &mut walks[symbol];
        // A random walk pulled gently back to its anchor, so a long run stays sane.
        let shock: f64 = rng.gen::<f64>() - 0.5;
        walk.mid += walk.mid * 0.00004 * shock + (walk.anchor - walk.mid) * 0.001;
        let mid = walk.mid;
        drop(walks);
        let half = self.behaviour.spread_pips * instrument.pip * (0.5 + rng.gen::<f64>() * 0.5);
        let bid = instrument.round(mid - half);
        let ask = instrument
            .round(mid + half)
            .max(instrument.round(bid + instrument.pip / 10.0));
        Quote {
            bid,
            ask,
            timestamp: unix_now(),
        }
    }
}

/// Runs a session until `shutdown` flips: logs on, streams quotes, sends heartbeats, and
/// reconnects with exponential backoff (0.25 s doubling to 8 s) after a drop.
pub async fn run(session: Arc<LpSession>, mut shutdown: watch::Receiver<bool>) {
    let mut rng = SmallRng::from_entropy();
    let mut wake = session.wake.subscribe();
    let mut backoff = Duration::from_millis(250);
    let symbols: Vec<SymbolId> = session.metrics.symbol_ids().collect();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if session.held_down.load(Ordering::Acquire) {
            session.set_state(LpState::Disconnected);
            tokio::select! {
                _ = wake.changed() => continue,
                _ = shutdown.changed() => continue,
            }
        }
        session.set_state(LpState::Connecting);
        let logon = session.sample_latency(&mut rng) * 2;
        tokio::time::sleep(logon).await;
        session.resync_sequence();
        session.set_state(LpState::Connected);
        let dropped = stream(&session, &mut rng, &symbols, &mut wake, &mut shutdown).await;
        session.set_state(LpState::Disconnected);
        if dropped {
            session.set_state(LpState::Reconnecting);
            tokio::select! {
                () = tokio::time::sleep(backoff) => {},
                _ = shutdown.changed() => {},
            }
            backoff = (backoff * 2).min(Duration::from_secs(8));
        } else {
            backoff = Duration::from_millis(250);
        }
    }
    session.set_state(LpState::Disconnected);
}

/// Streams until the session drops (true) or is stopped (false).
async fn stream(
    session: &LpSession,
    rng: &mut SmallRng,
    symbols: &[SymbolId],
    wake: &mut watch::Receiver<()>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let b = session.behaviour.clone();
    let connected_at = tokio::time::Instant::now();
    let mut quotes = tokio::time::interval(Duration::from_millis(b.quote_interval_ms.max(1)));
    let mut heartbeats =
        tokio::time::interval(Duration::from_millis(b.heartbeat_interval_ms.max(1)));
    quotes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = quotes.tick() => {
                let stale = b.stale_after_secs > 0 && connected_at.elapsed() >= Duration::from_secs(b.stale_after_secs);
                if stale {
                    continue;
                }
                for &symbol in symbols {
                    let quote = session.next_quote(rng, symbol.index());
                    session.receive_sequenced(rng);
                    session.metrics.lp.record_latency(session.id, LpOperation::Quote, session.sample_latency(rng));
                    session.market.publish(session.id, symbol, quote);
                }
            }
            _ = heartbeats.tick() => {
                let rtt = session.sample_latency(rng) * 2;
                session.metrics.lp.record_latency(session.id, LpOperation::Heartbeat, rtt);
                session.receive_sequenced(rng);
                if rng.gen::<f64>() < b.drop_probability {
                    session.metrics.lp.record_error(session.id, LpErrorKind::Connection);
                    return true;
                }
            }
            _ = wake.changed() => {
                if session.held_down.load(Ordering::Acquire) {
                    return false;
                }
            }
            _ = shutdown.changed() => return false,
        }
    }
}
