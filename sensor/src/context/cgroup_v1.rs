//! Container identity on hosts without cgroup2 (cgroup v1 only: RHEL 7/8,
//! older Debian/Ubuntu, nodes booted with `systemd.unified_cgroup_hierarchy=0`
//! and no unified mount).
//!
//! There every task sits in the root of the (unmounted) default hierarchy,
//! so `bpf_get_current_cgroup_id()` says nothing. Instead the kernel
//! programs read the task's cgroup in one v1 hierarchy, as Tetragon does:
//! `task->cgroups->subsys[ssid]->cgroup->kn->id`, for the subsystem id of a
//! mounted controller. That kernfs id is the inode number of the cgroup's
//! directory in that controller's mount, so the same resolver that walks a
//! cgroup2 mount ([`CgroupResolver`]) maps it to the cgroup path, and
//! container ids are parsed from the path exactly as on v2.
//!
//! Which mode is in use is decided once at start-up ([`detect`]): cgroup2
//! mounted (pure v2 or hybrid) → the default hierarchy as before; otherwise
//! the first mounted controller of [`PREFERRED_CONTROLLERS`].

use std::path::{Path, PathBuf};

use crate::byte_text::to_text;
use crate::context::cgroup_path::{
    find_cgroup2_mount, unescape_mountinfo, Cgroup2Mount, CgroupResolver,
};

/// Controllers container runtimes put every container in, in order of
/// preference (`memory` first as Tetragon; kernels without v1 memory
/// control, e.g. 6.12 built without CONFIG_MEMCG_V1, fall back to `cpu`).
pub const PREFERRED_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "pids", "cpuacct", "blkio", "devices", "freezer",
];

/// One mounted v1 hierarchy the kernel programs read the cgroup from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// The controller, e.g. `memory`.
    pub controller: String,
    /// Its subsystem id (index into `css_set.subsys`).
    pub ssid: u32,
    /// Its hierarchy id (the `root` of `cgroup_mkdir` records, the first
    /// field of `/proc/<pid>/cgroup` lines).
    pub hierarchy_id: u32,
    /// Its mount.
    pub mount: Cgroup2Mount,
}

/// Where container identity comes from on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// The cgroup2 (default) hierarchy, no v1 controller mounted.
    V2(Cgroup2Mount),
    /// cgroup2 mounted beside v1 controllers (systemd's hybrid layout):
    /// cgroup2's id first, and the v1 controller's when cgroup2's names no
    /// container (runtimes that make a container's cgroup only in the v1
    /// controllers, before runc 1.0).
    Hybrid(Cgroup2Mount, V1Hierarchy),
    /// A cgroup v1 controller's hierarchy (no cgroup2 mounted).
    V1(V1Hierarchy),
    /// No usable cgroup mount: no container enrichment.
    None,
}

impl CgroupMode {
    /// The v1 subsystem id for the kernel programs, if in v1 mode.
    pub fn v1_ssid(&self) -> Option<u32> {
        match self {
            CgroupMode::V1(h) => Some(h.ssid),
            _ => None,
        }
    }

    /// The v1 controller read beside cgroup2 on a hybrid host.
    pub fn secondary_v1_ssid(&self) -> Option<u32> {
        match self {
            CgroupMode::Hybrid(_, h) => Some(h.ssid),
            _ => None,
        }
    }

    /// The resolver for that v1 controller's ids, on a hybrid host.
    pub fn secondary_resolver(&self) -> Option<CgroupResolver> {
        match self {
            CgroupMode::Hybrid(_, h) => Some(v1_resolver(h)),
            _ => None,
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            CgroupMode::V2(m) => format!(
                "container identity: cgroup2 at {} (cgroup id of the default hierarchy)",
                m.mount_point.display()
            ),
            CgroupMode::Hybrid(m, h) => format!(
                "container identity: hybrid: cgroup2 at {} (cgroup id of the default \
                 hierarchy), else the `{}` v1 hierarchy at {} (kernel reads \
                 task->cgroups->subsys[{}])",
                m.mount_point.display(),
                h.controller,
                h.mount.mount_point.display(),
                h.ssid
            ),
            CgroupMode::V1(h) => format!(
                "container identity: cgroup v1 (no cgroup2 mounted), `{}` hierarchy at {} \
                 (kernel reads task->cgroups->subsys[{}])",
                h.controller,
                h.mount.mount_point.display(),
                h.ssid
            ),
            CgroupMode::None => "container identity: none (no cgroup filesystem mounted)".into(),
        }
    }

    /// The resolver for this mode (walks the chosen mount).
    pub fn resolver(&self) -> Option<CgroupResolver> {
        match self {
            CgroupMode::V2(m) | CgroupMode::Hybrid(m, _) => {
                Some(CgroupResolver::with_mount(m.clone()))
            }
            CgroupMode::V1(h) => Some(v1_resolver(h)),
            CgroupMode::None => None,
        }
    }
}

/// `/proc/cgroups`: per controller, in subsystem-id order (the kernel
/// prints it with `for_each_subsys`), its hierarchy id and whether enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    pub name: String,
    pub ssid: u32,
    pub hierarchy_id: u32,
    pub enabled: bool,
}

pub fn parse_proc_cgroups(text: &str) -> Vec<Controller> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .enumerate()
        .filter_map(|(ssid, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Controller {
                name: (*f.first()?).to_owned(),
                ssid: u32::try_from(ssid).ok()?,
                hierarchy_id: f.get(1)?.parse().ok()?,
                enabled: *f.get(3)? == "1",
            })
        })
        .collect()
}

