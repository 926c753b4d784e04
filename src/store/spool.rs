//! The history spool (`history.spool_path`): every row is appended to a local JSON-lines file
//! before it is queued, so a crash of the process (SIGKILL, OOM kill) loses no admitted row, and a
//! restart replays what the file holds.
//!
//! A line is one write to the page cache, never synced: the kernel keeps it when the process dies,
//! not when the machine loses power. Two files alternate (`<path>` and `<path>.1`): rows go to the
//! current one, the writer confirms each row once it is in the database, and a file whose rows are
//! all confirmed is truncated once the other has become current. A streamed request adds an `open`
//! line when it starts, carrying the row it would leave if the gateway stopped then (status
//! `error`, interrupted); its real row supersedes it (same request id). Replay re-inserts every
//! row the files hold: ids were fixed when the line was written and inserts skip ids the database
//! has, so a row already written is not written twice.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Charge;
use super::row::Row;

/// A file past this size is rotated even while the other still has unconfirmed rows pending.
const ROTATE_BYTES: u64 = 4 << 20;
/// Open streams rewritten into the new file at an idle rotation: past this many, an idle file is
/// kept until it reaches `ROTATE_BYTES` (replaying written rows is harmless, rewriting every open
/// stream after each batch is not free).
const IDLE_ROTATE_OPEN_MAX: usize = 256;

/// Why a row left the gateway before its end: what an `open` line becomes at replay.
pub const INTERRUPTED: &str = "interrupted: stream open when the gateway stopped";

/// A row's ledger charges as spooled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct SpooledCharge {
    scope: String,
    name: String,
    period: String,
    period_start: i64,
}

/// One line of the file, as written: borrowed, so the hot path does not copy the row.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LineRef<'a> {
    Row {
        row: &'a Row,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        charges: Vec<SpooledCharge>,
    },
    Open {
        row: &'a Row,
    },
}

/// One line of the file, as read back.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    /// A recorded row, with its cost and budgets when it has any.
    Row {
        row: Row,
        #[serde(default)]
        cost_usd: Option<f64>,
        #[serde(default)]
        charges: Vec<SpooledCharge>,
    },
    /// A stream that started: the row it leaves when nothing supersedes it.
    Open { row: Row },
}

/// A row to write: from the files at start, or recorded since.
#[derive(Debug)]
pub(super) struct Spooled {
    pub row: Row,
    /// Cost and budgets for the spend ledger.
    pub charges: Option<(f64, Vec<Charge>)>,
    /// The file it is in, for `Spool::confirm`.
    pub file: usize,
}

#[derive(Debug)]
struct State {
    files: [File; 2],
    current: usize,
    /// Rows written to each file and not yet confirmed.
    pending: [u64; 2],
    /// Row lines in each file since its last truncation.
    rows: [u64; 2],
    bytes: [u64; 2],
    /// Open streams' lines, by request id, rewritten into each new current file.
    open: HashMap<String, Vec<u8>>,
    /// Write errors so far (logged at powers of two).
    errors: u64,
}

#[expect(
    clippy::disallowed_types,
    reason = "held for one buffered write, never across an await"
)]
type StateLock = std::sync::Mutex<State>;

/// The spool's files; shared by the sink (appends) and the writer (confirms).
#[derive(Debug)]
pub(super) struct Spool {
    state: StateLock,
    paths: [PathBuf; 2],
}

