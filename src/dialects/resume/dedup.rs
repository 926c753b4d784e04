//! The start of a continuation that the client already has. The rule:
//!
//! - After an instruction to continue, a model often starts over (from the beginning of the
//!   answer, or of its last sentence). When the continuation begins with a suffix of the text
//!   already sent — at least `MIN_REPEAT` bytes of it, or all of it when less was sent — that
//!   suffix (the longest such) is removed. A genuine continuation that begins by repeating that
//!   much of the end of what came before is not something text does.
//! - After a prefill the model writes on from the prefill's last character. Anthropic's prefill
//!   goes without the text's trailing whitespace, so the continuation tends to begin with it
//!   again: the part of its start that matches that whitespace is removed.
//!
//! Until the continuation's text can no longer turn out to be a repeat, it is held back (never
//! longer than the text already sent); then what is new goes on at once.

/// The least repeated text removed when less than all of what was sent repeats.
pub const MIN_REPEAT: usize = 16;

/// Removes what a continuation repeats of the text already sent.
#[derive(Debug)]
pub struct Dedup {
    mode: Mode,
    pending: String,
}

#[derive(Debug)]
enum Mode {
    /// Text goes on as it comes.
    Off,
    /// Removes a start that matches this whitespace (left out of the prefill).
    Whitespace(String),
    /// Removes a start that repeats a suffix of `sent`; `starts` are the offsets in `sent` where
    /// the pending text could still be a repeat.
    Repeat { sent: String, starts: Option<Vec<usize>> },
}

impl Dedup {
    /// Passes text on unchanged.
    pub fn off() -> Self {
        Self {
            mode: Mode::Off,
            pending: String::new(),
        }
    }

    /// After a prefill that left out `whitespace` at the end of the text.
    pub fn whitespace(whitespace: &str) -> Self {
        let mode = if whitespace.is_empty() {
            Mode::Off
        } else {
            Mode::Whitespace(whitespace.to_owned())
        };
        Self {
            mode,
            pending: String::new(),
        }
    }

    /// After an instruction to continue `sent`.
    pub fn repeat(sent: &str) -> Self {
        let mode = if sent.is_empty() {
            Mode::Off
        } else {
            Mode::Repeat {
                sent: sent.to_owned(),
                starts: None,
            }
        };
        Self {
            mode,
            pending: String::new(),
        }
    }