/// The mount of the v1 hierarchy carrying `controller`, from mountinfo.
pub fn find_v1_mount(mountinfo: &str, controller: &str) -> Option<Cgroup2Mount> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut r = right.split(' ');
        if r.next()? != "cgroup" {
            return None;
        }
        let super_opts = r.nth(1)?;
        if !super_opts.split(',').any(|o| o == controller) {
            return None;
        }
        let mut fields = left.split(' ');
        let root = to_text(&unescape_mountinfo(fields.nth(3)?)).into_owned();
        let mount_point = fields.next()?;
        let root = if root == "/.." || root.starts_with("/../") {
            "/".to_owned()
        } else {
            root
        };
        Some(Cgroup2Mount {
            mount_point: PathBuf::from(to_text(&unescape_mountinfo(mount_point)).into_owned()),
            root,
        })
    })
}

/// Decides the mode from mountinfo and `/proc/cgroups` text.
pub fn choose(mountinfo: &str, proc_cgroups: &str) -> CgroupMode {
    let v1 = choose_v1(mountinfo, proc_cgroups);
    match (find_cgroup2_mount(mountinfo), v1) {
        (Some(m), Some(h)) => CgroupMode::Hybrid(m, h),
        (Some(m), None) => CgroupMode::V2(m),
        (None, Some(h)) => CgroupMode::V1(h),
        (None, None) => CgroupMode::None,
    }
}

fn v1_resolver(h: &V1Hierarchy) -> CgroupResolver {
    let mut r = CgroupResolver::with_mount(h.mount.clone());
    r.set_hierarchy_id(h.hierarchy_id);
    r
}

/// The first preferred v1 controller that is enabled and mounted.
fn choose_v1(mountinfo: &str, proc_cgroups: &str) -> Option<V1Hierarchy> {
    let controllers = parse_proc_cgroups(proc_cgroups);
    for want in PREFERRED_CONTROLLERS {
        let Some(c) = controllers
            .iter()
            .find(|c| c.name == *want && c.enabled && c.hierarchy_id != 0)
        else {
            continue;
        };
        if let Some(mount) = find_v1_mount(mountinfo, want) {
            return Some(V1Hierarchy {
                controller: c.name.clone(),
                ssid: c.ssid,
                hierarchy_id: c.hierarchy_id,
                mount,
            });
        }
    }
    None
}

/// The mode of this host (reads `/proc/self/mountinfo` and `/proc/cgroups`).
pub fn detect() -> CgroupMode {
    let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
    choose(&read("/proc/self/mountinfo"), &read("/proc/cgroups"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpuset\t0\t1\t1\ncpu\t3\t5\t1\ncpuacct\t4\t5\t1\nblkio\t5\t1\t1\n\
        memory\t0\t1\t1\ndevices\t6\t4\t1\nfreezer\t7\t1\t1\npids\t8\t4\t1\n";

    const V1_MOUNTINFO: &str = "\
22 1 0:20 / /sys rw - sysfs sysfs rw
30 22 0:25 / /sys/fs/cgroup rw - tmpfs cgroup_root rw,mode=755
31 30 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:27 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
34 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn subsystem_ids_are_line_indexes() {
        let c = parse_proc_cgroups(PROC_CGROUPS);
        assert_eq!(c.len(), 8);
        assert_eq!(
            (c[1].name.as_str(), c[1].ssid, c[1].hierarchy_id),
            ("cpu", 1, 3)
        );
        assert_eq!(
            (c[4].name.as_str(), c[4].ssid, c[4].hierarchy_id),
            ("memory", 4, 0)
        );
    }

    #[test]
    fn v1_only_picks_the_first_mounted_preferred_controller() {
        // memory is not mounted on v1 here (hierarchy 0): cpu is used.
        match choose(V1_MOUNTINFO, PROC_CGROUPS) {
            CgroupMode::V1(h) => {
                assert_eq!(h.controller, "cpu");
                assert_eq!(h.ssid, 1);
                assert_eq!(h.hierarchy_id, 3);
                assert_eq!(h.mount.mount_point, Path::new("/sys/fs/cgroup/cpu"));
                assert_eq!(h.mount.root, "/");
            }
            other => panic!("expected v1, got {other:?}"),
        }
    }

    #[test]
    fn combined_controller_mounts_match_by_option() {
        let mi = "31 30 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let m = find_v1_mount(mi, "cpuacct").expect("mount");
        assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(find_v1_mount(mi, "memory").is_none());
        // `name=systemd` is not the `systemd`... controller of anything.
        assert!(find_v1_mount(V1_MOUNTINFO, "name").is_none());
    }

    #[test]
    fn cgroup2_wins_when_mounted_hybrid_or_pure() {
        let hybrid =
            format!("{V1_MOUNTINFO}35 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        match choose(&hybrid, PROC_CGROUPS) {
            CgroupMode::Hybrid(m, h) => {
                assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup/unified"));
                assert_eq!(h.controller, "cpu");
            }
            other => panic!("expected hybrid, got {other:?}"),
        }
        let pure = "35 30 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(matches!(choose(pure, PROC_CGROUPS), CgroupMode::V2(_)));
        assert_eq!(choose("", PROC_CGROUPS), CgroupMode::None);
        assert_eq!(choose(V1_MOUNTINFO, "").v1_ssid(), None);
    }
}
