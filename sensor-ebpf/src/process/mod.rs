//! The process family: exec (with its argv and path tail calls), fork,
//! exit, and cgroup creation.

pub(crate) mod cgroup;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod fork;
