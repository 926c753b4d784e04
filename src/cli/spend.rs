//! `spend`, `teams` and `budgets`: the spend report and the spend settings through the admin API
//! (`/api/v1/spend`, `/api/v1/teams`, `/api/v1/budgets`), printed as tables or JSON.

use ai_gateway::config::BudgetConfig;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::admin::{print_rows, text};
use super::remote::{Gateway, encode};
use super::{Outcome, say};

/// `spend`: what the history says was spent.
#[derive(Args)]
pub struct SpendArgs {
    /// key, team, user, tag, model, provider or day.
    #[arg(long, default_value = "model")]
    group_by: String,
    /// From this RFC 3339 time or YYYY-MM-DD day (default: the first of this month, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Up to this RFC 3339 time or the end of this YYYY-MM-DD day (default: now).
    #[arg(long)]
    until: Option<String>,
    /// Print the gateway's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

/// `teams ...`.
#[derive(Subcommand)]
pub enum TeamsAction {
    /// Every team, and where it comes from (config or api).
    List,
    /// Create or replace a team (every replica); options left out are unset.
    Set {
        /// The team's name.
        name: String,
        /// Requests per minute for the whole team.
        #[arg(long)]
        rpm: Option<u32>,
        /// Tokens per minute for the whole team.
        #[arg(long)]
        tpm: Option<u64>,
        /// Comma-separated models (`*` patterns) the team's keys may use (default: any).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// The priority of the team's keys that set none: high, normal or low.
        #[arg(long)]
        priority: Option<String>,
    },
    /// Delete a team (refused while a budget names it).
    Delete {
        /// The team's name.
        name: String,
    },
}

/// `budgets ...`.
#[derive(Subcommand)]
pub enum BudgetsAction {
    /// Every budget with its limit (and what its period has spent, when the gateway knows).
    List,
    /// Create or replace a budget (every replica); its id is scope:name:period.
    Set {
        /// key, team, user, tag, session, provider or gateway.
        #[arg(long)]
        scope: String,
        /// The key, team, user, tag, session or provider (default: each one has its own budget).
        #[arg(long)]
        name: Option<String>,
        /// USD per period.
        #[arg(long)]
        limit_usd: f64,
        /// daily, weekly, monthly or total.
        #[arg(long)]
        period: String,
        /// IANA time zone of the period's calendar (default: UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// Comma-separated fractions of the limit that send a budget.threshold webhook event.
        #[arg(long, value_delimiter = ',')]
        alert_at: Vec<f64>,
    },
    /// Delete a budget by id (`team:research:monthly`).
    Delete {
        /// The budget's id.
        id: String,
    },
}

/// `spend`: `GET /api/v1/spend`.
pub async fn spend(gw: &Gateway, args: SpendArgs) -> Result<Outcome, String> {
    let mut query = vec![format!("group_by={}", encode(&args.group_by))];
    for (name, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            query.push(format!("{name}={}", encode(v)));
        }
    }
    let report: Value = gw
        .send_json(Method::GET, &format!("/api/v1/spend?{}", query.join("&")), None)
        .await?;
    if args.json {
        say(&serde_json::to_string_pretty(&report).unwrap_or_default());
        return Ok(Outcome::Done);
    }
    say(&format!(
        "spend from {} to {}, by {}",
        text(&report["since"]),
        text(&report["until"]),
        args.group_by
    ));
    let mut rows = vec![
        [
            args.group_by.to_uppercase().as_str(),
            "COST_USD",
            "REQUESTS",
            "INPUT_TOKENS",
            "OUTPUT_TOKENS",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for g in report["groups"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&g["group"]),
            usd(&g["cost_usd"]),
            text(&g["requests"]),
            text(&g["input_tokens"]),
            text(&g["output_tokens"]),
        ]);
    }
    print_rows(&rows);
    say(&format!("total: {} USD", usd(&report["total_usd"])));
    Ok(Outcome::Done)
}

