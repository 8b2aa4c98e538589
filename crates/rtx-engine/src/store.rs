//! Persistence through `sqlx`: SQLite by default, PostgreSQL when the URL says so.
//!
//! Writes go through one writer task that commits them in batches (group commit): an order is
//! acknowledged only after the transaction holding it has committed, and under load many
//! orders share one commit instead of paying one fsync each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtx_monitoring::catalogue::{DbMetrics, DbOutcome, DbQueryMetrics, OrderType, Outcome, Side};
use rtx_monitoring::metrics::LabelValue;
use serde::{Serialize, Serializer};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

/// Why the database could not do what was asked.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database error: {0}")]
    Query(String),
    /// The writer task is gone (shutting down).
    #[error("database writer is not running")]
    WriterGone,
    /// A stored value outside the set its column allows: the row was written by another
    /// version of the engine or edited by hand.
    #[error("column `{column}` holds {value:?}, which this engine does not know; fix the row or run the version that wrote it")]
    UnknownValue {
        /// The column.
        column: &'static str,
        /// The value found.
        value: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Query(e.to_string())
    }
}

/// Where an order stands: `pending` while it rests or awaits its outcome, then how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Accepted, not yet executed (a resting limit or stop order, or one in execution).
    Pending,
    /// Executed.
    Filled,
    /// Refused by the risk checks or the LP.
    Rejected,
    /// Execution failed.
    Error,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: &'static [OrderStatus] = &[
        OrderStatus::Pending,
        OrderStatus::Filled,
        OrderStatus::Rejected,
        OrderStatus::Error,
    ];

    /// The status as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Filled => "filled",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Error => "error",
        }
    }
}

impl From<Outcome> for OrderStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Filled => OrderStatus::Filled,
            Outcome::Rejected => OrderStatus::Rejected,
            Outcome::Error => OrderStatus::Error,
        }
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Serializes a label enum (side, order type) as its label text, as it is stored.
fn as_label<S: Serializer, L: LabelValue>(value: &L, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.as_str())
}

/// The value of `column` in `row`, one of `values` as `name` writes them.
fn column_value<T: Copy>(
    row: &AnyRow,
    column: &'static str,
    values: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    values
        .iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or(StoreError::UnknownValue {
            column,
            value: text,
        })
}

/// An order as stored and as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrderRecord {
    /// Engine id.
    pub id: String,
    /// The client's own id, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
    /// Account.
    pub account_id: String,
    /// Symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    #[serde(serialize_with = "as_label")]
    pub side: Side,
    /// `market`, `limit` or `stop`.
    #[serde(serialize_with = "as_label")]
    pub order_type: OrderType,
    /// Lots.
    pub volume: f64,
    /// Limit or stop price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// `pending`, `filled`, `rejected` or `error`.
    pub status: OrderStatus,
    /// Why it is not filled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ABOOK` or `BBOOK`, once routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Execution price.
    pub fill_price: Option<f64>,
    /// The LP that filled an A-book order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lp: Option<String>,
    /// RFC 3339 UTC time the order was accepted.
    pub created_at: String,
    /// Time from acceptance to the answer, in microseconds.
    pub latency_us: u64,
}

/// A fill, from which positions are rebuilt at start.
#[derive(Clone, Debug, PartialEq)]
pub struct FillRecord {
    /// Engine-wide order of fills.
    pub seq: i64,
    /// The order filled.
    pub order_id: String,
    /// Account.
    pub account_id: String,
    /// Symbol.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Lots.
    pub volume: f64,
    /// Price.
    pub price: f64,
    /// Unix time.
    pub ts: f64,
}

/// One write in a batch.
#[derive(Clone, Debug)]
pub enum Write {
    /// A new order.
    InsertOrder(OrderRecord),
    /// A pending order's final state.
    UpdateOrder(OrderRecord),
    /// A fill.
    Fill(FillRecord),
    /// A write that changes nothing, to find out whether writes go through again after a
    /// failed commit (readiness must be able to recover without an order to prove it).
    Probe,
    /// Realized P&L added to an account's balance. A delta, not the new balance, so that
    /// concurrent fills commute whatever order their batches commit in.
    BalanceDelta {
        /// Account.
        account_id: String,
        /// Amount added.
        delta: f64,
    },
}