impl Spool {
    /// Opens (or creates) the files at `path` and returns what they hold to replay: every row,
    /// and an interrupted row for each stream opened and never superseded. A torn last line (the
    /// process died mid-write) is skipped and cut off, so the next line starts clean.
    pub fn open(path: &Path) -> std::io::Result<(Self, Vec<Spooled>)> {
        let mut second = path.as_os_str().to_owned();
        second.push(".1");
        let paths = [path.to_owned(), PathBuf::from(second)];
        let mut files = Vec::with_capacity(2);
        let mut lines: Vec<(usize, Line)> = Vec::new();
        let mut bytes = [0u64; 2];
        for (i, p) in paths.iter().enumerate() {
            let mut file = OpenOptions::new().create(true).read(true).append(true).open(p)?;
            let mut text = Vec::new();
            file.read_to_end(&mut text)?;
            let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |n| n + 1);
            if whole < text.len() {
                tracing::warn!(path = %p.display(), bytes = text.len() - whole, "history spool: torn last line skipped");
                file.set_len(whole as u64)?;
            }
            bytes[i] = whole as u64;
            for raw in text[..whole].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<Line>(raw) {
                    Ok(line) => lines.push((i, line)),
                    Err(e) => tracing::warn!(path = %p.display(), error = %e, "history spool: unreadable line skipped"),
                }
            }
            files.push(file);
        }
        let replay = replay(lines);
        let mut pending = [0u64; 2];
        for s in &replay {
            pending[s.file] += 1;
        }
        let [a, b]: [File; 2] = files.try_into().map_err(|_| std::io::Error::other("two spool files"))?;
        let mut state = State {
            files: [a, b],
            current: 0,
            pending,
            rows: pending,
            bytes,
            open: HashMap::new(),
            errors: 0,
        };
        // Nothing to replay: start from empty files.
        for i in 0..2 {
            if state.pending[i] == 0 && state.bytes[i] > 0 {
                state.files[i].set_len(0)?;
                state.bytes[i] = 0;
            }
        }
        if !replay.is_empty() {
            tracing::info!(rows = replay.len(), path = %path.display(), "history spool: replaying rows");
        }
        Ok((
            Self {
                state: StateLock::new(state),
                paths,
            },
            replay,
        ))
    }

    /// Appends a recorded row (superseding its stream's `open` line); returns the file it went to,
    /// or `None` when it could not be written (logged; the row is still queued).
    pub fn append(&self, row: &Row, charges: Option<&(f64, Vec<Charge>)>) -> Option<usize> {
        let line = LineRef::Row {
            row,
            cost_usd: charges.map(|c| c.0),
            charges: charges.map_or_else(Vec::new, |c| c.1.iter().map(spooled_charge).collect()),
        };
        let text = encode(&line)?;
        let mut state = self.state.lock().ok()?;
        state.open.remove(&row.request_id);
        let file = state.current;
        if !state.write(&text, &self.paths) {
            return None;
        }
        state.pending[file] += 1;
        state.rows[file] += 1;
        state.settle(&self.paths);
        Some(file)
    }

    /// Notes a stream that started: `row` is what it leaves if the gateway stops before its end.
    pub fn open_stream(&self, row: Row) {
        let request_id = row.request_id.clone();
        let Some(text) = encode(&LineRef::Open { row: &row }) else {
            return;
        };
        let Ok(mut state) = self.state.lock() else { return };
        if state.write(&text, &self.paths) {
            state.open.insert(request_id, text);
        }
    }

    /// `n` rows of `file` are in the database (or were refused by it): the file may go once all are.
    pub fn confirm(&self, file: usize, n: u64) {
        if n == 0 {
            return;
        }
        let Ok(mut state) = self.state.lock() else { return };
        state.pending[file] = state.pending[file].saturating_sub(n);
        state.settle(&self.paths);
    }
}

impl State {
    /// One `write` of a whole line to the current file.
    fn write(&mut self, text: &[u8], paths: &[PathBuf; 2]) -> bool {
        let current = self.current;
        match self.files[current].write_all(text) {
            Ok(()) => {
                self.bytes[current] += text.len() as u64;
                true
            }
            Err(e) => {
                self.errors += 1;
                if self.errors.is_power_of_two() {
                    tracing::error!(path = %paths[current].display(), error = %e, errors = self.errors, "history spool write failed");
                }
                false
            }
        }
    }

    /// Truncates the other file once its rows are all confirmed, and makes it current when this
    /// one is large, or idle with every row confirmed.
    fn settle(&mut self, paths: &[PathBuf; 2]) {
        let other = 1 - self.current;
        if self.pending[other] == 0 && self.bytes[other] > 0 && !self.truncate(other, paths) {
            return;
        }
        if self.pending[other] != 0 {
            return;
        }
        let idle =
            self.pending[self.current] == 0 && self.rows[self.current] > 0 && self.open.len() <= IDLE_ROTATE_OPEN_MAX;
        if !idle && self.bytes[self.current] < ROTATE_BYTES {
            return;
        }
        let old = self.current;
        self.current = other;
        // Open streams follow to the new file, so truncating the old one loses none.
        let open: Vec<Vec<u8>> = self.open.values().cloned().collect();
        for line in &open {
            self.write(line, paths);
        }
        if self.pending[old] == 0 {
            self.truncate(old, paths);
        }
    }

    fn truncate(&mut self, file: usize, paths: &[PathBuf; 2]) -> bool {
        match self.files[file].set_len(0) {
            Ok(()) => {
                self.bytes[file] = 0;
                self.rows[file] = 0;
                true
            }
            Err(e) => {
                tracing::error!(path = %paths[file].display(), error = %e, "history spool truncate failed");
                false
            }
        }
    }
}

fn encode(line: &LineRef<'_>) -> Option<Vec<u8>> {
    let mut text = serde_json::to_vec(line)
        .map_err(|e| tracing::error!(error = %e, "history spool: row not encodable"))
        .ok()?;
    text.push(b'\n');
    Some(text)
}

fn spooled_charge(c: &Charge) -> SpooledCharge {
    SpooledCharge {
        scope: c.scope.to_owned(),
        name: c.name.clone(),
        period: c.period.to_owned(),
        period_start: c.period_start,
    }
}

/// The charge back, when its scope and period are ones this build knows.
fn charge(c: SpooledCharge) -> Option<Charge> {
    let scope = ["key", "team", "user", "tag", "session", "provider", "gateway"]
        .into_iter()
        .find(|s| *s == c.scope)?;
    let period = ["daily", "weekly", "monthly", "total"]
        .into_iter()
        .find(|p| *p == c.period)?;
    Some(Charge {
        scope,
        name: c.name,
        period,
        period_start: c.period_start,
    })
}