/// `teams ...`.
pub async fn teams(gw: &Gateway, action: TeamsAction) -> Result<Outcome, String> {
    match action {
        TeamsAction::List => {
            let list: Value = gw.send_json(Method::GET, "/api/v1/teams", None).await?;
            let mut rows = vec![
                ["NAME", "SOURCE", "RPM", "TPM", "MODELS", "PRIORITY"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for t in list["data"].as_array().into_iter().flatten() {
                let item = &t["item"];
                let models = match item["models"].as_array() {
                    Some(models) => models.iter().map(text).collect::<Vec<_>>().join(", "),
                    None => "any".to_owned(),
                };
                rows.push(vec![
                    text(&t["name"]),
                    text(&t["source"]),
                    text(&item["rpm"]),
                    text(&item["tpm"]),
                    models,
                    text(&item["priority"]),
                ]);
            }
            print_rows(&rows);
        }
        TeamsAction::Set {
            name,
            rpm,
            tpm,
            models,
            priority,
        } => {
            let mut body = json!({});
            for (key, value) in [
                ("rpm", rpm.map(|v| json!(v))),
                ("tpm", tpm.map(|v| json!(v))),
                ("models", models.map(|v| json!(v))),
                ("priority", priority.map(|v| json!(v))),
            ] {
                if let Some(value) = value {
                    body[key] = value;
                }
            }
            let path = format!("/api/v1/teams/{}", encode(&name));
            let team: Value = gw.send_json(Method::PUT, &path, Some(&body)).await?;
            say(&format!(
                "team {} set (priority {}); every replica applies it within a few seconds",
                text(&team["name"]),
                text(&team["item"]["priority"])
            ));
        }
        TeamsAction::Delete { name } => {
            let path = format!("/api/v1/teams/{}", encode(&name));
            gw.send_no_content(Method::DELETE, &path).await?;
            say(&format!(
                "deleted team {name}; every replica applies it within a few seconds"
            ));
        }
    }
    Ok(Outcome::Done)
}

/// `budgets ...`.
pub async fn budgets(gw: &Gateway, action: BudgetsAction) -> Result<Outcome, String> {
    match action {
        BudgetsAction::List => {
            let list: Value = gw.send_json(Method::GET, "/api/v1/budgets", None).await?;
            let mut rows = vec![
                [
                    "ID",
                    "SOURCE",
                    "LIMIT_USD",
                    "TIMEZONE",
                    "ALERT_AT",
                    "SPENT_USD",
                    "REMAINING_USD",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            for b in list["data"].as_array().into_iter().flatten() {
                let item = &b["item"];
                let alerts: Vec<String> = item["alert_at"].as_array().into_iter().flatten().map(text).collect();
                rows.push(vec![
                    text(&b["name"]),
                    text(&b["source"]),
                    usd(&item["limit_usd"]),
                    item["timezone"].as_str().unwrap_or("UTC").to_owned(),
                    if alerts.is_empty() {
                        "-".to_owned()
                    } else {
                        alerts.join(", ")
                    },
                    usd(&b["status"]["spent_usd"]),
                    usd(&b["status"]["remaining_usd"]),
                ]);
            }
            print_rows(&rows);
        }
        BudgetsAction::Set {
            scope,
            name,
            limit_usd,
            period,
            timezone,
            alert_at,
        } => {
            let body = json!({
                "scope": scope, "name": name, "limit_usd": limit_usd, "period": period,
                "timezone": timezone, "alert_at": alert_at,
            });
            // The id names the budget in the URL; the gateway checks everything else.
            let budget: BudgetConfig =
                serde_json::from_value(body.clone()).map_err(|e| format!("not a budget: {e}"))?;
            let path = format!("/api/v1/budgets/{}", encode(&budget.id()));
            let view: Value = gw.send_json(Method::PUT, &path, Some(&body)).await?;
            say(&format!(
                "budget {} set: {} USD {}; every replica applies it within a few seconds",
                text(&view["name"]),
                usd(&view["item"]["limit_usd"]),
                text(&view["item"]["period"])
            ));
        }
        BudgetsAction::Delete { id } => {
            let path = format!("/api/v1/budgets/{}", encode(&id));
            gw.send_no_content(Method::DELETE, &path).await?;
            say(&format!(
                "deleted budget {id}; every replica applies it within a few seconds"
            ));
        }
    }
    Ok(Outcome::Done)
}

/// A USD amount to six decimals (a cheap request costs fractions of a cent); `-` when unknown.
fn usd(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |n| format!("{n:.6}"))
}
