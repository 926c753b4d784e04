//! `POST /nodes/provision`'s side effects: the SSH key in a mode-0600 file on a memory-backed
//! filesystem (`/dev/shm` when present, else the temp dir), the configured command run with a
//! timeout, the key file deleted whatever happens.
//!
//! The key is never logged, stored or passed in the environment: the command gets its path.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::Mutex;

/// Bytes of output kept for the answer.
const TAIL_BYTES: usize = 4096;

/// One provisioning run.
#[derive(Debug)]
pub struct Provision<'a> {
    /// `nodes.provision_command`.
    pub command: &'a str,
    /// The machine to set up.
    pub host: &'a str,
    /// The SSH private key.
    pub key: &'a SecretString,
    /// The SSH user, if given.
    pub user: Option<&'a str>,
    /// The port the worker will listen on.
    pub port: u16,
    /// The node URL it will have.
    pub url: &'a str,
    /// The longest the command may run.
    pub timeout: Duration,
}

/// How the command ended.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Its exit code; `None` when it was killed (timeout or signal).
    pub exit_status: Option<i32>,
    /// It ran out of time and was killed.
    pub timed_out: bool,
    /// The last bytes of its output (stdout and stderr as they came).
    pub output_tail: String,
}

/// Why the command could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The key file could not be written.
    #[error("cannot write the key file in {dir}: {source}")]
    KeyFile {
        /// Where.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command could not be started.
    #[error("cannot start the provisioning command: {0}")]
    Spawn(std::io::Error),
}

/// Where key files go: `/dev/shm` (memory-backed) when it exists, else the temp dir.
pub fn key_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// Whether `host` is a plain host name or address (so it cannot pass as an option to ssh).
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// Whether `user` is a plain login name (POSIX portable: letters, digits, `.`, `_`, `-`, not
/// first), so `-oProxyCommand=...` or shell metacharacters never reach the command's ssh line.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with(['-', '.'])
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// `host` as a URL the allow-list check can resolve (IPv6 literals bracketed), on SSH's port.
pub fn ssh_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("ssh://[{host}]:22")
    } else {
        format!("ssh://{host}:22")
    }
}

/// The key file; removed when dropped, so no return path (error, timeout, panic) leaves it.
struct KeyFile(PathBuf);

impl KeyFile {
    fn write(dir: &Path, key: &SecretString) -> Result<Self, ProvisionError> {
        let path = dir.join(format!("ai-gateway-key-{}", uuid::Uuid::now_v7().simple()));
        let err = |source| ProvisionError::KeyFile {
            dir: dir.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        let guard = Self(path);
        let text = key.expose_secret();
        file.write_all(text.as_bytes()).map_err(err)?;
        // ssh refuses a private key without its final newline.
        if !text.ends_with('\n') {
            file.write_all(b"\n").map_err(err)?;
        }
        file.sync_all().map_err(err)?;
        Ok(guard)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(error = %e, "could not delete a provisioning key file");
        }
    }
}