struct Batch {
    writes: Vec<Write>,
    ack: oneshot::Sender<Result<(), StoreError>>,
}

/// An account row.
#[derive(Clone, Debug)]
pub struct AccountRow {
    /// Id.
    pub id: String,
    /// Group.
    pub group: String,
    /// Balance.
    pub balance: f64,
}

/// Whether the latest commit failed, and why: a database that answers reads but cannot take
/// writes (locked, read-only, full) is not ready for orders.
#[derive(Debug, Default)]
struct CommitHealth {
    failing: std::sync::Mutex<Option<String>>,
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    system: &'static str,
    commits: Arc<CommitHealth>,
    writer: mpsc::Sender<Batch>,
    queries: Queries,
    db: DbMetrics,
}

#[derive(Clone, Debug)]
struct Queries {
    insert_order: DbQueryMetrics,
    update_order: DbQueryMetrics,
    insert_fill: DbQueryMetrics,
    update_balance: DbQueryMetrics,
    insert_account: DbQueryMetrics,
    commit: DbQueryMetrics,
    select_order: DbQueryMetrics,
    select_orders: DbQueryMetrics,
    select_accounts: DbQueryMetrics,
    select_fills: DbQueryMetrics,
    ping: DbQueryMetrics,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, grp TEXT NOT NULL, currency TEXT NOT NULL, \
     balance DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, client_order_id TEXT, account_id TEXT NOT NULL, \
     symbol TEXT NOT NULL, side TEXT NOT NULL, order_type TEXT NOT NULL, volume DOUBLE PRECISION NOT NULL, \
     price DOUBLE PRECISION, status TEXT NOT NULL, reason TEXT, route TEXT, fill_price DOUBLE PRECISION, lp TEXT, \
     created_at TEXT NOT NULL, latency_us BIGINT NOT NULL, seq BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS orders_seq ON orders (seq)",
    "CREATE TABLE IF NOT EXISTS fills (seq BIGINT PRIMARY KEY, order_id TEXT NOT NULL, account_id TEXT NOT NULL, \
     symbol TEXT NOT NULL, side TEXT NOT NULL, volume DOUBLE PRECISION NOT NULL, price DOUBLE PRECISION NOT NULL, \
     ts DOUBLE PRECISION NOT NULL)",
];

const ORDER_COLUMNS: &str =
    "id, client_order_id, account_id, symbol, side, order_type, volume, price, status, reason, \
     route, fill_price, lp, created_at, latency_us";

async fn timed<T>(
    q: &DbQueryMetrics,
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let start = Instant::now();
    let result = fut.await;
    q.record(
        start.elapsed(),
        if result.is_ok() {
            DbOutcome::Success
        } else {
            DbOutcome::Error
        },
    );
    result
}