    /// Whether text is being held back.
    pub fn holding(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next piece of the continuation's text; returns what goes to the client now.
    pub fn feed(&mut self, text: &str) -> String {
        if matches!(self.mode, Mode::Off) {
            return text.to_owned();
        }
        self.pending.push_str(text);
        if self.undecided() {
            return String::new();
        }
        self.decide()
    }

    /// The continuation's text has ended (or something other than text came): what was held back
    /// goes, without its repeat.
    pub fn flush(&mut self) -> String {
        if matches!(self.mode, Mode::Off) {
            return std::mem::take(&mut self.pending);
        }
        self.decide()
    }

    /// Whether the pending text could still grow into a repeat (or into the whitespace).
    fn undecided(&mut self) -> bool {
        let pending = self.pending.as_bytes();
        match &mut self.mode {
            Mode::Off => false,
            Mode::Whitespace(ws) => ws.as_bytes().starts_with(pending) && pending.len() < ws.len(),
            Mode::Repeat { sent, starts } => {
                let sent = sent.as_bytes();
                let kept: Vec<usize> = match starts.take() {
                    None => (0..sent.len()).filter(|&i| matches_at(sent, i, pending)).collect(),
                    Some(list) => list.into_iter().filter(|&i| matches_at(sent, i, pending)).collect(),
                };
                let open = kept.iter().any(|&i| sent.len() - i > pending.len());
                *starts = Some(kept);
                open
            }
        }
    }

    fn decide(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        let cut = match std::mem::replace(&mut self.mode, Mode::Off) {
            Mode::Off => 0,
            Mode::Whitespace(ws) => common_prefix(ws.as_bytes(), pending.as_bytes()),
            Mode::Repeat { sent, starts } => {
                let sent = sent.as_bytes();
                let least = MIN_REPEAT.min(sent.len());
                let starts = starts.unwrap_or_else(|| (0..sent.len()).collect());
                starts
                    .into_iter()
                    .filter(|&i| sent.len() - i >= least && pending.as_bytes().starts_with(&sent[i..]))
                    .map(|i| sent.len() - i)
                    .max()
                    .unwrap_or(0)
            }
        };
        // Both cuts end on a character boundary: a whole suffix of valid UTF-8, or ASCII whitespace
        // matched byte for byte; a boundary check keeps a slip from panicking.
        if pending.is_char_boundary(cut) {
            pending[cut..].to_owned()
        } else {
            pending
        }
    }
}

/// Whether `pending` could be a repeat starting at `sent[i..]`: one is a prefix of the other.
fn matches_at(sent: &[u8], i: usize, pending: &[u8]) -> bool {
    let rest = &sent[i..];
    if rest.len() >= pending.len() {
        rest.starts_with(pending)
    } else {
        pending.starts_with(rest)
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut d: Dedup, pieces: &[&str]) -> String {
        let mut out: String = pieces.iter().map(|p| d.feed(p)).collect();
        out.push_str(&d.flush());
        out
    }

    const SENT: &str = "The quick brown fox jumps over the lazy dog. Then it went home";

    #[test]
    fn a_restart_from_the_beginning_is_removed() {
        let pieces = [
            "The quick ",
            "brown fox jumps over the lazy dog.",
            " Then it went home",
            " to sleep.",
        ];
        assert_eq!(run(Dedup::repeat(SENT), &pieces), " to sleep.");
    }

    #[test]
    fn a_restart_from_the_last_sentence_is_removed() {
        let out = run(Dedup::repeat(SENT), &["The", "n it ", "went home", " to sleep", "."]);
        assert_eq!(out, " to sleep.");
    }

    #[test]
    fn a_genuine_continuation_passes_and_is_held_only_while_it_could_be_a_repeat() {
        let mut d = Dedup::repeat(SENT);
        // "The" occurs in the text: it could be a restart, so it waits.
        assert_eq!(d.feed(" The"), "");
        assert!(d.holding());
        // " The cat" occurs nowhere: out it goes, whole.
        assert_eq!(d.feed(" cat"), " The cat");
        assert_eq!(d.feed(" naps."), " naps.");
        assert_eq!(d.flush(), "");
    }

    #[test]
    fn a_short_overlap_is_not_a_repeat() {
        // " home" ends the text and starts the continuation, but five bytes are no evidence.
        let out = run(Dedup::repeat(SENT), &[" home", " again."]);
        assert_eq!(out, " home again.");
    }

    #[test]
    fn all_of_a_short_text_repeated_is_removed() {
        assert_eq!(run(Dedup::repeat("Hi"), &["Hi", " there"]), " there");
        assert_eq!(run(Dedup::repeat("Hi"), &["Hello"]), "Hello");
    }

    #[test]
    fn a_continuation_that_ends_inside_the_repeat_sends_nothing_again() {
        assert_eq!(run(Dedup::repeat(SENT), &["over the lazy dog. Then it went home"]), "");
    }

    #[test]
    fn whitespace_left_out_of_a_prefill_is_not_doubled() {
        assert_eq!(run(Dedup::whitespace(" "), &[" world"]), "world");
        assert_eq!(run(Dedup::whitespace("\n\n"), &["\n", "\nNext"]), "Next");
        assert_eq!(run(Dedup::whitespace("\n\n"), &["Next"]), "Next");
        assert_eq!(run(Dedup::whitespace(""), &[" x"]), " x");
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let sent = "Größe: 12 Ä, dann Überschrift «Ende»";
        let out = run(Dedup::repeat(sent), &["Überschrift «Ende» und mehr"]);
        assert_eq!(out, " und mehr");
    }
}