/// Writes the key, runs `sh -c '<command> "$@"' <host> <key file>` (also given as `AI_NODE_HOST`,
/// `AI_NODE_SSH_KEY_FILE`, `AI_NODE_USER`, `AI_NODE_PORT`, `AI_NODE_URL`) under coreutils
/// `timeout`, deletes the key.
pub async fn run(p: &Provision<'_>) -> Result<Provisioned, ProvisionError> {
    let key = KeyFile::write(&key_dir(), p.key)?;
    // coreutils `timeout` runs the command in a process group of its own and, on expiry, signals
    // the whole group, so what the command started (ssh, scp) ends with it.
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(format!("{:.3}", p.timeout.as_secs_f64()))
        .arg("sh")
        .arg("-c")
        .arg(format!("{} \"$@\"", p.command))
        .arg("ai-gateway-provision")
        .arg(p.host)
        .arg(&key.0)
        .env("AI_NODE_HOST", p.host)
        .env("AI_NODE_SSH_KEY_FILE", &key.0)
        .env("AI_NODE_USER", p.user.unwrap_or(""))
        .env("AI_NODE_PORT", p.port.to_string())
        .env("AI_NODE_URL", p.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().map_err(ProvisionError::Spawn)?;
    let tail = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        child.stdout.take().map(|s| tokio::spawn(collect(s, tail.clone()))),
        child.stderr.take().map(|s| tokio::spawn(collect(s, tail.clone()))),
    ];
    // A backstop: `timeout` itself gives up at most 5 s after the deadline.
    let backstop = p.timeout + Duration::from_secs(10);
    let status = match tokio::time::timeout(backstop, child.wait()).await {
        Ok(Ok(status)) => status.code(),
        Ok(Err(_)) => None,
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let timed_out = started.elapsed() >= p.timeout && matches!(status, None | Some(124 | 137));
    let exit_status = if timed_out { None } else { status };
    // A background process the command left behind may hold the pipes open: do not wait for it.
    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), reader).await.is_err() {
            abort.abort();
        }
    }
    drop(key);
    let bytes = tail.lock().await.clone();
    Ok(Provisioned {
        exit_status,
        timed_out,
        output_tail: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

async fn collect(mut from: impl AsyncRead + Unpin, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut t = tail.lock().await;
        t.extend_from_slice(&buf[..n]);
        if t.len() > TAIL_BYTES {
            let cut = t.len() - TAIL_BYTES;
            t.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_could_be_options_or_commands_are_refused() {
        assert!(valid_host("gpu-1.example.com"));
        assert!(valid_host("10.0.0.5"));
        assert!(valid_host("fd00::1"));
        assert!(!valid_host("-oProxyCommand=x"));
        assert!(!valid_host("a;b"));
        assert!(!valid_host("a b"));
        assert!(!valid_host(""));
    }

    #[tokio::test]
    async fn the_key_file_exists_with_mode_0600_while_the_command_runs_and_is_gone_after() {
        let key = SecretString::from("-----BEGIN KEY-----\nabc\n-----END KEY-----".to_owned());
        let p = Provision {
            command: r#"f() { stat -c '%a' "$2"; wc -l < "$2"; echo "$2"; }; f"#,
            host: "h",
            key: &key,
            user: None,
            port: 8000,
            url: "http://h:8000",
            timeout: Duration::from_secs(10),
        };
        let out = run(&p).await.unwrap();
        assert_eq!(out.exit_status, Some(0));
        let lines: Vec<&str> = out.output_tail.lines().collect();
        assert_eq!(lines[0], "600");
        assert_eq!(lines[1].trim(), "3", "the key ends with a newline");
        assert!(lines[2].starts_with(key_dir().to_str().unwrap()));
        assert!(!Path::new(lines[2]).exists());
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_and_the_key_removed() {
        let key = SecretString::from("k".to_owned());
        let p = Provision {
            command: r#"f() { echo "$2"; sleep 5; }; f"#,
            host: "h",
            key: &key,
            user: None,
            port: 8000,
            url: "http://h:8000",
            timeout: Duration::from_millis(300),
        };
        let out = run(&p).await.unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_status, None);
        assert!(!Path::new(out.output_tail.trim()).exists());
    }

    #[test]
    fn users_that_could_be_options_or_shell_are_refused() {
        for good in ["ubuntu", "ec2-user", "svc_gpu.1"] {
            assert!(valid_user(good), "{good}");
        }
        for evil in [
            "",
            "-oProxyCommand=touch /tmp/x",
            "root;id",
            "a b",
            "$(id)",
            "`id`",
            "a|b",
            "root@evil",
            "x\n",
            ".hidden",
            &"a".repeat(33),
        ] {
            assert!(!valid_user(evil), "{evil:?}");
        }
        assert_eq!(ssh_url("fd00::1"), "ssh://[fd00::1]:22");
        assert_eq!(ssh_url("gpu-1"), "ssh://gpu-1:22");
    }
}
