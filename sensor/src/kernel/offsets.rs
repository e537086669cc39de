//! Resolves every offset the kernel programs need ([`KernelOffsets`]) from
//! the running kernel: struct members from BTF, tracepoint record fields
//! from tracefs. A kernel lacking any of them fails here, at start-up, with
//! the struct and member named, instead of producing wrong data later.

use sensor_common::KernelOffsets;

use crate::kernel::btf::{BtfError, KernelBtf};
use crate::kernel::tracefs::{TracefsError, TracepointFormat};

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
}

/// Struct member offsets from BTF (no tracepoint fields).
pub fn from_btf(btf: &KernelBtf) -> Result<KernelOffsets, BtfError> {
    let task = |m: &str| btf.offset_of("task_struct", m);
    Ok(KernelOffsets {
        task_tgid: task("tgid")?,
        task_pid: task("pid")?,
        task_real_parent: task("real_parent")?,
        task_group_leader: task("group_leader")?,
        task_start_boottime: btf
            .offset_of_any("task_struct", &["start_boottime", "real_start_time"])?,
        task_comm: task("comm")?,
        task_signal: task("signal")?,
        task_files: task("files")?,
        task_mm: task("mm")?,
        task_cred: task("cred")?,
        task_nsproxy: task("nsproxy")?,
        task_thread_pid: task("thread_pid")?,
        task_exit_code: task("exit_code")?,
        signal_tty: btf.offset_of("signal_struct", "tty")?,
        tty_index: btf.offset_of("tty_struct", "index")?,
        tty_driver: btf.offset_of("tty_struct", "driver")?,
        tty_driver_major: btf.offset_of("tty_driver", "major")?,
        tty_driver_minor_start: btf.offset_of("tty_driver", "minor_start")?,
        files_fdt: btf.offset_of("files_struct", "fdt")?,
        fdtable_max_fds: btf.offset_of("fdtable", "max_fds")?,
        fdtable_fd: btf.offset_of("fdtable", "fd")?,
        file_inode: btf.offset_of("file", "f_inode")?,
        inode_mode: btf.offset_of("inode", "i_mode")?,
        inode_rdev: btf.offset_of("inode", "i_rdev")?,
        mm_arg_start: btf.offset_of("mm_struct", "arg_start")?,
        mm_arg_end: btf.offset_of("mm_struct", "arg_end")?,
        mm_start_stack: btf.offset_of("mm_struct", "start_stack")?,
        mm_exe_file: btf.offset_of("mm_struct", "exe_file")?,
        file_path_mnt: btf.offset_of_any("file", &["f_path.mnt", "__f_path.mnt"])?,
        file_path_dentry: btf.offset_of_any("file", &["f_path.dentry", "__f_path.dentry"])?,
        cred_euid: btf.offset_of("cred", "euid")?,
        cred_egid: btf.offset_of("cred", "egid")?,
        nsproxy_mnt_ns: btf.offset_of("nsproxy", "mnt_ns")?,
        mnt_ns_inum: btf.offset_of("mnt_namespace", "ns.inum")?,
        pid_level: btf.offset_of("pid", "level")?,
        pid_numbers: btf.offset_of("pid", "numbers")?,
        upid_ns: btf.offset_of("upid", "ns")?,
        upid_size: btf.struct_size("upid")?,
        pid_ns_inum: btf.offset_of("pid_namespace", "ns.inum")?,
        task_fs: task("fs")?,
        fs_root_mnt: btf.offset_of("fs_struct", "root.mnt")?,
        fs_root_dentry: btf.offset_of("fs_struct", "root.dentry")?,
        fs_pwd_mnt: btf.offset_of("fs_struct", "pwd.mnt")?,
        fs_pwd_dentry: btf.offset_of("fs_struct", "pwd.dentry")?,
        dentry_parent: btf.offset_of("dentry", "d_parent")?,
        dentry_name: btf.offset_of("dentry", "d_name.name")?,
        vfsmount_root: btf.offset_of("vfsmount", "mnt_root")?,
        mount_mnt: btf.offset_of("mount", "mnt")?,
        mount_parent: btf.offset_of("mount", "mnt_parent")?,
        mount_mountpoint: btf.offset_of("mount", "mnt_mountpoint")?,
        // A task's cgroup, read for a fork's child (the helper only knows
        // the current task): task->cgroups->dfl_cgrp->kn->id, or the v1
        // walk through `subsys` (context::cgroup_v1).
        task_cgroups: task("cgroups")?,
        css_set_dfl_cgrp: btf.offset_of("css_set", "dfl_cgrp")?,
        cgroup_kn: btf.offset_of("cgroup", "kn")?,
        kernfs_node_id: btf.offset_of("kernfs_node", "id")?,
        path_mnt: btf.offset_of("path", "mnt")?,
        path_dentry: btf.offset_of("path", "dentry")?,
        file_f_mode: btf.offset_of("file", "f_mode")?,
        signal_pids: btf.offset_of("signal_struct", "pids")?,
        upid_nr: btf.offset_of("upid", "nr")?,
        // Optional: pidfs (6.9+) gives every `struct pid` a unique inode.
        has_pid_ino: u32::from(btf.offset_of("pid", "ino").is_ok()),
        pid_ino: btf.offset_of("pid", "ino").unwrap_or(0),
        ..KernelOffsets::default()
    })
}