/// The rows to replay from the files' lines: each row id once, and each `open` line no row of the
/// same request id supersedes as its interrupted row.
fn replay(lines: Vec<(usize, Line)>) -> Vec<Spooled> {
    let recorded: HashSet<String> = lines
        .iter()
        .filter_map(|(_, l)| match l {
            Line::Row { row, .. } => Some(row.request_id.clone()),
            Line::Open { .. } => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (file, line) in lines {
        let (row, charges) = match line {
            Line::Row { row, cost_usd, charges } => {
                let charges = cost_usd.map(|cost| (cost, charges.into_iter().filter_map(charge).collect()));
                (row, charges)
            }
            Line::Open { row } if !recorded.contains(&row.request_id) => (row, None),
            Line::Open { .. } => continue,
        };
        if seen.insert(row.id.clone()) {
            out.push(Spooled { row, charges, file });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RequestStatus, test_record};

    fn row(request_id: &str) -> Row {
        Row::from(&test_record(request_id, "m"))
    }

    fn open_row(request_id: &str) -> Row {
        let mut r = test_record(request_id, "m");
        r.stream = true;
        r.status = RequestStatus::Error;
        r.error_message = Some(INTERRUPTED.into());
        Row::from(&r)
    }

    fn ids(replay: &[Spooled]) -> Vec<&str> {
        replay.iter().map(|s| s.row.request_id.as_str()).collect()
    }

    #[test]
    fn rows_survive_a_reopen_with_their_ids_and_charges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.spool");
        let (spool, replay) = Spool::open(&path).unwrap();
        assert!(replay.is_empty());
        let a = row("a");
        let charge = Charge {
            scope: "team",
            name: "ml".into(),
            period: "daily",
            period_start: 5,
        };
        spool.append(&a, Some(&(0.5, vec![charge.clone()]))).unwrap();
        spool.append(&row("b"), None).unwrap();
        drop(spool);

        let (_spool, replay) = Spool::open(&path).unwrap();
        assert_eq!(ids(&replay), ["a", "b"]);
        assert_eq!(replay[0].row.id, a.id, "the id is fixed when the row is spooled");
        assert_eq!(replay[0].charges, Some((0.5, vec![charge])));
        assert_eq!(replay[1].charges, None);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_line_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.spool");
        let (spool, _) = Spool::open(&path).unwrap();
        spool.append(&row("a"), None).unwrap();
        drop(spool);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"kind":"row","row":{"id":"tor"#).unwrap();
        drop(f);

        let (spool, replay) = Spool::open(&path).unwrap();
        assert_eq!(ids(&replay), ["a"]);
        spool.append(&row("c"), None).unwrap();
        drop(spool);
        let (_spool, replay) = Spool::open(&path).unwrap();
        assert_eq!(ids(&replay), ["a", "c"]);
    }

    #[test]
    fn an_open_stream_without_its_row_is_replayed_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.spool");
        let (spool, _) = Spool::open(&path).unwrap();
        spool.open_stream(open_row("done"));
        spool.open_stream(open_row("cut"));
        spool.append(&row("done"), None).unwrap();
        drop(spool);

        let (_spool, replay) = Spool::open(&path).unwrap();
        assert_eq!(ids(&replay), ["cut", "done"]);
        assert_eq!(replay[0].row.status, "error");
        assert_eq!(replay[0].row.error_message.as_deref(), Some(INTERRUPTED));
        assert_eq!(replay[1].row.status, "success");
    }

    #[test]
    fn confirmed_rows_are_truncated_and_open_streams_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.spool");
        let (spool, _) = Spool::open(&path).unwrap();
        spool.open_stream(open_row("long"));
        let first = spool.append(&row("a"), None).unwrap();
        let second = spool.append(&row("b"), None).unwrap();
        assert_eq!(first, second);
        spool.confirm(first, 2);
        let third = spool.append(&row("c"), None).unwrap();
        assert_ne!(third, first, "an idle file rotates");
        drop(spool);

        let (_spool, replay) = Spool::open(&path).unwrap();
        assert_eq!(
            ids(&replay),
            ["long", "c"],
            "written rows are gone, the open stream is not"
        );
    }

    #[test]
    fn a_replayed_file_is_kept_until_its_rows_are_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.spool");
        let (spool, _) = Spool::open(&path).unwrap();
        spool.append(&row("a"), None).unwrap();
        drop(spool);

        let (spool, replay) = Spool::open(&path).unwrap();
        spool.append(&row("b"), None).unwrap();
        drop(spool);
        let (spool, again) = Spool::open(&path).unwrap();
        assert_eq!(ids(&again), ["a", "b"], "a crash during replay replays again");
        assert_eq!(again[0].row.id, replay[0].row.id);
        spool.confirm(again[0].file, 2);
        drop(spool);
        let (_spool, last) = Spool::open(&path).unwrap();
        assert!(last.is_empty(), "{:?}", ids(&last));
    }
}
