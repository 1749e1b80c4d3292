//! The one way ipkg prints: data on stdout, status on stderr.
//!
//! Status lines read like cargo's: a right-aligned verb and its object
//! (`    Fetching xmr 1.2.3 (bafy…, 12.4 MiB)`). Colour only on a terminal and
//! never when `NO_COLOR` is set; no meaning is carried by colour alone. Progress
//! bars only on a terminal. `--json` turns data into one JSON document.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::Progress;

/// Control characters (C0, DEL, C1) and the Unicode controls that reorder
/// or hide text.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

fn escape_if(text: &str, bad: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(&bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            escape_char(c, &mut out);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Text from outside (a description, a file name, a name from an index)
/// made safe for a terminal: control characters and the Unicode controls
/// that reorder or hide text are shown escaped (`\x1b`, `\n`, `\u{202e}`),
/// so a hostile package cannot move the cursor, rewrite earlier lines, fake a
/// line of output or set the terminal's title. Everything else is unchanged.
pub fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    escape_if(text, unsafe_char)
}

/// [`esc`] for a whole message ipkg composed: the line breaks and tabs ipkg
/// put there stay, every other control character is escaped. The printer
/// applies it to everything it prints, as a last line of defence; text from
/// outside is escaped with [`esc`] where it is interpolated.
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    escape_if(text, |c| c != '\n' && c != '\t' && unsafe_char(c))
}

/// A path from outside, escaped as [`esc`] does.
pub fn esc_path(path: &std::path::Path) -> String {
    esc(&path.to_string_lossy()).into_owned()
}

/// How much to say on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub verbosity: Verbosity,
    pub json: bool,
    color: bool,
    tty: bool,
}

impl Printer {
    pub fn new(verbosity: Verbosity, json: bool) -> Printer {
        let tty = io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer {
            verbosity,
            json,
            color,
            tty,
        }
    }

    /// A status line: `verb` right-aligned in 12 columns, then the message.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        if self.verbosity < Verbosity::Normal {
            return;
        }
        let verb = if self.color {
            format!("\x1b[1;32m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        let _ = writeln!(io::stderr(), "{verb} {}", clean(message.as_ref()));
    }

    /// A plain line on stderr, for text a person reads as a whole (the
    /// command-not-found suggestion), not shown when quiet.
    pub fn message(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            let _ = writeln!(io::stderr(), "{}", clean(message.as_ref()));
        }
    }

    /// A warning on stderr (shown even when quiet).
    pub fn warn(&self, message: impl AsRef<str>) {
        let label = if self.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        let _ = writeln!(io::stderr(), "{label}: {}", clean(message.as_ref()));
    }

    /// A line of data on stdout. A closed pipe is reported so the caller can stop.
    pub fn data(&self, line: impl AsRef<str>) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{}", clean(line.as_ref()))?;
        out.flush()
    }

    /// A JSON document on stdout.
    pub fn json(&self, value: &serde_json::Value) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    }

    /// Progress for a long operation: a bar on a terminal, nothing otherwise.
    pub fn progress(&self) -> BarProgress {
        let bar = if self.tty && self.verbosity >= Verbosity::Normal && !self.json {
            Some(ProgressBar::with_draw_target(
                None,
                ProgressDrawTarget::stderr(),
            ))
        } else {
            None
        };
        BarProgress {
            bar,
            printer: self.clone(),
        }
    }

    /// Print an error and its causes, once, with a hint when there is one.
    pub fn error(&self, err: &dyn std::error::Error, hint: Option<&str>) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{label}: {}", clean(&err.to_string()));
        let mut source = err.source();
        while let Some(cause) = source {
            let _ = writeln!(stderr, "  caused by: {}", clean(&cause.to_string()));
            source = cause.source();
        }
        if let Some(hint) = hint {
            let _ = writeln!(stderr, "  hint: {}", clean(hint));
        }
    }
}

/// [`Progress`] drawn as an indicatif bar.
pub struct BarProgress {
    bar: Option<ProgressBar>,
    printer: Printer,
}

impl Progress for BarProgress {
    fn start(&self, what: &str, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            match total {
                Some(n) => {
                    bar.set_length(n);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {percent:>3}% {bytes_per_sec} ETA {eta} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                None => bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>12.cyan.bold} {spinner} {bytes} {bytes_per_sec} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            }
            // `from gateway http://…`: the verb column stays a verb.
            match what.strip_prefix("from ") {
                Some(source) => {
                    bar.set_prefix("Downloading");
                    bar.set_message(format!("from {source}"));
                }
                None => {
                    bar.set_prefix(what.to_string());
                    bar.set_message("");
                }
            }
            bar.set_position(0);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.printer.warn(message)),
            None => self.printer.warn(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(esc("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(esc("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(esc("l1\nl2\t\r"), "l1\\nl2\\t\\r");
        assert_eq!(esc("\u{9b}31m"), "\\x9b31m");
        assert_eq!(esc("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(esc("\x7f"), "\\x7f");
    }
}
