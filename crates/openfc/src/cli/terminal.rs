//! The local terminal for `openfc exec -t`: raw mode while the session lasts (keys go to the remote terminal
//! as typed, Ctrl-C included) and its size. rustix's termios calls are safe wrappers, as this crate forbids
//! `unsafe`.

use std::io::IsTerminal;

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};

/// Puts standard input in raw mode until dropped; does nothing when standard input is not a terminal.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Self { saved: None };
        }
        let Ok(saved) = tcgetattr(&stdin) else { return Self { saved: None } };
        let mut raw = saved.clone();
        raw.make_raw();
        match tcsetattr(&stdin, OptionalActions::Now, &raw) {
            Ok(()) => Self { saved: Some(saved) },
            Err(_) => Self { saved: None },
        }
    }
}

impl RawMode {
    /// Whether the terminal is raw now (lines then end with `\r\n`).
    pub fn active(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// The terminal's size as (columns, rows), from stdout or else stdin; `None` when neither is a terminal.
pub fn size() -> Option<(u16, u16)> {
    let from = |ws: rustix::termios::Winsize| (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row));
    let out = std::io::stdout();
    if out.is_terminal()
        && let Ok(ws) = tcgetwinsize(&out)
    {
        return from(ws);
    }
    let input = std::io::stdin();
    if input.is_terminal() { tcgetwinsize(&input).ok().and_then(from) } else { None }
}
