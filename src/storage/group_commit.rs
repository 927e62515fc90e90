//! Group commit: concurrent writes share one transaction and one fsync.
//!
//! A request that must be durable before it is acknowledged (an answer, the claim of a signed
//! request) does not open a transaction of its own. It hands a [`WriteJob`] to the writer and
//! waits. The writer takes what is queued (everything that arrived while the previous batch
//! was committing, up to [`MAX_BATCH`]), runs the jobs one after the other in ONE transaction,
//! commits once (`synchronous=FULL` on SQLite: one fsync for the batch) and only then tells
//! each job's caller its result. So an acknowledged answer is on disk, and a thousand answers a
//! second cost a few dozen commits instead of a thousand `BEGIN IMMEDIATE` fights over SQLite's
//! write lock.
//!
//! Never mixed up: each job carries its own inputs and its own reply channel, and writes only
//! through the transaction it is given. If any job (or the commit) fails, the batch is rolled
//! back and every job is run again alone, so one bad write fails only its own request.
//!
//! Bounded: the queue in front of the writer holds [`QUEUE_CAPACITY`] jobs. When it is full
//! the job is refused at once ([`StoreError::Busy`]): the HTTP layer answers 503 with
//! `Retry-After` instead of letting latency and memory grow without end.
//!
//! SQLite has one writer (one write transaction at a time anyway); PostgreSQL gets
//! [`POSTGRES_WRITERS`] writers pulling from the same queue, each batching.

use chrono::{DateTime, Utc};
use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::answer_write::{OneTrip, OneTripAnswer};
use super::{on_tx, to_ms, Backend, Store, StoreError, StoreResult, StoreTx, WriterConnection};

/// Jobs waiting for a writer, at most. Beyond it requests are refused (shed), not queued.
pub const QUEUE_CAPACITY: usize = 4096;
/// Jobs in one transaction, at most.
pub const MAX_BATCH: usize = 512;
/// Writers on PostgreSQL (each its own connection and transaction).
pub const POSTGRES_WRITERS: usize = 4;

/// A future a job returns, borrowing the job and the transaction.
pub type JobFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// One unit of durable work. `run` may be called more than once (a failed batch is re-run job
/// by job), each time in a fresh transaction: it must depend only on its inputs and what it
/// reads through `tx`.
pub trait WriteJob: Send + 'static {
    type Output: Send + 'static;
    fn run<'a>(&'a mut self, tx: &'a mut StoreTx) -> JobFuture<'a, Self::Output>;

    /// The answer this job writes first, if it is one the writer may write together
    /// with the batch's other answers in one trip ([`StoreTx::answers_together`]).
    fn answer(&self) -> Option<OneTripAnswer<'_>> {
        None
    }

    /// What the batch's trip did with [`WriteJob::answer`], told before each `run` (`None`:
    /// it was not written with the batch, the job writes it itself).
    fn answered(&mut self, _outcome: Option<OneTrip>) {}
}

/// A job with its reply channel, its type erased for the queue.
trait Queued: Send {
    fn run<'a>(&'a mut self, tx: &'a mut StoreTx) -> JobFuture<'a, ()>;
    /// [`WriteJob::answer`], with the workspace the job writes for.
    fn answer(&self) -> Option<(OneTripAnswer<'_>, &str)>;
    fn answered(&mut self, outcome: Option<OneTrip>);
    /// Sends the result: the output once committed, or the error.
    fn deliver(self: Box<Self>, result: StoreResult<()>);
}

struct Typed<J: WriteJob> {
    job: J,
    /// The caller's workspace: the outbox rows the job writes belong to it (the job runs on
    /// the writer's task, which has no workspace of its own).
    team: String,
    out: Option<J::Output>,
    reply: oneshot::Sender<StoreResult<J::Output>>,
}

impl<J: WriteJob> Queued for Typed<J> {
    fn run<'a>(&'a mut self, tx: &'a mut StoreTx) -> JobFuture<'a, ()> {
        Box::pin(async move {
            self.out = None;
            let team = Some(self.team.clone());
            let out = super::installations::for_team(team, self.job.run(tx)).await?;
            self.out = Some(out);
            Ok(())
        })
    }