/// Adds what the network programs read: the socket behind a file and the
/// `sock_common` tuple and namespace. Apart from [`from_btf`] so that a
/// kernel lacking one of them loses network events alone, with the member
/// named.
pub fn with_network(
    mut offsets: KernelOffsets,
    btf: &KernelBtf,
) -> Result<KernelOffsets, BtfError> {
    let sk = |m: &str| btf.offset_of("sock", &format!("__sk_common.{m}"));
    offsets.file_private_data = btf.offset_of("file", "private_data")?;
    offsets.socket_sk = btf.offset_of("socket", "sk")?;
    offsets.sk_family = sk("skc_family")?;
    offsets.sk_num = sk("skc_num")?;
    offsets.sk_dport = sk("skc_dport")?;
    offsets.sk_daddr = sk("skc_daddr")?;
    offsets.sk_rcv_saddr = sk("skc_rcv_saddr")?;
    offsets.sk_v6_daddr = sk("skc_v6_daddr")?;
    offsets.sk_v6_rcv_saddr = sk("skc_v6_rcv_saddr")?;
    offsets.sk_net = sk("skc_net.net")?;
    offsets.sk_protocol = btf.offset_of("sock", "sk_protocol")?;
    offsets.net_ns_inum = btf.offset_of("net", "ns.inum")?;
    Ok(offsets)
}

/// Adds the struct offsets of the cgroup v1 walk for `ssid`
/// (`context::cgroup_v1` chooses the hierarchy): as the only id on a
/// v1-only host, or beside cgroup2's (`secondary`) on a hybrid one.
pub fn with_cgroup_v1(
    btf: &KernelBtf,
    o: &mut KernelOffsets,
    ssid: u32,
    secondary: bool,
) -> Result<(), BtfError> {
    o.task_cgroups = btf.offset_of("task_struct", "cgroups")?;
    o.css_set_subsys = btf.offset_of("css_set", "subsys")?;
    o.css_cgroup = btf.offset_of("cgroup_subsys_state", "cgroup")?;
    o.cgroup_kn = btf.offset_of("cgroup", "kn")?;
    o.kernfs_node_id = btf.offset_of("kernfs_node", "id")?;
    o.cgroup_v1_ssid = ssid;
    if secondary {
        o.cgroup_v1_secondary = 1;
    } else {
        o.cgroup_v1 = 1;
    }
    Ok(())
}

/// Adds the tracepoint record fields the programs read.
pub fn with_tracepoints(
    mut offsets: KernelOffsets,
    exec: &TracepointFormat,
    exit: &TracepointFormat,
    cgroup_mkdir: &TracepointFormat,
) -> Result<KernelOffsets, TracefsError> {
    offsets.tp_exec_filename_loc = exec.offset("filename")?;
    offsets.tp_cgroup_root = cgroup_mkdir.offset("root")?;
    offsets.tp_cgroup_id = cgroup_mkdir.offset("id")?;
    offsets.tp_cgroup_path_loc = cgroup_mkdir.offset("path")?;
    offsets.tp_exec_old_pid = exec.offset("old_pid")?;
    // `group_dead` appeared in newer kernels; without it the program falls
    // back to "the leader thread exited".
    if let Some(f) = exit.field("group_dead") {
        offsets.tp_exit_group_dead = f.offset;
        offsets.tp_exit_has_group_dead = 1;
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_kernel_has_every_member() {
        let btf = KernelBtf::from_sys_fs().expect("kernel BTF");
        let o = from_btf(&btf).expect("offsets");
        assert!(o.task_real_parent > 0 && o.task_comm > 0 && o.mm_arg_end > o.mm_arg_start);
        assert!(o.upid_size >= 12, "struct upid holds an int and a pointer");
        assert_eq!(
            o.tp_exit_has_group_dead, 0,
            "tracepoint fields are not from BTF"
        );
    }
}
