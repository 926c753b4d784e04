//! The GPU node registry and the job → node map, shared by every replica through the database.
//!
//! Written on register, remove and job creation; read by the health loop each period (so replicas
//! converge) and by `/status/{job_id}` when a job is not in memory (after a restart).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{HistoryError, HistoryStore, with_conn};
use super::now_ms;
use super::schema::{node_jobs, nodes};

/// A registered node as stored.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = nodes, treat_none_as_default_value = false)]
pub struct StoredNode {
    /// Canonical root URL (`http://gpu-1:8000`).
    pub url: String,
    /// The `node_pool` provider it belongs to.
    pub pool: String,
    /// Its runtime when registered with one; null = the pool's.
    pub runtime: Option<String>,
    /// Who added it: `config`, `api`, `pulse` or `provision`.
    pub source: String,
    /// When, epoch ms.
    pub created_at: i64,
}

impl StoredNode {
    /// A row for `url` in `pool`, created now.
    pub fn new(url: &str, pool: &str, runtime: Option<&str>, source: &str) -> Self {
        Self {
            url: url.to_owned(),
            pool: pool.to_owned(),
            runtime: runtime.map(str::to_owned),
            source: source.to_owned(),
            created_at: now_ms(),
        }
    }
}

/// Which node accepted a job, under which id, for whom.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = node_jobs, treat_none_as_default_value = false)]
pub struct StoredJob {
    /// The gateway's id for the job (random, what the client was given).
    pub job_id: String,
    /// The node's root URL.
    pub node_url: String,
    pub pool: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// The id the node gave the job.
    pub node_job_id: String,
    /// The caller that created it (`Caller::id`); null = unknown (rows from before owners).
    pub caller: Option<String>,
}

impl HistoryStore {
    /// Adds a node, or replaces its pool and runtime when the URL is known (`replace`), or leaves
    /// a known URL as it is (`!replace`: config seeding must not undo an operator's registration).
    pub async fn upsert_node(&self, node: &StoredNode, replace: bool) -> Result<(), HistoryError> {
        with_conn!(self, |conn| {
            let insert = diesel::insert_into(nodes::table).values(node).on_conflict(nodes::url);
            if replace {
                insert
                    .do_update()
                    .set((nodes::pool.eq(&node.pool), nodes::runtime.eq(&node.runtime)))
                    .execute(&mut conn)
                    .await?
            } else {
                insert.do_nothing().execute(&mut conn).await?
            }
        });
        Ok(())
    }

    /// Removes a node; returns whether it existed.
    pub async fn delete_node(&self, url: &str) -> Result<bool, HistoryError> {
        let n = with_conn!(self, |conn| {
            diesel::delete(nodes::table.filter(nodes::url.eq(url)))
                .execute(&mut conn)
                .await?
        });
        Ok(n > 0)
    }

    /// Every registered node, oldest first.
    pub async fn list_nodes(&self) -> Result<Vec<StoredNode>, HistoryError> {
        let rows = with_conn!(self, |conn| {
            nodes::table
                .select(StoredNode::as_select())
                .order((nodes::created_at.asc(), nodes::url.asc()))
                .load(&mut conn)
                .await?
        });
        Ok(rows)
    }

    /// Records which node owns a job. A job is never re-owned: an id already stored keeps its
    /// node and caller (the gateway issues fresh random ids, so this only guards the invariant).
    pub async fn insert_job(&self, job: &StoredJob) -> Result<(), HistoryError> {
        with_conn!(self, |conn| {
            diesel::insert_into(node_jobs::table)
                .values(job)
                .on_conflict(node_jobs::job_id)
                .do_nothing()
                .execute(&mut conn)
                .await?
        });
        Ok(())
    }

    /// Deletes job mappings older than `days` (history retention); returns how many.
    pub async fn purge_jobs_older_than_days(&self, days: u64) -> Result<usize, HistoryError> {
        let cutoff = now_ms() - i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
        let n = with_conn!(self, |conn| {
            diesel::delete(node_jobs::table.filter(node_jobs::created_at.lt(cutoff)))
                .execute(&mut conn)
                .await?
        });
        Ok(n)
    }

    /// The node that owns `job_id`, if recorded.
    pub async fn find_job(&self, job_id: &str) -> Result<Option<StoredJob>, HistoryError> {
        let job = with_conn!(self, |conn| {
            node_jobs::table
                .select(StoredJob::as_select())
                .filter(node_jobs::job_id.eq(job_id))
                .first(&mut conn)
                .await
                .optional()?
        });
        Ok(job)
    }
}