impl Store {
    /// Connects, creates the schema, and starts the writer.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn open(url: &str, db: DbMetrics) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            if let Some(dir) = sqlite_dir(url) {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| StoreError::Query(format!("cannot create {dir}: {e}")))?;
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL lets readers run beside the writer; FULL makes a commit durable
                        // before the order it holds is acknowledged.
                        for pragma in [
                            "PRAGMA journal_mode=WAL",
                            "PRAGMA synchronous=FULL",
                            "PRAGMA busy_timeout=5000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        let queries = Queries {
            insert_order: db.query("insert", "orders"),
            update_order: db.query("update", "orders"),
            insert_fill: db.query("insert", "fills"),
            update_balance: db.query("update", "accounts"),
            insert_account: db.query("insert", "accounts"),
            commit: db.query("commit", "transaction"),
            select_order: db.query("select", "orders"),
            select_orders: db.query("select_recent", "orders"),
            select_accounts: db.query("select", "accounts"),
            select_fills: db.query("select", "fills"),
            ping: db.query("ping", "none"),
        };
        let (writer, batches) = mpsc::channel(4096);
        let commits = Arc::new(CommitHealth::default());
        tokio::spawn(write_loop(
            pool.clone(),
            batches,
            queries.clone(),
            !sqlite,
            Arc::clone(&commits),
        ));
        let system = if sqlite { "sqlite" } else { "postgresql" };
        Ok(Store {
            pool,
            system,
            commits,
            writer,
            queries,
            db,
        })
    }

    /// `db.system` of the OpenTelemetry conventions: `sqlite` or `postgresql`.
    pub fn system(&self) -> &'static str {
        self.system
    }

    /// Commits `writes` in the next batch and waits for the commit.
    ///
    /// # Errors
    /// When the transaction fails or the writer has stopped.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.writer
            .send(Batch { writes, ack })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Creates the accounts that do not exist yet.
    ///
    /// # Errors
    /// When the insert fails.
    pub async fn seed_accounts(&self, accounts: &[AccountRow]) -> Result<(), StoreError> {
        for a in accounts {
            timed(
                &self.queries.insert_account,
                sqlx::query("INSERT INTO accounts (id, grp, currency, balance) VALUES ($1, $2, 'USD', $3) ON CONFLICT (id) DO NOTHING")
                    .bind(&a.id)
                    .bind(&a.group)
                    .bind(a.balance)
                    .execute(&self.pool),
            )
            .await?;
        }
        Ok(())
    }

    /// Every account.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, StoreError> {
        let rows = timed(
            &self.queries.select_accounts,
            sqlx::query("SELECT id, grp, balance FROM accounts ORDER BY id").fetch_all(&self.pool),
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccountRow {
                    id: r.try_get("id")?,
                    group: r.try_get("grp")?,
                    balance: r.try_get("balance")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Every fill in order, to rebuild positions.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn fills(&self) -> Result<Vec<FillRecord>, StoreError> {
        let rows = timed(
            &self.queries.select_fills,
            sqlx::query("SELECT seq, order_id, account_id, symbol, side, volume, price, ts FROM fills ORDER BY seq").fetch_all(&self.pool),
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FillRecord {
                    seq: r.try_get("seq")?,
                    order_id: r.try_get("order_id")?,
                    account_id: r.try_get("account_id")?,
                    symbol: r.try_get("symbol")?,
                    side: column_value(r, "side", Side::ALL, Side::as_str)?,
                    volume: r.try_get("volume")?,
                    price: r.try_get("price")?,
                    ts: r.try_get("ts")?,
                })
            })
            .collect()
    }

    /// The newest `limit` orders, newest first, with the highest sequence number used.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn recent_orders(&self, limit: i64) -> Result<(Vec<OrderRecord>, i64), StoreError> {
        let rows = timed(
            &self.queries.select_orders,
            sqlx::query(&format!(
                "SELECT {ORDER_COLUMNS}, seq FROM orders ORDER BY seq DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(&self.pool),
        )
        .await?;
        let max_seq = rows
            .first()
            .map(|r| r.try_get::<i64, _>("seq"))
            .transpose()?
            .unwrap_or(0);
        let orders = rows.iter().map(order_from_row).collect::<Result<_, _>>()?;
        Ok((orders, max_seq))
    }

    /// Orders still pending, oldest first.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn pending_orders(&self) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = timed(
            &self.queries.select_orders,
            sqlx::query(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE status = $1 ORDER BY seq"
            ))
            .bind(OrderStatus::Pending.as_str())
            .fetch_all(&self.pool),
        )
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// One order by id.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = timed(
            &self.queries.select_order,
            sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool),
        )
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// The highest fill sequence number stored.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn max_fill_seq(&self) -> Result<i64, StoreError> {
        let row = timed(
            &self.queries.select_fills,
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM fills").fetch_one(&self.pool),
        )
        .await?;
        Ok(row.try_get::<i64, _>("m")?)
    }

    /// A round trip to the database, for readiness.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let failing = self
            .commits
            .failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let start = Instant::now();
        if let Some(error) = failing {
            // Reads may work while writes do not: prove a write before reporting ready again.
            return match self.write(vec![Write::Probe]).await {
                Ok(()) => Ok(start.elapsed()),
                Err(now) => Err(StoreError::Query(format!(
                    "commits are failing: {now} (before: {error})"
                ))),
            };
        }
        timed(
            &self.queries.ping,
            sqlx::query("SELECT 1").execute(&self.pool),
        )
        .await?;
        Ok(start.elapsed())
    }

    /// Updates the pool gauges.
    pub fn record_pool(&self) {
        let size = self.pool.size() as usize;
        let idle = self.pool.num_idle();
        self.db.set_pool(idle, size.saturating_sub(idle));
    }

    /// Waits for queued writes and closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_dir(url: &str) -> Option<String> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
}

