//! Scheduling of write batches: parallel across files, ordered per file.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;

/// Batches waiting or running, keyed by the files they touch.
#[derive(Debug)]
pub(crate) struct WriteQueue<J> {
    max_running: usize,
    running: usize,
    busy: HashSet<PathBuf>,
    waiting: VecDeque<(Vec<PathBuf>, J)>,
}

impl<J> WriteQueue<J> {
    /// `max_running` bounds how many batches run at once (at least 1).
    pub(crate) fn new(max_running: usize) -> Self {
        Self {
            max_running: max_running.max(1),
            running: 0,
            busy: HashSet::new(),
            waiting: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, paths: Vec<PathBuf>, job: J) {
        self.waiting.push_back((paths, job));
    }

    /// The next batch that may start now, marked as running. A batch waits
    /// while any of its files is being written, or is wanted by an earlier
    /// waiting batch (so writes to one file keep their order).
    pub(crate) fn start_next(&mut self) -> Option<(Vec<PathBuf>, J)> {
        if self.running >= self.max_running {
            return None;
        }
        let mut claimed: HashSet<&PathBuf> = HashSet::new();
        let mut pick = None;
        for (i, (paths, _)) in self.waiting.iter().enumerate() {
            if paths
                .iter()
                .all(|p| !self.busy.contains(p) && !claimed.contains(p))
            {
                pick = Some(i);
                break;
            }
            claimed.extend(paths.iter());
        }
        let (paths, job) = self.waiting.remove(pick?)?;
        self.busy.extend(paths.iter().cloned());
        self.running += 1;
        Some((paths, job))
    }

    /// Marks a batch started by [`start_next`](Self::start_next) as done.
    pub(crate) fn finish(&mut self, paths: &[PathBuf]) {
        for p in paths {
            self.busy.remove(p);
        }
        self.running = self.running.saturating_sub(1);
    }

    /// Nothing running and nothing waiting.
    pub(crate) fn is_idle(&self) -> bool {
        self.running == 0 && self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn different_files_run_in_parallel_up_to_the_bound() {
        let mut q = WriteQueue::new(2);
        q.push(vec![p("a")], 1);
        q.push(vec![p("b")], 2);
        q.push(vec![p("c")], 3);
        assert_eq!(q.start_next().map(|j| j.1), Some(1));
        assert_eq!(q.start_next().map(|j| j.1), Some(2));
        assert_eq!(q.start_next().map(|j| j.1), None);
        q.finish(&[p("a")]);
        assert_eq!(q.start_next().map(|j| j.1), Some(3));
    }

    #[test]
    fn same_file_keeps_order() {
        let mut q = WriteQueue::new(8);
        q.push(vec![p("a"), p("b")], 1);
        q.push(vec![p("b")], 2);
        q.push(vec![p("c"), p("b")], 3);
        q.push(vec![p("c")], 4);
        q.push(vec![p("d")], 5);
        assert_eq!(q.start_next().map(|j| j.1), Some(1));
        // 2 and 3 need b; 4 needs c, which waiting batch 3 wants first.
        assert_eq!(q.start_next().map(|j| j.1), Some(5));
        assert_eq!(q.start_next().map(|j| j.1), None);
        q.finish(&[p("a"), p("b")]);
        assert_eq!(q.start_next().map(|j| j.1), Some(2));
        assert_eq!(q.start_next().map(|j| j.1), None);
        q.finish(&[p("b")]);
        assert_eq!(q.start_next().map(|j| j.1), Some(3));
        q.finish(&[p("c"), p("b")]);
        assert_eq!(q.start_next().map(|j| j.1), Some(4));
        q.finish(&[p("c")]);
        q.finish(&[p("d")]);
        assert!(q.is_idle());
    }
}
