//! The terminal side of [`crate::ops::Ui`]: status lines through the
//! printer, questions through dialoguer, only when someone can answer.

use std::io::IsTerminal;

use crate::ops::{Progress, Ui};

use super::printer::{BarProgress, Printer};

pub struct CliUi<'a> {
    printer: &'a Printer,
    bar: BarProgress,
}

impl<'a> CliUi<'a> {
    pub fn new(printer: &'a Printer) -> CliUi<'a> {
        CliUi {
            printer,
            bar: printer.progress(),
        }
    }
}

/// Whether a question can be asked: stdin and stderr are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

impl Ui for CliUi<'_> {
    fn status(&self, verb: &str, message: &str) {
        self.printer.status(verb, message);
    }

    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }

    fn confirm(&self, question: &str) -> bool {
        if !interactive() {
            return false;
        }
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .unwrap_or(false)
    }

    fn progress(&self) -> &dyn Progress {
        &self.bar
    }
}
