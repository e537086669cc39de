//! What the sensor knows around each event: the processes alive on the
//! node ([`process_table`], seeded and corrected from [`procfs`]) and the
//! container each one runs in ([`cgroup_path`] → [`container_id`]).
//! Nothing here trusts a value the process can set about itself (`comm`,
//! its argv after exec): see `docs/architecture.md`.

pub mod cgroup_path;
pub mod cgroup_v1;
pub mod container_id;
#[cfg(test)]
pub(crate) mod fake_proc;
pub mod process_table;
pub mod procfs;
pub mod runtime_meta;