    fn answer(&self) -> Option<(OneTripAnswer<'_>, &str)> {
        self.job.answer().map(|a| (a, self.team.as_str()))
    }

    fn answered(&mut self, outcome: Option<OneTrip>) {
        self.job.answered(outcome);
    }

    fn deliver(self: Box<Self>, result: StoreResult<()>) {
        let Typed { out, reply, .. } = *self;
        let result = result.and_then(|()| {
            out.ok_or_else(|| StoreError::Corrupt("a committed write job has no result".into()))
        });
        // The caller may have gone (its connection closed); the write stands.
        let _ = reply.send(result);
    }
}

type Job = Box<dyn Queued>;

/// The queue in front of the writer(s); cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer(s) for `store` (a handle without a writer of its own, so the writers
    /// stop when the last handle with this queue is dropped).
    pub(crate) fn start(store: Store) -> GroupCommit {
        let (queue, rx) = mpsc::channel::<Job>(QUEUE_CAPACITY);
        let rx = Arc::new(Mutex::new(rx));
        match store.backend() {
            Backend::Sqlite => start_writer_thread(store, rx),
            Backend::Postgres => {
                for _ in 0..POSTGRES_WRITERS {
                    tokio::spawn(writer(store.clone(), rx.clone()));
                }
            }
        }
        GroupCommit { queue }
    }
}

/// SQLite's one writer runs on a thread of its own. A batch is a chain of statements, each a
/// hop to sqlx's connection thread and back; the connection thread wakes the task from
/// outside the runtime, and on the shared runtime that wake-up waited in the global queue
/// behind the HTTP requests being parsed (tokio looks there only every few dozen tasks).
/// Under load every hop of every batch waited so, and the answers of the batch with it. On
/// its own thread the writer is the only task there is. (PostgreSQL's writers stay on the
/// shared runtime: their connections are sockets registered with it.)
fn start_writer_thread(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let spawned = std::thread::Builder::new()
        .name("pulseloop-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(writer(store, rx)),
                Err(e) => tracing::error!(error = %e, "cannot start the writer's runtime; writes will fail"),
            }
        });
    if let Err(e) = spawned {
        // Dropping the receiver closes the queue: every write then fails with "the writer
        // has stopped", loudly, instead of waiting for ever.
        tracing::error!(error = %e, "cannot start the writer thread; writes will fail");
    }
}

async fn writer(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    // SQLite's writer keeps a connection of its own (see `sqlite_tx`); PostgreSQL's take
    // theirs from the pool.
    let own = match &store.pool {
        super::Pool::Sqlite(pool, _) => Some(WriterConnection::new(
            pool.connect_options(),
            store.deliveries.clone(),
        )),
        super::Pool::Postgres(_) => None,
    };
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        commit_batch(&store, own.as_ref(), batch).await;
    }
}

