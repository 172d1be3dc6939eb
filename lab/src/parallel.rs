//! Both cores, bit-exact: the lab's one way of running work on several threads.
//!
//! The rule that keeps results independent of the thread count: work is cut into **items whose
//! boundaries are fixed by the data, never by the number of threads** (training micro-batches
//! of `micro_batch_size` rows, generation chunks of prompts), each item is computed start to end
//! on one thread by single-threaded kernels, and the results are put back **in item order**
//! before anything adds them up. Which thread ran an item, and when, changes no bit. So
//! `LAB_THREADS=1` and `LAB_THREADS=2` give the same metrics and checkpoint hashes (a test
//! checks it), and the thread count is not part of an experiment's id.
//!
//! The kernels themselves stay single-threaded (burn-flex without its `rayon` feature): a
//! parallel reduction inside a kernel would make the summation order depend on the threads.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Environment variable that sets the number of worker threads (default: every core).
pub const THREADS_ENV: &str = "LAB_THREADS";

/// Worker threads to use: `LAB_THREADS` when set to a positive number, else the cores
/// available to this process.
pub fn threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// `f(index, item)` for every item, on up to [`threads`] scoped threads, results in item order.
///
/// Items are handed out one at a time from a queue (so uneven items balance), but the result
/// of item `i` lands in slot `i` whoever computed it: the output is the same for any number of
/// threads, provided `f` itself is deterministic. A panic in `f` propagates.
pub fn map_ordered<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, T) -> R + Sync,
{
    map_ordered_on(threads(), items, f)
}

/// [`map_ordered`] on exactly `workers` threads (at most one per item; 1 runs inline).
pub fn map_ordered_on<T, R, F>(workers: usize, items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, T) -> R + Sync,
{
    let count = items.len();
    let workers = workers.clamp(1, count.max(1));
    if workers == 1 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| f(i, item))
            .collect();
    }
    let queue: Mutex<VecDeque<(usize, T)>> = Mutex::new(items.into_iter().enumerate().collect());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..count).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queue.lock().expect("work queue").pop_front();
                let Some((index, item)) = next else { break };
                let result = f(index, item);
                results.lock().expect("results")[index] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every item computed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_item_order_for_any_thread_count() {
        let items: Vec<u64> = (0..37).collect();
        let work = |i: usize, x: u64| {
            // Uneven work, so threads finish out of order.
            let spin = (x * 7919) % 5000;
            let mut acc = x;
            for k in 0..spin {
                acc = acc.wrapping_mul(6364136223846793005).wrapping_add(k);
            }
            (i, x, acc)
        };
        let one = map_ordered_on(1, items.clone(), work);
        for workers in [2, 3, 8, 100] {
            assert_eq!(map_ordered_on(workers, items.clone(), work), one);
        }
        assert!(one
            .iter()
            .enumerate()
            .all(|(i, r)| r.0 == i && r.1 == i as u64));
    }

    #[test]
    fn no_items_no_work() {
        let out: Vec<u8> = map_ordered_on(4, Vec::<u8>::new(), |_, x| x);
        assert!(out.is_empty());
    }

    #[test]
    fn threads_reads_the_environment_value() {
        // Only checks the parser's fallback: the variable itself is process-global.
        assert!(threads() >= 1);
    }
}
