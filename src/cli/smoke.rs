//! `ai-gateway smoke` (seed 001's route smoke matrix): one small chat request through every named
//! route, `ok` or `failed <reason>` per route, a summary, and exit 1 when any failed.

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::remote::Gateway;
use super::{Outcome, say};

/// `smoke`.
#[derive(Args)]
pub struct SmokeArgs {
    /// Test only this `model` (a route as `<strategy>:<name>`, a bare route name, or any model);
    /// repeat for several. Default: every named route the gateway lists (needs the admin token).
    #[arg(long = "route")]
    routes: Vec<String>,
}

/// Runs the matrix.
pub async fn run(gw: &Gateway, args: SmokeArgs) -> Result<Outcome, String> {
    let models = if args.routes.is_empty() {
        listed_routes(gw).await?
    } else {
        args.routes
    };
    if models.is_empty() {
        say("no named routes are configured; nothing to test");
        return Ok(Outcome::Done);
    }
    let mut failed = 0;
    for model in &models {
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": "smoke"}],
            "max_tokens": 1
        });
        match gw.chat(&body).await {
            Ok(()) => say(&format!("ok      {model}")),
            // Nothing else can pass either: stop with the one clear reason.
            Err(e) if e.starts_with("cannot reach") => return Err(e),
            Err(e) => {
                failed += 1;
                say(&format!("failed  {model}: {e}"));
            }
        }
    }
    say(&format!(
        "{} route(s) against {}: {} ok, {failed} failed",
        models.len(),
        gw.url(),
        models.len() - failed
    ));
    Ok(if failed == 0 { Outcome::Done } else { Outcome::Failed })
}

/// `<strategy>:<name>` for every named route (`GET /api/v1/routes`).
async fn listed_routes(gw: &Gateway) -> Result<Vec<String>, String> {
    let list: Value = gw.send_json(Method::GET, "/api/v1/routes", None).await?;
    Ok(list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "route")
        .filter_map(|r| {
            let name = r["name"].as_str()?;
            let strategy = r["item"]["strategy"].as_str().unwrap_or("priority");
            Some(format!("{strategy}:{name}"))
        })
        .collect())
}
