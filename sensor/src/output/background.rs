//! Output writes off the per-event loop. The loop hands whole-line batches
//! to a thread of its own through a bounded queue; the thread does the
//! writes (and everything the file output does: whole lines or nothing,
//! rotation, the safe reopen). A slow disk, a full one, or a reader that
//! stops draining stdout then costs the loop nothing until the queue is
//! full — and then the loop waits rather than drop output: alerts are never
//! thrown away to keep up. Failures are counted by the thread and added to
//! the writer's own count.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Batches queued at most: with the outputs' 64 KiB batches, a few MiB of
/// output in flight before the loop feels a stalled writer.
const QUEUE_BATCHES: usize = 64;

/// A `Write` whose writes happen on a thread. `flush` hands the bytes
/// written since the last flush over as one batch (the caller writes whole
/// lines); dropping it waits for every batch to be written.
pub struct BackgroundWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    errors: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundWriter {
    /// Starts the writer thread over `inner`. The counter returned counts
    /// the batches whose write or flush failed there.
    pub fn spawn(
        name: &str,
        mut inner: Box<dyn Write + Send>,
    ) -> io::Result<(BackgroundWriter, Arc<AtomicU64>)> {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_BATCHES);
        let errors = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&errors);
        let thread = std::thread::Builder::new()
            .name(format!("sensor-out-{name}"))
            .spawn(move || {
                for batch in rx {
                    if inner
                        .write_all(&batch)
                        .and_then(|()| inner.flush())
                        .is_err()
                    {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = inner.flush();
            })?;
        Ok((
            BackgroundWriter {
                tx: Some(tx),
                buf: Vec::with_capacity(64 * 1024),
                errors: Arc::clone(&errors),
                thread: Some(thread),
            },
            errors,
        ))
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(64 * 1024));
        match &self.tx {
            Some(tx) => tx
                .send(batch)
                .map_err(|_| io::Error::other("the output thread has stopped")),
            None => Err(io::Error::other("the output is closed")),
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        if self.flush().is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        // Closing the queue ends the thread once it has written the rest.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn batches_reach_the_inner_writer_in_order_and_drop_waits_for_them() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut w, errors) =
            BackgroundWriter::spawn("test", Box::new(Shared(Arc::clone(&seen)))).unwrap();
        for i in 0..1000 {
            writeln!(w, "line {i}").unwrap();
            if i % 7 == 0 {
                w.flush().unwrap();
            }
        }
        drop(w);
        let text = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i}")));
        assert_eq!(errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn failures_are_counted_not_lost() {
        let (mut w, errors) = BackgroundWriter::spawn("test", Box::new(Failing)).unwrap();
        for _ in 0..3 {
            writeln!(w, "x").unwrap();
            w.flush().unwrap();
        }
        drop(w);
        assert_eq!(errors.load(Ordering::Relaxed), 3);
    }
}
