//! `bench instructions`: instructions the gateway executes per request, counted by callgrind: with
//! the base config (the static key, no budgets), with spend (prices and three budgets on every request), and with traffic
//! management (a key pool and a concurrency cap with its queue, the cap never reached). Instruction
//! counts repeat from run to run on a noisy shared machine, where time does not.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::client::{Conn, Mode, request_with_headers};
use crate::gateway::{API_KEY, BUDGET_TAG, Budgets, Gateway, Setup, models};
use crate::report::progress;
use crate::scenarios::body;

/// What one variant came to.
pub struct Count {
    /// `off`, `spend`, ...
    pub name: String,
    /// Instructions the whole process executed while the measured requests ran, ÷ their number.
    pub per_request: f64,
}

/// Runs `requests` sequential chat completions (after `warmup` unmeasured ones) through a gateway
/// under callgrind, once per variant, and returns the instructions per request of each.
pub async fn run(bin: &Path, setup: &Setup, warmup: usize, requests: usize) -> Result<Vec<Count>, String> {
    let mut counts = Vec::new();
    let variants = [
        ("off", "baseline", Budgets::Off, false),
        ("spend", "budgets on", Budgets::Every, false),
        ("traffic", "traffic on", Budgets::Off, true),
    ];
    for (tag, name, budgets, traffic) in variants {
        let file = setup.dir.join(format!("callgrind.{tag}.out"));
        let variant = Setup {
            budgets,
            traffic,
            wrapper: vec![
                "valgrind".into(),
                "--tool=callgrind".into(),
                "--instr-atstart=no".into(),
                format!("--callgrind-out-file={}", file.display()),
            ],
            ..setup.clone()
        };
        progress(&format!("instructions: {name}: starting the gateway under callgrind"));
        let gateway = Gateway::start(bin, &variant, &format!("callgrind-{tag}")).await?;
        let pid = gateway.proc.pid().to_string();
        let req = request_with_headers(
            gateway.addr,
            "/v1/chat/completions",
            Some(API_KEY),
            &[("x-ai-gateway-tags", BUDGET_TAG), ("x-session-id", "bench-session")],
            &body(models::FAST, false),
        );
        let mut conn = Conn::new(gateway.addr);
        send(&mut conn, &req, warmup).await?;
        control(&["-i", "on", &pid]).await?;
        send(&mut conn, &req, requests).await?;
        control(&["-d", &pid]).await?;
        control(&["-i", "off", &pid]).await?;
        progress(&gateway.stop().await);
        let total = totals(&setup.dir, &file)?;
        if total == 0 {
            return Err(format!("callgrind counted no instructions in {}", file.display()));
        }
        counts.push(Count {
            name: name.into(),
            per_request: total as f64 / requests as f64,
        });
    }
    Ok(counts)
}

async fn send(conn: &mut Conn, req: &[u8], n: usize) -> Result<(), String> {
    for i in 0..n {
        let reply = conn.exchange(req, Mode::Full).await?;
        if reply.status != 200 {
            return Err(format!("request {i} answered {}", reply.status));
        }
    }
    Ok(())
}

async fn control(args: &[&str]) -> Result<(), String> {
    let status = Command::new("callgrind_control")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("callgrind_control: {e} (install valgrind)"))?;
    if status.success() {
        // The dump is written by the gateway's next scheduling turn, not by callgrind_control.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?}: {status}"))
    }
}

/// The instructions of every dump `callgrind_control -d` made of `file` (`<file>.1`, ...), summed;
/// the file written at exit is left out (what ran after the measured window).
fn totals(dir: &Path, file: &Path) -> Result<u64, String> {
    let stem = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let mut total = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(stem) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).map_err(|e| format!("{name}: {e}"))?;
        if !text.lines().any(|l| l == "desc: Trigger: dump") {
            continue;
        }
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_are_summed() {
        let dir = tempfile::tempdir().unwrap();
        let dump = |n: u64| format!("desc: Trigger: dump\nevents: Ir\nsummary: {n}\ntotals: {n}\n");
        std::fs::write(dir.path().join("cg.out.1"), dump(1000)).unwrap();
        std::fs::write(dir.path().join("cg.out.2"), dump(24)).unwrap();
        std::fs::write(
            dir.path().join("cg.out"),
            "desc: Trigger: Program termination\ntotals: 9\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("other"), dump(7)).unwrap();
        assert_eq!(totals(dir.path(), &dir.path().join("cg.out")).unwrap(), 1024);
    }
}
