//! `openfc logs SERVICE/FUNCTION` over the HTTP API (GetFunctionLogs: the last lines of the function's log on
//! the node that answers). `--follow` polls and prints the lines after the ones it has already shown.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Call, Client, seg};
use super::output::{self, Output};
use super::{CliError, ConnArgs, split_target};

/// The window `--follow` reads at every poll (GetFunctionLogs' largest `limit` is 10000).
const FOLLOW_WINDOW: usize = 1000;
const POLL: Duration = Duration::from_millis(500);
const MAX_LIMIT: usize = 10_000;

pub async fn logs(conn: ConnArgs, target: &str, follow: bool, lines: usize, out: Output) -> Result<(), CliError> {
    let (service, function) = split_target(target)?;
    if !(1..=MAX_LIMIT).contains(&lines) {
        return Err(CliError::Usage(format!("--lines must be 1 to {MAX_LIMIT} over the HTTP API, actual: {lines}")));
    }
    let client = Client::new(&conn)?;
    let path = format!("/services/{}/functions/{}/logs", seg(service), seg(function));
    // Following reads a wider window than it prints first, to find where the next read continues it.
    let window = if follow { FOLLOW_WINDOW.max(lines) } else { lines };
    let mut seen = fetch(&client, &path, window).await?;
    let first = &seen[seen.len().saturating_sub(lines)..];
    match (out, follow) {
        (Output::Json, false) => output::json(&json!({ "lines": first })),
        _ => print_lines(first, out),
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(POLL).await;
        let now = fetch(&client, &path, window).await?;
        print_lines(after_overlap(&seen, &now), out);
        seen = now;
    }
}

async fn fetch(client: &Client, path: &str, limit: usize) -> Result<Vec<String>, CliError> {
    let mut call = Call::new(Method::GET, path.to_owned());
    call.query.push(("limit", limit.to_string()));
    let answer = client.json(call).await?;
    Ok(answer["lines"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default())
}

/// Table: the lines as they are; JSON (with `--follow`): one JSON string a line.
fn print_lines(lines: &[String], out: Output) {
    let mut text = String::new();
    for line in lines {
        match out {
            Output::Table => text.push_str(line),
            Output::Json => text.push_str(&Value::from(line.as_str()).to_string()),
        }
        text.push('\n');
    }
    if !text.is_empty() {
        output::stdout(&text);
    }
}

/// The lines of `now` that come after what `before` showed. Both are tails of one growing log, so `now`
/// starts inside `before` (the longest end of `before` that `now` begins with) unless more lines than the
/// window were written in between — then all of `now` is new. Log lines carry their time and instance, so
/// two equal lines in a row are rare; should they meet the overlap, fewer lines are printed, never twice.
fn after_overlap<'a>(before: &[String], now: &'a [String]) -> &'a [String] {
    for start in 0..before.len() {
        let tail = &before[start..];
        if tail.len() <= now.len() && now[..tail.len()] == *tail {
            return &now[tail.len()..];
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn follow_prints_only_the_lines_after_the_overlap() {
        assert_eq!(after_overlap(&v(&["a", "b", "c"]), &v(&["b", "c", "d", "e"])), v(&["d", "e"]));
        assert_eq!(after_overlap(&v(&["a", "b"]), &v(&["a", "b"])), Vec::<String>::new());
        assert_eq!(after_overlap(&v(&[]), &v(&["x"])), v(&["x"]));
        // More new lines than the window: nothing in common, all are new.
        assert_eq!(after_overlap(&v(&["a", "b"]), &v(&["c", "d"])), v(&["c", "d"]));
        // The window moved on by the whole of `before` but one line.
        assert_eq!(after_overlap(&v(&["a", "b", "c"]), &v(&["c", "d"])), v(&["d"]));
    }
}
