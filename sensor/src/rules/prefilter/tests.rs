//! Unit tests of the derivation, the tables and the model.

use super::*;
use sensor_common::file_op;
use sensor_common::prefilter::{FIRST_MAX, GATE_COMPONENT_MAX, PROC_WINDOW};

fn d(q: &str) -> [Derived; OP_COUNT] {
    derive_rule(q).expect("parses")
}

fn atoms(list: &[Atom]) -> Derived {
    Derived::Atoms(list.iter().cloned().collect())
}

#[test]
fn exact_prefix_name_ext() {
    let r = d(r#"file where event.type != "deletion" and
        file.path like ("/etc/ld.so.preload", "/etc/ld.so.conf.d/*", "/etc/sudoers*") and container.id like "*""#);
    let want = atoms(&[
        Atom::Exact(b"/etc/ld.so.preload".to_vec()),
        Atom::Prefix(b"/etc/ld.so.conf.d/".to_vec()),
        Atom::Prefix(b"/etc/".to_vec()),
    ]);
    assert_eq!(r[0], want);
    assert_eq!(r[1], want);
    assert_eq!(r[2], Derived::Never);
    assert_eq!(r[3], want);
    let r = d(
        r#"file where event.type == "deletion" and file.name in (".bash_history", "x") or file.extension == "sh""#,
    );
    assert_eq!(
        r[2],
        atoms(&[
            Atom::Name(b".bash_history".to_vec()),
            Atom::Name(b"x".to_vec()),
            Atom::Ext(b"sh".to_vec())
        ])
    );
    assert_eq!(r[0], atoms(&[Atom::Ext(b"sh".to_vec())]));
}

#[test]
fn gate_entries_name_each_path_atoms_first_component() {
    let t = FilePrefilter::from_queries([(
        "r",
        r#"file where event.type == "creation" and
            (file.path like ("/etc/ld.so.preload", "/var/lib/kubelet/pki/*", "/entrypoint*")
             or file.name == "authorized_keys")"#,
    )])
    .tables();
    let op = file_op::CREATE as u8;
    let want: BTreeSet<Vec<u8>> = [
        [&[op][..], b"etc\0"].concat(),
        [&[op][..], b"var\0"].concat(),
        [&[op][..], b"entrypoint"].concat(),
    ]
    .into_iter()
    .collect();
    assert_eq!(t.first, want);
    // The other operations need no event at all: gated, no entries.
    assert_eq!(t.gated, t.on);
    assert_eq!(t.on.len(), 4);
    // The prefix `/` fixes no first component, nor does one longer
    // than a gate key holds: that operation is not gated.
    for q in [
        r#"file where event.type == "creation" and file.path like ("/*", "/etc/x")"#,
        &format!(
            r#"file where event.type == "creation" and file.path == "/{}/x""#,
            "a".repeat(GATE_COMPONENT_MAX + 1)
        ),
    ] {
        let t = FilePrefilter::from_queries([("r", q)]).tables();
        assert!(t.on.contains(&file_op::CREATE), "{q}");
        assert!(!t.gated.contains(&file_op::CREATE), "{q}: {:?}", t.first);
    }
    let q = format!(
        r#"file where event.type == "creation" and file.path == "/{}/x""#,
        "a".repeat(GATE_COMPONENT_MAX)
    );
    let t = FilePrefilter::from_queries([("r", q.as_str())]).tables();
    assert!(t.gated.contains(&file_op::CREATE));
}

#[test]
fn unreducible_conditions_say_why() {
    for (q, why) in [
        (r#"file where not file.path like "/etc/*""#, "`not`"),
        (
            r#"file where file.name like "*.a?""#,
            "no literal the kernel",
        ),
        (
            r#"file where startsWith(file.path, "/etc")"#,
            "not ==, in, like or :",
        ),
        (
            r#"file where process.name : "chmod*""#,
            "no condition on file.path",
        ),
        (r#"file where file.path : "/etc\\x""#, "backslash"),
        (
            r#"file where process.name == "a\\b""#,
            "no condition on file.path",
        ),
        (r#"file where file.path like "*x""#, "no literal the kernel"),
        // A gram never starts with what may continue an escape (`\\xab`).
        (
            r#"file where file.path like "*abcd*""#,
            "no literal the kernel",
        ),
        // `5` also matches the name "5" (numbers match their text).
        (r#"file where file.name == 5"#, "non-string literal"),
    ] {
        let r = d(q);
        match &r[0] {
            Derived::PassAll { reason, .. } => assert!(reason.contains(why), "{q}: {reason}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    // An `and` with one file atom narrows despite unreducible siblings.
    let r =
        d(r#"file where not process.name == "x" and file.name == "a" and file.path like "/y*""#);
    assert_eq!(r[0], atoms(&[Atom::Name(b"a".to_vec())]));
    // A leading wildcard with a literal directory tail: the basename.
    let r = d(r#"file where file.path like "*/.ssh/authorized_keys""#);
    assert_eq!(r[0], atoms(&[Atom::Name(b"authorized_keys".to_vec())]));
}

#[test]
fn every_sample_filter_and_sequence_step_contributes() {
    // A file event can be any filter's event: both filters' atoms, and
    // nothing for the process-only filter.
    let r = d(r#"sample by host.id
        [file where event.type == "deletion" and file.name == "a"]
        [file where event.type == "deletion" and file.extension == "sh"]
        [process where process.name == "x"]"#);
    assert_eq!(
        r[2],
        atoms(&[Atom::Name(b"a".to_vec()), Atom::Ext(b"sh".to_vec())])
    );
    assert_eq!(r[0], Derived::Never);
    let r = d(r#"sequence by host.id
        [file where event.type == "deletion" and file.name == "a"]
        ![file where event.type == "deletion" and file.name == "b"]
        [process where true]"#);
    assert_eq!(
        r[2],
        atoms(&[Atom::Name(b"a".to_vec()), Atom::Name(b"b".to_vec())])
    );
}

#[test]
fn actions_select_operations() {
    let r = d(
        r#"any where (event.category == "file" and event.action == "open" and file.path == "/a") or
        (event.category == "process" and process.name == "x")"#,
    );
    assert_eq!(r[0], atoms(&[Atom::Exact(b"/a".to_vec())]));
    assert_eq!(r[1], Derived::Never);
    assert_eq!(r[2], Derived::Never);
    let r = d(r#"process where process.name == "x""#);
    assert!(r.iter().all(|x| *x == Derived::Never));
}

#[test]
fn model_matches_kernel_forms() {
    let p = FilePrefilter::from_queries([(
        "r",
        r#"file where event.type != "deletion" and (file.path in ("/etc/crontab", "/a/b") or
            file.path like "/etc/cron.d/*" or file.name == "authorized_keys" or file.extension == "service")"#,
    )]);
    let t = p.tables();
    let open = file_op::OPEN_WRITE;
    let pass = |path: &str| t.passes(open, Some(&walk_form(path.as_bytes())), None, false);
    assert!(pass("/etc/crontab"));
    assert!(!pass("/etc/crontab2"));
    assert!(!pass("/etc/crontab/x"));
    assert!(pass("/etc/cron.d/x"));
    assert!(pass("/etc/cron.d/x/y"));
    assert!(!pass("/etc/cron.daily"));
    assert!(pass("/root/.ssh/authorized_keys"));
    assert!(pass("/x/a.service"));
    assert!(!pass("/x/.service"));
    assert!(!pass("/x/a.service.bak"));
    assert!(!pass("/a"));
    assert!(pass("/a/b"));
    assert!(t.passes(open, None, None, false), "incomplete paths pass");
    // A deletion: no rule can match one, so all are filtered.
    assert!(!t.passes(
        file_op::DELETE,
        Some(&walk_form(b"/etc/crontab")),
        None,
        false
    ));
    // A rename passes on its old path too.
    let rename = FilePrefilter::from_queries([(
        "r",
        r#"file where event.action == "rename" and file.path == "/etc/passwd""#,
    )])
    .tables();
    assert!(rename.passes(
        file_op::RENAME,
        Some(&walk_form(b"/tmp/x")),
        Some(&walk_form(b"/etc/passwd")),
        false
    ));
    assert!(!rename.passes(
        file_op::RENAME,
        Some(&walk_form(b"/tmp/x")),
        Some(&walk_form(b"/tmp/y")),
        false
    ));
}

#[test]
fn process_names_pass_their_processes_events() {
    let q = r#"any where event.type in ("change", "creation") and
        (process.name == "chmod" or (process.name in ("sh", "bash") and process.args == "chmod"))
        and process.args == "+x""#;
    let r = d(q);
    let want = atoms(&[
        Atom::Proc(b"chmod".to_vec()),
        Atom::Proc(b"sh".to_vec()),
        Atom::Proc(b"bash".to_vec()),
    ]);
    assert_eq!(r[0], want);
    assert_eq!(r[1], want);
    assert_eq!(r[2], Derived::Never);
    let t = FilePrefilter::from_queries([("r", q)]).tables();
    let open = file_op::OPEN_WRITE;
    let walk = walk_form(b"/tmp/x");
    // The name is the executed file's (the walk's first component),
    // whatever the execve filename was.
    let pass = |name: Option<&[u8]>| {
        let v = t.proc_verdict(name);
        t.passes_process(open, v, Some(&walk), None, false)
    };
    assert!(pass(Some(b"chmod")));
    assert!(pass(Some(b"sh")));
    assert!(!pass(Some(b"cat")));
    assert!(!pass(Some(b"chmod2")));
    assert!(!pass(Some(b"CHMOD")));
    // Unsure names pass: the walk did not finish, nothing, too long.
    assert!(pass(None));
    assert!(pass(Some(b"")));
    assert!(pass(Some("a".repeat(PROC_WINDOW).as_bytes())));
    // The name counts only for the operations whose rules name it.
    let v = t.proc_verdict(Some(b"chmod"));
    assert!(!t.passes_process(file_op::DELETE, v, Some(&walk), None, false));
}

#[test]
fn long_paths_match_on_their_first_components() {
    let p = FilePrefilter::from_queries([("r", r#"file where file.path like "/etc/*""#)]).tables();
    let long = format!("/etc/{}/x", "a".repeat(300));
    assert!(p.passes(
        file_op::OPEN_WRITE,
        Some(&walk_form(long.as_bytes())),
        None,
        false
    ));
    let other = format!("/var/{}/x", "a".repeat(300));
    assert!(!p.passes(
        file_op::OPEN_WRITE,
        Some(&walk_form(other.as_bytes())),
        None,
        false
    ));
}

#[test]
fn prefixes_ending_mid_component_check_the_first_component() {
    let r =
        r#"file where event.action == "creation" and file.path like ("/entrypoint*", "/usr/lo*")"#;
    assert_eq!(
        d(r)[1],
        atoms(&[
            Atom::FirstPrefix(b"entrypoint".to_vec()),
            Atom::Prefix(b"/usr/".to_vec()),
        ])
    );
    let del = r#"file where event.action == "deletion" and file.path like "/other*""#;
    let t = FilePrefilter::from_queries([("r", r), ("d", del)]).tables();
    let pass = |p: &str| t.passes(file_op::CREATE, Some(&walk_form(p.as_bytes())), None, false);
    assert!(pass("/entrypoint"));
    assert!(pass("/entrypoint.sh"));
    assert!(pass("/entrypointx/a/b"));
    assert!(pass(&format!("/entrypoint{}/x", "a".repeat(245))));
    assert!(pass("/usr/local/x"));
    assert!(!pass("/entrypoin"));
    assert!(!pass("/tmp/entrypoint.sh"));
    assert!(!pass("/x/entrypoint/y"));
    assert!(!pass(&format!("/{}/entrypoint", "a".repeat(255))));
    assert!(!pass("/Entrypoint"));
    // Another operation's entries do not pass this one's records.
    assert!(!t.passes(
        file_op::DELETE,
        Some(&walk_form(b"/entrypoint")),
        None,
        false
    ));
    assert!(t.passes(
        file_op::DELETE,
        Some(&walk_form(b"/otherwise")),
        None,
        false
    ));
    // A literal longer than a key holds: its directory.
    let long = format!(
        r#"file where file.path like "/{}*""#,
        "e".repeat(FIRST_MAX + 1)
    );
    assert_eq!(d(&long)[1], atoms(&[Atom::Prefix(b"/".to_vec())]));
}

#[test]
fn case_insensitive_atoms_are_folded() {
    let r = d(
        r#"file where file.path : ("/ETC/Hosts", "/Var/Lib/*", "C:\\Windows\\hosts") or
        file.name in~ ("Authorized_Keys") or file.extension : "PHP" or process.name : "ChMod""#,
    );
    let f = |a: Atom| a.folded();
    assert_eq!(
        r[0],
        atoms(&[
            f(Atom::Exact(b"/etc/hosts".to_vec())),
            f(Atom::Prefix(b"/Var/Lib/".to_vec())),
            f(Atom::Name(b"authorized_keys".to_vec())),
            f(Atom::Ext(b"php".to_vec())),
            f(Atom::Proc(b"chmod".to_vec())),
        ])
    );
    assert_eq!(
        f(Atom::Prefix(b"/Var/".to_vec())),
        Atom::Folded(Box::new(Atom::Prefix(b"/var/".to_vec())))
    );
    let t = FilePrefilter::from_queries([("r", r#"file where file.path : "/ETC/Hosts" or file.name : "Key.PEM" or file.path like~ "/Opt/*""#)]).tables();
    let open = file_op::OPEN_WRITE;
    let pass = |p: &str| t.passes(open, Some(&walk_form(p.as_bytes())), None, false);
    for p in [
        "/etc/hosts",
        "/ETC/HOSTS",
        "/eTc/hOsTs",
        "/x/KEY.pem",
        "/y/key.pem",
        "/OPT/a",
        "/opt/b/c",
    ] {
        assert!(pass(p), "{p}");
    }
    for p in [
        "/etc/hosts2",
        "/etc/host",
        "/x/key.pem2",
        "/optx/a",
        "/etc/ho\u{e9}ts",
    ] {
        assert!(!pass(p), "{p}");
    }
    // Non-ASCII letters are not folded, on either side.
    let t =
        FilePrefilter::from_queries([("r", r#"file where file.name : "\u{c9}t\u{c9}""#)]).tables();
    let pass = |p: &str| t.passes(open, Some(&walk_form(p.as_bytes())), None, false);
    assert!(pass("/x/\u{c9}t\u{c9}"));
    assert!(pass("/x/\u{c9}T\u{c9}"));
    assert!(!pass("/x/\u{e9}t\u{e9}"));
    // The gate holds the folded first components.
    assert!(t.gated.contains(&open));
}

#[test]
fn wildcards_inside_names_give_ends_or_grams() {
    let r =
        d(r#"file where file.name like ("pam_*.so", "*.so.*") or file.path like "*.git/hooks/*""#);
    assert_eq!(
        r[0],
        atoms(&[
            Atom::Ext(b"so".to_vec()),
            Atom::Name(b".so".to_vec()),
            Atom::Gram(*b".so."),
            Atom::Gram(*b".git"),
        ])
    );
    let t = FilePrefilter::from_queries([(
        "r",
        r#"file where file.name like "*.so.*" or file.path like~ "*.git/HOOKS/*""#,
    )])
    .tables();
    let open = file_op::OPEN_WRITE;
    let pass = |p: &str| t.passes(open, Some(&walk_form(p.as_bytes())), None, false);
    for p in [
        "/usr/lib/libc.so.6",
        "/x/a.SO.1",
        "/r/.git/hooks/pre-commit",
        "/r/x.git/Hooks/y",
    ] {
        assert!(pass(p), "{p}");
    }
    for p in ["/usr/lib/libc.so", "/x/a.s/o.1", "/r/git/hooks/x"] {
        assert!(!pass(p), "{p}");
    }
    // Past the window, a walk passes.
    assert!(pass(&format!("/{}/x", "a".repeat(300))));
    // Grams can be in any component: no gate.
    assert!(!t.gated.contains(&open));
}

#[test]
fn absent_fields_and_sequences_that_cannot_fire() {
    // `data_stream.dataset` is on no event: the step never matches, and a
    // sequence that needs it never fires (its missing-event step needs no
    // file event either).
    let r = d(r#"sequence by host.id with maxspan=5m
        [any where data_stream.dataset == "endpoint.alerts"]
        ![any where event.category in ("process", "file")]"#);
    assert!(r.iter().all(|x| *x == Derived::Never), "{r:?}");
    let r = d(r#"file where url.original like~ "*x*" or file.name == "a""#);
    assert_eq!(r[0], atoms(&[Atom::Name(b"a".to_vec())]));
    // `!=` and `== null` hold on a missing field: no narrowing.
    let r = d(r#"file where url.original != "x""#);
    assert!(matches!(r[0], Derived::PassAll { .. }));
    // A field of a produced object is never judged absent.
    let r = d(r#"file where process.Ext.foo == "x""#);
    assert!(matches!(r[0], Derived::PassAll { .. }));
}
