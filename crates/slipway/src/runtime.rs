//! The Tokio runtime every command runs on.

/// Threads for blocking work (file I/O through `tokio::fs`, password hashing, image
/// decoding, scans): Tokio's default is 512. Each thread that has run keeps its allocator
/// heap, about 3 MiB here, so on the filesystem store, where every blob read is blocking
/// work, Slipway's RSS grew with the pool under load (bench/soak.sh: 37 to 58 threads,
/// +14% in 30 s with 25 clients, still climbing). Past this many, blocking work queues.
pub const BLOCKING_THREADS: usize = 32;

/// A multi-threaded runtime (one worker per core) with `BLOCKING_THREADS`.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(BLOCKING_THREADS).build()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Twice as much blocking work as there are threads: never more than
    /// `BLOCKING_THREADS` run at once, and all of it finishes.
    #[test]
    fn blocking_work_beyond_the_bound_queues() {
        let runtime = build().unwrap();
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let done = runtime.block_on(async {
            let tasks: Vec<_> = (0..BLOCKING_THREADS * 2)
                .map(|_| {
                    let (running, most) = (running.clone(), most.clone());
                    tokio::task::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let mut done = 0;
            for task in tasks {
                task.await.unwrap();
                done += 1;
            }
            done
        });
        assert_eq!(done, BLOCKING_THREADS * 2);
        assert_eq!(most.load(Ordering::SeqCst), BLOCKING_THREADS);
    }
}
