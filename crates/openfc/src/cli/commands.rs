//! `openfc services ls|delete`, `openfc functions ls|get|delete` and `openfc invoke`.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Call, Client, seg};
use super::output::{self, FUNCTION_COLUMNS, Output, SERVICE_COLUMNS};
use super::{CliError, FunctionsAction, FunctionsArgs, InvokeArgs, ServicesAction, ServicesArgs, split_target};

pub async fn services(args: ServicesArgs) -> Result<(), CliError> {
    let client = Client::new(&args.conn)?;
    match args.action {
        ServicesAction::Ls { prefix, page, output } => {
            let items = list_all(&client, "/services".into(), "services", prefix, page.page_size).await?;
            print_listing("services", items, SERVICE_COLUMNS, output.output);
        }
        ServicesAction::Delete { service } => {
            client.empty(Call::new(Method::DELETE, format!("/services/{}", seg(&service)))).await?;
            output::stdout(&format!("deleted service {service}\n"));
        }
    }
    Ok(())
}

pub async fn functions(args: FunctionsArgs) -> Result<(), CliError> {
    let client = Client::new(&args.conn)?;
    match args.action {
        FunctionsAction::Ls { service, prefix, qualifier, page, output } => {
            let path = format!("{}/functions", service_path(&service, qualifier.as_deref()));
            let items = list_all(&client, path, "functions", prefix, page.page_size).await?;
            print_listing("functions", items, FUNCTION_COLUMNS, output.output);
        }
        FunctionsAction::Get { target, qualifier, output } => {
            let (service, function) = split_target(&target)?;
            let path = format!("{}/functions/{}", service_path(service, qualifier.as_deref()), seg(function));
            let f = client.json(Call::new(Method::GET, path)).await?;
            match output.output {
                Output::Json => output::json(&f),
                Output::Table => output::stdout(&output::details(&f)),
            }
        }
        FunctionsAction::Delete { target } => {
            let (service, function) = split_target(&target)?;
            let path = format!("/services/{}/functions/{}", seg(service), seg(function));
            client.empty(Call::new(Method::DELETE, path)).await?;
            output::stdout(&format!("deleted function {service}/{function}\n"));
        }
    }
    Ok(())
}

/// `/services/{svc}[.{qualifier}]`: the fc2 SDKs' way of naming a version or alias on the 2016-08-15 prefix.
pub(super) fn service_path(service: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("/services/{}.{}", seg(service), seg(q)),
        None => format!("/services/{}", seg(service)),
    }
}

/// Every page of a listing, following `nextToken` until the server stops sending one.
async fn list_all(
    client: &Client,
    path: String,
    key: &str,
    prefix: Option<String>,
    page_size: u32,
) -> Result<Vec<Value>, CliError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut call = Call::new(Method::GET, path.clone());
        call.query.push(("limit", page_size.to_string()));
        if let Some(p) = &prefix {
            call.query.push(("prefix", p.clone()));
        }
        if let Some(t) = &token {
            call.query.push(("nextToken", t.clone()));
        }
        let page = client.json(call).await?;
        match page[key].as_array() {
            Some(list) => items.extend(list.iter().cloned()),
            None if page[key].is_null() => {}
            None => return Err(invalid(format!("'{key}' in the answer is not a list"))),
        }
        let next = page["nextToken"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
        match next {
            None => return Ok(items),
            // A server handing out the same token again would keep us here forever.
            Some(t) if token.as_deref() == Some(t.as_str()) => {
                return Err(invalid(format!("the server answered nextToken '{t}' twice")));
            }
            Some(t) => token = Some(t),
        }
    }
}

fn invalid(message: String) -> CliError {
    CliError::Server { status: 200, code: "InvalidResponse".into(), message, request_id: "-".into() }
}

fn print_listing(key: &str, items: Vec<Value>, columns: &[output::Column], out: Output) {
    match out {
        Output::Json => output::json(&json!({ key: items })),
        Output::Table => output::stdout(&output::table(&items, columns)),
    }
}

/// The event: `--payload`, `--file` (`-` is stdin), or nothing.
fn payload(args: &InvokeArgs) -> Result<Bytes, CliError> {
    if let Some(p) = &args.payload {
        return Ok(Bytes::from(p.clone()));
    }
    let Some(path) = &args.file else { return Ok(Bytes::new()) };
    let mut data = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data)).map(|_| ())
    };
    read.map_err(|e| CliError::Usage(format!("reading the payload from {}: {e}", path.display())))?;
    Ok(Bytes::from(data))
}

pub async fn invoke(args: InvokeArgs) -> Result<(), CliError> {
    let (service, function) = split_target(&args.target)?;
    let body = payload(&args)?;
    let client = Client::new(&args.conn)?;
    let path = format!("{}/functions/{}/invocations", service_path(service, args.qualifier.as_deref()), seg(function));
    let mut call = Call::new(Method::POST, path);
    call.content_type = "application/octet-stream";
    call.body = reqwest::Body::from(body);
    if args.is_async {
        call.headers.push(("x-fc-invocation-type", "Async".into()));
        if let Some(id) = &args.invocation_id {
            call.headers.push(("x-fc-stateful-async-invocation-id", id.clone()));
        }
    }
    if args.tail {
        call.headers.push(("x-fc-log-type", "Tail".into()));
    }
    let answer = client.send(call).await?;
    if !answer.ok() {
        return Err(answer.error());
    }
    if args.is_async {
        // The id `openfc async get` and GetStatefulAsyncInvocation know the invocation by.
        let id = args.invocation_id.clone().unwrap_or_else(|| answer.request_id());
        output::stdout(&format!("{id}\n"));
        return Ok(());
    }
    if args.tail
        && let Some(log) = answer.header("x-fc-log-result")
    {
        match STANDARD.decode(log.trim()) {
            Ok(text) => eprint!("{}", String::from_utf8_lossy(&text)),
            Err(_) => eprintln!("(X-Fc-Log-Result is not base64: {log})"),
        }
    }
    output::bytes(&answer.body);
    match answer.header("x-fc-error-type") {
        Some(error_type) => {
            Err(CliError::Function { error_type: error_type.to_owned(), request_id: answer.request_id() })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_go_in_the_service_segment() {
        assert_eq!(service_path("s", None), "/services/s");
        assert_eq!(service_path("s", Some("prod")), "/services/s.prod");
    }
}
