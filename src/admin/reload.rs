//! Rebuilding the live configuration at run time: a re-read of the config file (SIGHUP or a
//! change seen by the file watch), the admin API's changes read back from the database (every
//! replica, every `reload.poll_seconds`), and an admin write on this replica.
//!
//! Each path builds a whole new `Config` with the loader the process started with
//! (`config::load`, then `Config::with_overrides`), and swaps it in only when it is valid: an
//! invalid file leaves the running configuration untouched, every problem logged and counted
//! (`gateway_config_reloads_total{result="invalid"}`). Requests hold the `Live` they started with,
//! so a swap never changes a request in flight.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::auth::AuthConfig;
use crate::config::{Config, ConfigError, Overrides, load};
use crate::state::{AppState, FileStamp, Layers, Live};
use crate::store::HistoryError;

/// What started a reload, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadCause {
    /// SIGHUP.
    Signal,
    /// The file watch saw the file change.
    FileChanged,
}

impl ReloadCause {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "sighup",
            Self::FileChanged => "file_changed",
        }
    }
}

/// Re-reads the config file the process started with, validates it (with the admin API's
/// changes over it) and swaps it in; on any problem keeps the running configuration, logs every
/// problem and returns them.
pub async fn reload_file(state: &AppState, cause: ReloadCause) -> Result<(), ConfigError> {
    let mut layers = state.layers.lock().await;
    let sources = layers.base.sources.clone();
    layers.file_stamp = sources.file.as_deref().and_then(file_stamp);
    let built = load(&sources).and_then(|base| {
        let effective = base.with_overrides(&layers.overrides)?;
        Ok((base, effective))
    });
    // `auth:` is part of the reload: a key removed from the file must stop working now, and an
    // `auth:` that cannot be built (an unreadable key file) refuses the whole reload.
    let built = match built {
        Ok((base, effective)) => match AuthConfig::new(&base.settings.auth) {
            Ok(auth) => Ok((base, effective, auth)),
            Err(problem) => Err(ConfigError {
                problems: vec![problem],
            }),
        },
        Err(e) => Err(e),
    };
    match built {
        Ok((base, effective, auth)) => {
            warn_on_restart_only_changes(&layers.base, &base);
            auth.prime(Some(&state.auth.config())).await;
            install(state, effective);
            state.auth.install(auth);
            layers.base = base;
            state.metrics.observe_config_reload(true);
            tracing::info!(cause = cause.as_str(), "configuration reloaded");
            Ok(())
        }
        Err(e) => {
            state.metrics.observe_config_reload(false);
            for problem in &e.problems {
                tracing::error!(cause = cause.as_str(), problem = %problem, "configuration reload refused; keeping the running configuration");
            }
            Err(e)
        }
    }
}

/// Whether the config file differs from the one last read (`false` without a file, or when it
/// cannot be read now: the reload would fail the same way and the old configuration stays).
pub async fn file_changed(state: &AppState) -> bool {
    let layers = state.layers.lock().await;
    let Some(path) = layers.base.sources.file.clone() else {
        return false;
    };
    let known = layers.file_stamp.clone();
    drop(layers);
    match file_stamp(&path) {
        Some(now) => Some(now) != known,
        None => false,
    }
}

/// Length, modification time and SHA-256 of `path`, following symlinks (a Kubernetes ConfigMap
/// swaps a `..data` symlink; the content behind it is what counts).
pub fn file_stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        hash: Sha256::digest(&bytes).into(),
    })
}

/// Reads the admin API's changes from the database and, when they differ from those applied,
/// rebuilds the live configuration. Returns whether it changed anything.
pub async fn sync_overrides(state: &AppState) -> Result<bool, HistoryError> {
    // Read under the lock: rows read before an admin write on this replica and compared after
    // it would look newer than what that write installed, and undo it until the next poll.
    let mut layers = state.layers.lock().await;
    let overrides = Overrides::from_rows(state.store.list_overrides().await?);
    if layers.overrides == overrides {
        return Ok(false);
    }
    match layers.base.with_overrides(&overrides) {
        Ok(effective) => {
            install(state, effective);
            layers.overrides = overrides;
            tracing::info!("admin API changes from the database applied");
            Ok(true)
        }
        Err(e) => {
            // Written by a replica whose file differs from ours (another provider set, say):
            // keep what runs, and say why once per distinct set of rows.
            if layers.rejected.as_ref() != Some(&overrides) {
                for problem in &e.problems {
                    tracing::error!(problem = %problem, "admin API changes in the database are invalid here; not applied");
                }
                layers.rejected = Some(overrides);
            }
            Ok(false)
        }
    }
}

/// Builds a snapshot from `config` (breaker state carried over) and swaps it in.
pub(super) fn install(state: &AppState, config: Config) {
    let current = state.live();
    let ids: Vec<_> = config.providers.iter().map(|p| p.id.clone()).collect();
    let (live, skipped) = Live::build(config, Some(&current), &state.metrics, &state.spend.fetched);
    for e in skipped {
        tracing::warn!("{e}; skipping it");
    }
    state.metrics.add_providers(&ids, &[]);
    state.swap(live);
}

/// Installs `config` (already validated: `base.with_overrides(&overrides)`) and records the
/// overrides it was built from; the caller holds the `Layers` lock.
pub(super) fn apply(state: &AppState, layers: &mut Layers, overrides: Overrides, config: Config) {
    install(state, config);
    layers.overrides = overrides;
}

/// Settings read once at start: a reload changes them in memory but not in effect.
fn warn_on_restart_only_changes(old: &Config, new: &Config) {
    let (o, n) = (&old.settings, &new.settings);
    for (key, changed) in [
        ("listen", o.listen != n.listen),
        ("database_url", o.database_url != n.database_url),
        ("redis_url", redis(o) != redis(n)),
        ("redis_prefix", o.redis_prefix != n.redis_prefix),
        ("history", format!("{:?}", o.history) != format!("{:?}", n.history)),
        ("limits", format!("{:?}", o.limits) != format!("{:?}", n.limits)),
        ("auth.refresh_seconds", o.auth.refresh_seconds != n.auth.refresh_seconds),
    ] {
        if changed {
            tracing::warn!(key, "changed in the config file; it takes effect at the next restart");
        }
    }
}

fn redis(c: &crate::config::Settings) -> Option<&str> {
    use secrecy::ExposeSecret;
    c.redis_url.as_ref().map(ExposeSecret::expose_secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_rewrite_with_the_same_length_changes_the_stamp() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"routes: []\n").unwrap();
        let before = file_stamp(file.path()).unwrap();
        std::fs::write(file.path(), b"users:  []\n").unwrap();
        let after = file_stamp(file.path()).unwrap();
        assert_eq!(before.len, after.len);
        assert_ne!(before, after);
        assert!(file_stamp(Path::new("/nonexistent/gateway.yaml")).is_none());
    }
}
