//! What the kernel says about a process under test (the gateway, the hop): CPU time
//! (`/proc/<pid>/stat` utime + stime, in clock ticks, and per thread in nanoseconds from
//! `/proc/<pid>/task/<tid>/schedstat`), resident memory (`VmRSS`, peak `VmHWM`), thread count (`/proc/<pid>/status`) and open file
//! descriptors (`/proc/<pid>/fd`). Parsers are pure functions so they are unit-tested on samples.

use std::time::Duration;

/// One look at a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// utime + stime.
    pub cpu: Duration,
    /// Resident set, bytes.
    pub rss: u64,
    /// Peak resident set since start or the last `reset_peak`, bytes.
    pub hwm: u64,
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
}

/// A process watched through `/proc`.
#[derive(Clone, Copy, Debug)]
pub struct Proc {
    pid: u32,
    ticks_per_second: u64,
}

impl Proc {
    /// Watches `pid`.
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// utime + stime so far.
    pub fn cpu(&self) -> Result<Duration, String> {
        let text = read(&format!("/proc/{}/stat", self.pid))?;
        let ticks = parse_cpu_ticks(&text).ok_or_else(|| format!("unexpected /proc/{}/stat: {text}", self.pid))?;
        let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(self.ticks_per_second);
        Ok(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// CPU time of each live thread now, to nanoseconds: at 50 req/s a 5 s window holds about
    /// 100 ms of CPU, which clock ticks (10 ms) would blur by a fifth.
    pub fn thread_times(&self) -> Result<ThreadTimes, String> {
        let dir = format!("/proc/{}/task", self.pid);
        let tasks = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
        let mut times = Vec::new();
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread that ended since the listing has no more time to count.
            if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat"))
                && let Some(ns) = parse_schedstat(&text)
            {
                times.push((tid, ns));
            }
        }
        if times.is_empty() {
            return Err(format!("no readable schedstat under {dir}"));
        }
        Ok(ThreadTimes(times))
    }

    /// CPU, memory, threads and descriptors now.
    pub fn sample(&self) -> Result<Sample, String> {
        let status = read(&format!("/proc/{}/status", self.pid))?;
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        Ok(Sample {
            cpu: self.cpu()?,
            rss: status_kb(&status, "VmRSS").unwrap_or(0) * 1024,
            hwm: status_kb(&status, "VmHWM").unwrap_or(0) * 1024,
            threads: status_kb(&status, "Threads").unwrap_or(0),
            fds,
        })
    }

    /// Resets `VmHWM` to the current RSS (`echo 5 > /proc/<pid>/clear_refs`), so the next peak is
    /// this scenario's own. False when the kernel refuses; the peak is then since start.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), b"5").is_ok()
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// utime + stime in clock ticks from a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from the last `)`: state is field 3, utime
/// field 14, stime field 15.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Nanoseconds on CPU, the first field of `/proc/<pid>/task/<tid>/schedstat`.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// CPU nanoseconds per thread id at one moment.
#[derive(Clone, Debug, Default)]
pub struct ThreadTimes(Vec<(u32, u64)>);

impl ThreadTimes {
    /// CPU the process spent between `earlier` and this moment. A thread born in between counts
    /// from zero; one that ended in between is missing from both ends' difference, so what it ran
    /// after `earlier` is lost (the runtimes under test keep their threads; idle pool threads that
    /// retire ran nothing).
    pub fn since(&self, earlier: &Self) -> Duration {
        let ns: u64 = self
            .0
            .iter()
            .map(|&(tid, now)| {
                let then = earlier.0.iter().find(|&&(t, _)| t == tid).map_or(0, |&(_, n)| n);
                now.saturating_sub(then)
            })
            .sum();
        Duration::from_nanos(ns)
    }
}

/// The number of a `/proc/<pid>/status` line such as `VmHWM:\t   12345 kB` or `Threads:\t4`.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.split_ascii_whitespace().next()?.parse().ok())?
    })
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (ai-gw (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                        150 37 0 0 20 0 5 0 123456 987654 3000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

    const STATUS: &str = "Name:\tai-gateway\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t  900000 kB\n\
                          VmHWM:\t   20480 kB\nVmRSS:\t   18432 kB\nThreads:\t5\n";

    #[test]
    fn cpu_ticks_are_utime_plus_stime_counted_after_the_command_name() {
        assert_eq!(parse_cpu_ticks(STAT), Some(187));
    }

    #[test]
    fn a_truncated_stat_line_has_no_cpu_ticks() {
        assert_eq!(parse_cpu_ticks("4242 (ai-gateway) S 1 2 3"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn status_lines_give_their_number() {
        assert_eq!(status_kb(STATUS, "VmHWM"), Some(20_480));
        assert_eq!(status_kb(STATUS, "VmRSS"), Some(18_432));
        assert_eq!(status_kb(STATUS, "Threads"), Some(5));
        assert_eq!(status_kb(STATUS, "VmSwap"), None);
    }

    #[test]
    fn thread_times_count_new_threads_from_zero_and_drop_ended_ones() {
        assert_eq!(parse_schedstat("68945819 91395412 167\n"), Some(68_945_819));
        assert_eq!(parse_schedstat(""), None);
        let before = ThreadTimes(vec![(1, 1_000), (2, 5_000), (3, 9_000)]);
        let after = ThreadTimes(vec![(1, 1_500), (2, 5_000), (4, 700)]);
        assert_eq!(after.since(&before), Duration::from_nanos(500 + 700));
    }

    #[test]
    fn this_process_has_thread_times() {
        let proc = Proc::new(std::process::id());
        let before = proc.thread_times().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {}
        let used = proc.thread_times().unwrap().since(&before);
        assert!(used >= Duration::from_millis(10), "{used:?}");
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sample = Proc::new(std::process::id()).sample().unwrap();
        assert!(sample.rss > 0 && sample.hwm >= sample.rss / 2);
        assert!(sample.threads >= 1 && sample.fds >= 1);
    }
}