fn order_from_row(r: &AnyRow) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        id: r.try_get("id")?,
        client_order_id: r.try_get("client_order_id")?,
        account_id: r.try_get("account_id")?,
        symbol: r.try_get("symbol")?,
        side: column_value(r, "side", Side::ALL, Side::as_str)?,
        order_type: column_value(r, "order_type", OrderType::ALL, OrderType::as_str)?,
        volume: r.try_get("volume")?,
        price: r.try_get("price")?,
        status: column_value(r, "status", OrderStatus::ALL, OrderStatus::as_str)?,
        reason: r.try_get("reason")?,
        route: r.try_get("route")?,
        fill_price: r.try_get("fill_price")?,
        lp: r.try_get("lp")?,
        created_at: r.try_get("created_at")?,
        latency_us: u64::try_from(r.try_get::<i64, _>("latency_us")?).unwrap_or(0),
    })
}

/// Commits slower than this are logged as `performance` events.
const SLOW_COMMIT: Duration = Duration::from_millis(100);

/// Most writes one transaction takes: enough to amortise a commit, few enough to bound latency.
const MAX_BATCH: usize = 512;

/// `nullable_rebind`: the backend caches a statement with the parameter types of its first
/// execution (PostgreSQL through the `Any` driver), so statements whose nullable parameters
/// change between NULL and a value must not be cached.
async fn write_loop(
    pool: AnyPool,
    mut batches: mpsc::Receiver<Batch>,
    queries: Queries,
    nullable_rebind: bool,
    commits: Arc<CommitHealth>,
) {
    let mut seq: Option<i64> = None;
    while let Some(first) = batches.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_BATCH {
            match batches.try_recv() {
                Ok(b) => group.push(b),
                Err(_) => break,
            }
        }
        if seq.is_none() {
            let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM orders")
                .fetch_one(&pool)
                .await;
            seq = row.ok().and_then(|r| r.try_get::<i64, _>("m").ok());
        }
        let mut next_seq = seq.unwrap_or(0);
        let commit_started = Instant::now();
        let result = commit(&pool, &group, &queries, &mut next_seq, !nullable_rebind).await;
        rtx_monitoring::logging::events::performance(
            "db.commit",
            commit_started.elapsed(),
            SLOW_COMMIT,
        );
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = group.iter().map(|b| b.writes.len()).sum::<usize>(), "database commit failed; the orders in it are answered 503");
        }
        if result.is_ok() {
            seq = Some(next_seq);
        }
        *commits
            .failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            result.as_ref().err().map(ToString::to_string);
        for batch in group {
            let _ = batch.ack.send(result.clone());
        }
    }
}

