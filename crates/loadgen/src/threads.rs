//! Where pulseloop's time went during a rate, by kind of thread: time on a CPU, and time
//! runnable but waiting for one (`/proc/<pid>/task/<tid>/schedstat`: run time, run-queue
//! wait, both in nanoseconds). On a machine the load saturates, an answer's latency is mostly
//! its threads' waits: every hop between tokio's workers, the writer and sqlx's SQLite
//! connection threads is a wake-up that may wait for a core. CPU per answer says how much
//! work there is; the waits say how much of the latency is queueing for the cores.

use std::collections::{BTreeMap, HashMap};

/// One thread's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSample {
    /// The thread's name as the kernel keeps it (at most 15 bytes: `sqlx-sqlite-wor`).
    pub name: String,
    pub cpu_ns: u64,
    pub wait_ns: u64,
}

/// Every thread of `pid`, by thread id; empty where the kernel keeps no scheduler statistics.
pub fn sample(pid: u32) -> HashMap<u32, ThreadSample> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let (cpu_ns, wait_ns) = parse_schedstat(&stat)?;
            let name = comm.trim().to_string();
            Some((
                tid,
                ThreadSample {
                    name,
                    cpu_ns,
                    wait_ns,
                },
            ))
        })
        .collect()
}

/// `schedstat`'s first two fields: time on a CPU and time waiting on a run queue.
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// What the threads of one kind did between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct KindTimes {
    pub kind: String,
    pub threads: usize,
    pub cpu_s: f64,
    pub wait_s: f64,
}

/// The threads alive at both samples, grouped by name (a thread's number, if its name ends
/// with one, is dropped), busiest kind first; kinds that did next to nothing over the window
/// (under 50 ms of each: the main thread, timers) are left out.
pub fn by_kind(
    before: &HashMap<u32, ThreadSample>,
    after: &HashMap<u32, ThreadSample>,
) -> Vec<KindTimes> {
    let mut kinds: BTreeMap<String, KindTimes> = BTreeMap::new();
    for (tid, a) in after {
        let Some(b) = before.get(tid) else { continue };
        let cpu_ns = a.cpu_ns.saturating_sub(b.cpu_ns);
        let wait_ns = a.wait_ns.saturating_sub(b.wait_ns);
        if cpu_ns == 0 && wait_ns == 0 {
            continue;
        }
        let kind = a
            .name
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let entry = kinds.entry(kind.to_string()).or_insert_with(|| KindTimes {
            kind: kind.to_string(),
            threads: 0,
            cpu_s: 0.0,
            wait_s: 0.0,
        });
        entry.threads += 1;
        entry.cpu_s += cpu_ns as f64 / 1e9;
        entry.wait_s += wait_ns as f64 / 1e9;
    }
    let mut kinds: Vec<KindTimes> = kinds
        .into_values()
        .filter(|k| k.cpu_s >= 0.05 || k.wait_s >= 0.05)
        .collect();
    kinds.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
    kinds
}

/// One line: `kind ×threads: cpu X s, waiting Y s; …`.
pub fn describe(kinds: &[KindTimes]) -> String {
    kinds
        .iter()
        .map(|k| {
            format!(
                "{} ×{}: cpu {:.2} s, waiting for a core {:.2} s",
                k.kind, k.threads, k.cpu_s, k.wait_s
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(name: &str, cpu_ns: u64, wait_ns: u64) -> ThreadSample {
        ThreadSample {
            name: name.into(),
            cpu_ns,
            wait_ns,
        }
    }

    fn times(kind: &str, threads: usize, cpu_s: f64, wait_s: f64) -> KindTimes {
        KindTimes {
            kind: kind.into(),
            threads,
            cpu_s,
            wait_s,
        }
    }

    #[test]
    fn schedstat_gives_run_time_and_run_queue_wait() {
        assert_eq!(
            parse_schedstat("3140000000 3290000000 20084\n"),
            Some((3_140_000_000, 3_290_000_000))
        );
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("12 x 3"), None);
    }

    #[test]
    fn threads_are_grouped_by_kind_over_the_window_only() {
        let before = HashMap::from([
            (1, thread("tokio-rt-worker", 1_000_000_000, 0)),
            (2, thread("tokio-rt-worker", 0, 500_000_000)),
            (3, thread("sqlx-sqlite-wor", 0, 0)),
            (4, thread("pulseloop-write", 7, 7)),
            (6, thread("pulseloop", 0, 0)),
            (9, thread("gone", 0, 0)),
        ]);
        let after = HashMap::from([
            (1, thread("tokio-rt-worker", 3_000_000_000, 1_000_000_000)),
            (2, thread("tokio-rt-worker", 1_000_000_000, 1_500_000_000)),
            (3, thread("sqlx-sqlite-wor", 4_000_000_000, 250_000_000)),
            // Idle over the window: left out.
            (4, thread("pulseloop-write", 7, 7)),
            // Next to nothing (10 ms on a CPU, 20 ms waiting): left out.
            (6, thread("pulseloop", 10_000_000, 20_000_000)),
            // Born during the window: its counters are not the window's.
            (5, thread("worker-12", 9_000_000_000, 0)),
        ]);
        let kinds = by_kind(&before, &after);
        assert_eq!(
            kinds,
            vec![
                times("sqlx-sqlite-wor", 1, 4.0, 0.25),
                times("tokio-rt-worker", 2, 3.0, 2.0),
            ]
        );
        assert_eq!(
            describe(&kinds[1..]),
            "tokio-rt-worker ×2: cpu 3.00 s, waiting for a core 2.00 s"
        );
    }

    #[test]
    fn a_number_at_the_end_of_a_name_is_not_a_kind_of_its_own() {
        let before = HashMap::from([(1, thread("worker-1", 0, 0)), (2, thread("worker-2", 0, 0))]);
        let after = HashMap::from([
            (1, thread("worker-1", 1_000_000_000, 0)),
            (2, thread("worker-2", 1_000_000_000, 0)),
        ]);
        let kinds = by_kind(&before, &after);
        assert_eq!(kinds.len(), 1);
        assert_eq!((kinds[0].kind.as_str(), kinds[0].threads), ("worker", 2));
    }
}
