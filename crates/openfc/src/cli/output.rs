//! What the commands print: aligned tables for people, the API's JSON for programs. Results go to stdout,
//! everything else (progress, log tails, errors) to stderr, so `openfc ... -o json | jq` sees JSON only.

use std::io::Write;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking as `print!` does.
pub fn stdout(text: &str) {
    bytes(text.as_bytes());
}

/// Raw bytes on stdout (a function's result), as [`stdout`].
pub fn bytes(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(data).and_then(|_| out.flush());
}

/// Pretty JSON and a newline on stdout.
pub fn json(value: &Value) {
    stdout(&format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())));
}

/// One column of a listing: its heading and the item field it shows.
pub struct Column {
    pub heading: &'static str,
    pub field: &'static str,
}

pub const SERVICE_COLUMNS: &[Column] = &[
    Column { heading: "NAME", field: "serviceName" },
    Column { heading: "INTERNET", field: "internetAccess" },
    Column { heading: "LAST MODIFIED", field: "lastModifiedTime" },
    Column { heading: "DESCRIPTION", field: "description" },
];

pub const FUNCTION_COLUMNS: &[Column] = &[
    Column { heading: "NAME", field: "functionName" },
    Column { heading: "RUNTIME", field: "runtime" },
    Column { heading: "HANDLER", field: "handler" },
    Column { heading: "MEMORY MB", field: "memorySize" },
    Column { heading: "TIMEOUT S", field: "timeout" },
    Column { heading: "CODE BYTES", field: "codeSize" },
    Column { heading: "LAST MODIFIED", field: "lastModifiedTime" },
];

/// A field as table text: strings bare, absent/null empty, anything else compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows padded to the widest cell of each column (the last column is not padded).
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(text);
            } else {
                line.push_str(text);
                line.push_str(&" ".repeat(widths[c] - text.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A listing as a table with a heading row.
pub fn table(items: &[Value], columns: &[Column]) -> String {
    let mut rows = vec![columns.iter().map(|c| c.heading.to_owned()).collect::<Vec<_>>()];
    rows.extend(items.iter().map(|item| columns.iter().map(|c| cell(&item[c.field])).collect()));
    aligned(&rows)
}

/// One object as `key  value` lines, nested objects flattened with dotted keys (`environmentVariables.K`).
pub fn details(object: &Value) -> String {
    fn walk(prefix: &str, value: &Value, rows: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, rows);
                }
            }
            Value::Null => {}
            other => rows.push(vec![prefix.to_owned(), cell(other)]),
        }
    }
    let mut rows = Vec::new();
    walk("", object, &mut rows);
    aligned(&rows)
}

/// Bytes for people: `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_show_missing_fields_empty() {
        let items = [
            json!({"serviceName": "a", "internetAccess": true, "lastModifiedTime": "2026-01-01T00:00:00Z"}),
            json!({"serviceName": "longer-name", "description": "d", "internetAccess": false}),
        ];
        assert_eq!(
            table(&items, SERVICE_COLUMNS),
            "NAME         INTERNET  LAST MODIFIED         DESCRIPTION\n\
             a            true      2026-01-01T00:00:00Z\n\
             longer-name  false                           d\n"
        );
        assert_eq!(table(&[], SERVICE_COLUMNS), "NAME  INTERNET  LAST MODIFIED  DESCRIPTION\n");
    }

    #[test]
    fn details_flatten_nested_objects() {
        let f = json!({"functionName": "f", "environmentVariables": {"A": "1"}, "layers": ["x"], "description": null});
        assert_eq!(
            details(&f),
            "environmentVariables.A  1\nfunctionName            f\nlayers                  [\"x\"]\n"
        );
    }

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(100 * 1024 * 1024), "100.0 MiB");
    }
}