async fn commit(
    pool: &AnyPool,
    group: &[Batch],
    q: &Queries,
    seq: &mut i64,
    cache: bool,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for write in group.iter().flat_map(|b| &b.writes) {
        match write {
            Write::InsertOrder(o) => {
                *seq += 1;
                let sql = format!("INSERT INTO orders ({ORDER_COLUMNS}, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)");
                timed(
                    &q.insert_order,
                    bind_order(sqlx::query(&sql).persistent(cache), o)
                        .bind(*seq)
                        .execute(&mut *tx),
                )
                .await?;
            }
            Write::UpdateOrder(o) => {
                let sql = "UPDATE orders SET status = $1, reason = $2, route = $3, fill_price = $4, lp = $5, latency_us = $6 WHERE id = $7";
                timed(
                    &q.update_order,
                    sqlx::query(sql)
                        .persistent(cache)
                        .bind(o.status.as_str())
                        .bind(&o.reason)
                        .bind(&o.route)
                        .bind(o.fill_price)
                        .bind(&o.lp)
                        .bind(i64::try_from(o.latency_us).unwrap_or(i64::MAX))
                        .bind(&o.id)
                        .execute(&mut *tx),
                )
                .await?;
            }
            Write::Fill(f) => {
                let sql = "INSERT INTO fills (seq, order_id, account_id, symbol, side, volume, price, ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
                timed(
                    &q.insert_fill,
                    sqlx::query(sql)
                        .bind(f.seq)
                        .bind(&f.order_id)
                        .bind(&f.account_id)
                        .bind(&f.symbol)
                        .bind(f.side.as_str())
                        .bind(f.volume)
                        .bind(f.price)
                        .bind(f.ts)
                        .execute(&mut *tx),
                )
                .await?;
            }
            Write::Probe => {
                timed(
                    &q.update_balance,
                    sqlx::query(
                        "UPDATE accounts SET balance = balance WHERE id = '__rtx_write_probe__'",
                    )
                    .execute(&mut *tx),
                )
                .await?;
            }
            Write::BalanceDelta { account_id, delta } => {
                timed(
                    &q.update_balance,
                    sqlx::query("UPDATE accounts SET balance = balance + $1 WHERE id = $2")
                        .bind(*delta)
                        .bind(account_id)
                        .execute(&mut *tx),
                )
                .await?;
            }
        }
    }
    timed(&q.commit, tx.commit()).await?;
    Ok(())
}

fn bind_order<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    o: &'q OrderRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&o.id)
        .bind(&o.client_order_id)
        .bind(&o.account_id)
        .bind(&o.symbol)
        .bind(o.side.as_str())
        .bind(o.order_type.as_str())
        .bind(o.volume)
        .bind(o.price)
        .bind(o.status.as_str())
        .bind(&o.reason)
        .bind(&o.route)
        .bind(o.fill_price)
        .bind(&o.lp)
        .bind(&o.created_at)
        .bind(i64::try_from(o.latency_us).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtx_monitoring::catalogue::{CatalogueConfig, TradingMetrics};
    use rtx_monitoring::metrics::Registry;

    fn order(id: &str) -> OrderRecord {
        OrderRecord {
            id: id.to_owned(),
            client_order_id: None,
            account_id: "demo-1".to_owned(),
            symbol: "EURUSD".to_owned(),
            side: Side::Sell,
            order_type: OrderType::Limit,
            volume: 0.5,
            price: Some(1.1),
            status: OrderStatus::Pending,
            reason: None,
            route: None,
            fill_price: None,
            lp: None,
            created_at: "2026-11-24T05:13:09.123456Z".to_owned(),
            latency_us: 0,
        }
    }

    #[tokio::test]
    async fn stored_enums_read_back_and_an_unknown_one_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("rtx-store-enums-{}", std::process::id()));
        let url = format!("sqlite://{}/orders.db?mode=rwc", dir.display());
        let metrics = TradingMetrics::new(&Registry::new(), &CatalogueConfig::default()).unwrap();
        let store = Store::open(&url, metrics.db.clone()).await.unwrap();

        let stored = order("o-1");
        store
            .write(vec![Write::InsertOrder(stored.clone())])
            .await
            .unwrap();
        assert_eq!(store.order("o-1").await.unwrap(), Some(stored.clone()));
        assert_eq!(store.pending_orders().await.unwrap(), vec![stored.clone()]);
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            (&json["side"], &json["order_type"], &json["status"]),
            (
                &serde_json::json!("sell"),
                &serde_json::json!("limit"),
                &serde_json::json!("pending")
            )
        );

        sqlx::query("UPDATE orders SET side = 'short' WHERE id = 'o-1'")
            .execute(&store.pool)
            .await
            .unwrap();
        match store.order("o-1").await {
            Err(StoreError::UnknownValue { column, value }) => {
                assert_eq!((column, value.as_str()), ("side", "short"));
            }
            other => panic!("a side of `short` read as {other:?}"),
        }
        sqlx::query("UPDATE orders SET side = 'sell', status = 'cancelled' WHERE id = 'o-1'")
            .execute(&store.pool)
            .await
            .unwrap();
        let error = store.recent_orders(10).await.unwrap_err();
        assert!(
            error.to_string().contains("`status` holds \"cancelled\""),
            "{error}"
        );

        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