async fn commit_batch(store: &Store, own: Option<&WriterConnection>, mut batch: Vec<Job>) {
    metrics::histogram!("group_commit_batch_size").record(batch.len() as f64);
    match run_all(store, own, &mut batch).await {
        Ok(()) => {
            for job in batch {
                job.deliver(Ok(()));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(job) = batch.pop() {
                job.deliver(Err(e));
            }
        }
        Err(e) => {
            // Someone's write (or the commit) failed: the batch rolled back. Each job runs
            // again alone, so the others still get in and only the bad one fails.
            tracing::warn!(error = %e, jobs = batch.len(), "a grouped commit failed; its writes are retried one by one");
            metrics::counter!("group_commit_split_total").increment(1);
            for mut job in batch {
                let result = run_all(store, own, std::slice::from_mut(&mut job)).await;
                job.deliver(result);
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits it. The time of each step is recorded
/// (`group_commit_phase_seconds`): when answers queue, it tells whether the writer waits
/// for the write lock, spends its time in the statements, or in the commit's fsync. (On
/// SQLite's own connection `begin` sends nothing: the first statement, usually the answers
/// trip, carries `BEGIN IMMEDIATE` and its wait for the lock.)
async fn run_all(
    store: &Store,
    own: Option<&WriterConnection>,
    jobs: &mut [Job],
) -> StoreResult<()> {
    let mut step = std::time::Instant::now();
    let mut done = |phase: &'static str| {
        let now = std::time::Instant::now();
        metrics::histogram!("group_commit_phase_seconds", "phase" => phase)
            .record((now - step).as_secs_f64());
        step = now;
    };
    let mut tx = match own {
        Some(own) => store.begin_on(own).await?,
        None => store.begin().await?,
    };
    done("begin");
    for job in jobs.iter_mut() {
        job.answered(None);
    }
    answer_together(&mut tx, jobs).await?;
    done("answers");
    for job in jobs.iter_mut() {
        job.run(&mut tx).await?;
    }
    done("jobs");
    tx.commit().await?;
    done("commit");
    Ok(())
}

/// The batch's answers written in as few trips as it takes, one when no two answer the same
/// delivery or carry the same signature (a second one waits for the next trip, which sees
/// the first one's writes, as if the jobs had run one after the other). Every statement of
/// a batch was a trip (to SQLite's connection thread, to PostgreSQL's server) and back, each
/// waiting for a core on a busy machine; the writer spent its time in those waits while the
/// answers behind it queued.
async fn answer_together(tx: &mut StoreTx, jobs: &mut [Job]) -> StoreResult<()> {
    let mut waiting: Vec<usize> = (0..jobs.len())
        .filter(|&i| jobs[i].answer().is_some())
        .collect();
    while !waiting.is_empty() {
        let mut deliveries = HashSet::new();
        let mut signatures = HashSet::new();
        let (mut now, later): (Vec<usize>, Vec<usize>) = waiting.iter().partition(|&&i| {
            let Some((a, _)) = jobs[i].answer() else {
                return true; // nothing to write together: dropped below, never waits again
            };
            let signature = a.claim.map(|c| c.signature.clone());
            let first = !deliveries.contains(&a.delivery_id)
                && signature.as_ref().is_none_or(|s| !signatures.contains(s));
            if first {
                deliveries.insert(a.delivery_id);
                signatures.extend(signature);
            }
            first
        });
        now.retain(|&i| jobs[i].answer().is_some());
        let outcomes = {
            // In the order of `now`: each outcome goes back to its own job.
            let answers: Vec<(OneTripAnswer<'_>, &str)> =
                now.iter().filter_map(|&i| jobs[i].answer()).collect();
            // The callers put their deliveries' new rows back in the cache themselves.
            let _trip = tx.answers_trip();
            tx.answers_together(&answers).await?
        };
        for (&i, outcome) in now.iter().zip(outcomes) {
            jobs[i].answered(Some(outcome));
        }
        waiting = later;
    }
    Ok(())
}

/// Jobs waiting beyond which the writer is behind: at a thousand answers a second a commit
/// lets a handful queue up; this many means the writer has fallen tens of milliseconds behind.
pub const WRITER_BEHIND_AT: usize = 64;

impl Store {
    /// Whether the writer(s) have fallen behind ([`WRITER_BEHIND_AT`] jobs waiting). The
    /// outbox then leaves the writer and the CPU to the requests someone waits for.
    pub fn writer_is_behind(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| QUEUE_CAPACITY - g.queue.capacity() >= WRITER_BEHIND_AT)
    }

    /// Runs `job` in the next grouped transaction and returns its output once that
    /// transaction is committed (durable). [`StoreError::Busy`] at once when the queue is full.
    pub async fn write<J: WriteJob>(&self, job: J) -> StoreResult<J::Output> {
        let Some(group) = &self.group else {
            // A handle used by a writer itself: run alone.
            let mut job = job;
            let mut tx = self.begin().await?;
            let out = job.run(&mut tx).await?;
            tx.commit().await?;
            return Ok(out);
        };
        let (reply, answer) = oneshot::channel();
        let queued: Job = Box::new(Typed {
            job,
            team: super::installations::current_team(),
            out: None,
            reply,
        });
        match group.queue.try_send(queued) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("group_commit_shed_total").increment(1);
                return Err(StoreError::Busy);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(StoreError::Database("the writer has stopped".into()));
            }
        }
        answer
            .await
            .map_err(|_| StoreError::Database("the writer dropped a write".into()))?
    }

    /// Claims a signed request's signature in the next grouped transaction (see
    /// [`StoreTx::claim_signature`]); `false` for a replay. Pruning old signatures stays with
    /// [`Store::claim_signature`]'s once-a-minute housekeeping.
    pub async fn claim_signature_grouped(&self, claim: SignatureClaim) -> StoreResult<bool> {
        self.prune_signatures_now_and_then(claim.now).await?;
        self.write(ClaimJob(claim)).await
    }
}

struct ClaimJob(SignatureClaim);

impl WriteJob for ClaimJob {
    type Output = bool;
    fn run<'a>(&'a mut self, tx: &'a mut StoreTx) -> JobFuture<'a, bool> {
        Box::pin(async move { tx.claim_signature(&self.0).await })
    }
}

/// A verified request's signature, to be claimed once (the replay guard).
#[derive(Debug, Clone)]
pub struct SignatureClaim {
    pub signature: String,
    pub signed_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl StoreTx {
    /// Claims a signature in this transaction: `true` the first time, `false` for a replay.
    /// It commits (or rolls back) with the request's own writes.
    pub async fn claim_signature(&mut self, claim: &SignatureClaim) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO seen_signatures (signature, request_ts) VALUES ($1, $2)
                 ON CONFLICT (signature) DO NOTHING",
            )
            .bind(&claim.signature)
            .bind(to_ms(claim.signed_at))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

tokio::task_local! {
    /// The signature of the request being handled, not claimed yet: the first grouped write
    /// made for the request claims it in its own transaction (one commit for both).
    static DEFERRED_CLAIM: RefCell<Option<SignatureClaim>>;
}

/// Runs `work` with `claim` deferred: a write made for this request may take it
/// ([`take_deferred_claim`]) and claim it with its own changes. Returns what `work` gave and
/// the claim if nobody took it (the caller claims it then).
pub async fn with_deferred_claim<F: Future>(
    claim: SignatureClaim,
    work: F,
) -> (F::Output, Option<SignatureClaim>) {
    DEFERRED_CLAIM
        .scope(RefCell::new(Some(claim)), async move {
            let out = work.await;
            let left = DEFERRED_CLAIM.with(|c| c.borrow_mut().take());
            (out, left)
        })
        .await
}

/// The deferred claim of the request being handled, if it was not taken yet.
pub fn take_deferred_claim() -> Option<SignatureClaim> {
    DEFERRED_CLAIM
        .try_with(|c| c.borrow_mut().take())
        .ok()
        .flatten()
}

/// A job made of a closure (for the store's own small writes): `f` is called with the
/// transaction each time the job runs.
pub(crate) struct FnJob<F>(F);

/// Wraps a closure as a [`WriteJob`]. The closure clones what its future needs.
pub(crate) fn job<T, F>(f: F) -> FnJob<F>
where
    T: Send + 'static,
    F: for<'a> FnMut(&'a mut StoreTx) -> JobFuture<'a, T> + Send + 'static,
{
    FnJob(f)
}

impl<T, F> WriteJob for FnJob<F>
where
    T: Send + 'static,
    F: for<'a> FnMut(&'a mut StoreTx) -> JobFuture<'a, T> + Send + 'static,
{
    type Output = T;
    fn run<'a>(&'a mut self, tx: &'a mut StoreTx) -> JobFuture<'a, T> {
        (self.0)(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;
    use std::time::Duration;

    /// A job running `sql` with `$1` bound to `x`. Its statement begins the transaction
    /// (SQLite's writer sends `BEGIN IMMEDIATE` with a job's first statement), so it waits
    /// for the write lock.
    fn statement(
        sql: &'static str,
        x: i64,
    ) -> FnJob<impl for<'a> FnMut(&'a mut StoreTx) -> JobFuture<'a, ()> + Send> {
        job(move |tx| {
            Box::pin(async move {
                on_tx!(tx, |c| {
                    sqlx::query(sql).bind(x).execute(c).await?;
                });
                Ok(())
            })
        })
    }

    /// A job with one statement that writes nothing.
    fn one_statement() -> FnJob<impl for<'a> FnMut(&'a mut StoreTx) -> JobFuture<'a, ()> + Send> {
        statement("SELECT $1", 1)
    }

    /// A job inserting `x` into table `t` (whose `x` is unique).
    fn insert(x: i64) -> FnJob<impl for<'a> FnMut(&'a mut StoreTx) -> JobFuture<'a, ()> + Send> {
        statement("INSERT INTO t (x) VALUES ($1)", x)
    }

    /// `job` written through `store`'s writer, on a task of its own.
    fn spawn_write<J: WriteJob>(
        store: &Store,
        job: J,
    ) -> tokio::task::JoinHandle<StoreResult<J::Output>> {
        let store = store.clone();
        tokio::spawn(async move { store.write(job).await })
    }

    /// The outbox yields while [`Store::writer_is_behind`]: true while jobs pile up behind a
    /// writer that cannot commit, false again once they are written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_is_behind_while_jobs_pile_up_and_not_once_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("behind.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        assert!(!store.writer_is_behind());

        // Another connection holds SQLite's write lock: the writer's next BEGIN waits.
        let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let first = spawn_write(&store, one_statement());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let queued: Vec<_> = (0..WRITER_BEHIND_AT + 8)
            .map(|_| spawn_write(&store, one_statement()))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !store.writer_is_behind() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} jobs queued behind a blocked writer, and it is not behind",
                WRITER_BEHIND_AT + 8
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        first.await.unwrap().unwrap();
        for job in queued {
            job.await.unwrap().unwrap();
        }
        assert!(!store.writer_is_behind(), "caught up");
    }

    /// A batch with one failing job is rolled back and its jobs run again one by one: the
    /// failing one fails alone, the others are stored once, and the writer's connection
    /// (left inside the failed transaction) writes on afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_failing_job_fails_alone_and_the_rest_of_its_batch_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("split.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
            .execute(&mut holder)
            .await
            .unwrap();

        // The writer waits for the lock with its first job; the next three queue behind it
        // and go in one batch, where the second one's insert breaks the unique rule.
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let first = spawn_write(&store, insert(0));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Queued in this order: one task polls the three writes in turn (tasks of their own
        // could reach the queue in any order).
        let batch = tokio::spawn({
            let store = store.clone();
            async move {
                let writes = [1, 1, 3].map(|x| {
                    let store = store.clone();
                    async move { store.write(insert(x)).await }
                });
                futures_util::future::join_all(writes).await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();

        first.await.unwrap().unwrap();
        let results: Vec<StoreResult<()>> = batch.await.unwrap();
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(results[1], Err(StoreError::Conflict(_))),
            "the duplicate fails with its own error: {:?}",
            results[1]
        );
        assert!(results[2].is_ok(), "{:?}", results[2]);

        store.write(insert(4)).await.unwrap();
        let xs: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&mut holder)
            .await
            .unwrap();
        assert_eq!(xs, vec![0, 1, 3, 4]);
    }
}
