//! Which event sources a rule needs, and whether this sensor provides them
//! here.
//!
//! Every kind of event the sensor can produce is one (`event.category`,
//! `event.type`, `event.action`) triple ([`KINDS`]). A rule's query is
//! evaluated on each triple with every other field unknown (three-valued
//! logic): a kind on which the rule is not certainly false is one the rule
//! needs. A rule needing only kinds the sensor does not produce here (a
//! `network` rule, file rules on a kernel without file events) is never
//! called supported.

use crate::ecs::Action;
use crate::eql::ast::{Category, CmpOp, Expr, Literal, Operand};
use crate::eql::{self, wildcard::WildcardPattern};
use crate::kernel::file_hooks::FileMechanism;
use crate::kernel::host::HostFeatures;
use crate::network::hooks::NetMechanism;

/// One kind of event the sensor produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub category: &'static str,
    pub event_type: &'static str,
    pub action: &'static str,
    /// `category:action`, as reports name it.
    pub source: &'static str,
    /// The kernel file operation it comes from (`sensor_common::file_op`).
    pub file_op: Option<u32>,
    /// Produced only from file events (needs a file mechanism).
    pub file: bool,
    /// The kernel network operation it comes from
    /// (`sensor_common::net::net_op`): needs the network programs.
    pub net_op: Option<u32>,
    /// Seen by rules (fork events are only written, with
    /// `--lifecycle-events`).
    pub evaluated: bool,
}

const fn kind(action: Action) -> Kind {
    Kind {
        category: action.category(),
        event_type: action.event_type(),
        action: action.as_str(),
        source: action.source(),
        file_op: action.file_op(),
        file: action.file_op().is_some(),
        net_op: action.net_op(),
        evaluated: action.evaluated(),
    }
}

/// Every event kind, as `ecs::Action` declares them.
pub const KINDS: [Kind; Action::ALL.len()] = {
    let mut out = [kind(Action::Exec); Action::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = kind(Action::ALL[i]);
        i += 1;
    }
    out
};

/// What this sensor provides here.
#[derive(Debug, Clone)]
pub struct Availability {
    /// `Ok(mechanism)`: file events are produced; `Err(reason)`: they are
    /// not.
    pub file_events: Result<String, String>,
    /// The same for network events.
    pub network_events: Result<String, String>,
}

impl Availability {
    /// What the rules can rely on once the programs are attached: the
    /// mechanisms that give file and network events, or why there are
    /// none (network events not attached because no rule needs them count
    /// as available).
    pub fn of(mechanism: &FileMechanism, net: &NetMechanism) -> Availability {
        Availability {
            network_events: net.availability(),
            file_events: match mechanism {
                FileMechanism::Lsm => Ok("BPF LSM".to_owned()),
                FileMechanism::Fentry { .. } => Ok("fentry".to_owned()),
                FileMechanism::Tracepoints { .. } => Ok("syscall tracepoints".to_owned()),
                FileMechanism::Unavailable { reason } => Err(reason.clone()),
            },
        }
    }

    /// Without loading anything: file events come from BPF LSM when `bpf`
    /// is an active LSM, else fentry when the kernel has BTF, else the
    /// syscall tracepoints when tracefs lists them. The live sensor's
    /// start-up line says what really attached.
    pub fn probe(host: &HostFeatures) -> Availability {
        let file_events = if host.bpf_lsm_active() == Some(true) {
            Ok("BPF LSM".to_owned())
        } else if host.btf_vmlinux {
            Ok("fentry on security_* (or syscall tracepoints)".to_owned())
        } else if host.syscall_tracepoints {
            Ok("syscall tracepoints".to_owned())
        } else {
            Err("no BPF LSM, no kernel BTF for fentry, no syscall tracepoints".to_owned())
        };
        let network_events = if host.sock_tracepoint {
            Ok("tracepoints".to_owned())
        } else {
            Err("no sock/inet_sock_set_state tracepoint".to_owned())
        };
        Availability {
            file_events,
            network_events,
        }
    }

    fn provides(&self, k: &Kind) -> bool {
        k.evaluated
            && (!k.file || self.file_events.is_ok())
            && (k.net_op.is_none() || self.network_events.is_ok())
    }
}

/// A rule's needs, judged against what is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Kinds the rule can match.
    pub kinds: Vec<&'static str>,
    /// Of those, the ones the sensor does not provide here.
    pub missing: Vec<&'static str>,
    /// What the rule needs that this sensor never produces, e.g.
    /// "`network` events".
    pub foreign: Option<String>,
}

impl Needs {
    /// Supported: it can match something the sensor provides and needs
    /// nothing it does not (fork events aside: a rule on `start` events
    /// fires on execs).
    pub fn supported(&self) -> bool {
        self.foreign.is_none()
            && self.kinds.iter().any(|k| !self.missing.contains(k))
            && self.missing.iter().all(|k| *k == "process:fork")
    }

    /// `sources: a+b` plus what is missing.
    pub fn describe(&self) -> String {
        let mut s = if self.kinds.is_empty() {
            "sources: none".to_owned()
        } else {
            format!("sources: {}", self.kinds.join("+"))
        };
        if let Some(c) = &self.foreign {
            s.push_str(&format!("; needs {c} this sensor does not produce"));
        }
        let missing: Vec<&str> = self
            .missing
            .iter()
            .copied()
            .filter(|k| *k != "process:fork")
            .collect();
        if !missing.is_empty() {
            s.push_str(&format!("; not provided here: {}", missing.join("+")));
        }
        s
    }
}

/// The start-up line on the loaded rules' event sources: how many need
/// file events, and which cannot fire here (by name).
pub fn summary(rules: &super::RuleSet, avail: &Availability) -> String {
    let mut file_rules = 0;
    let mut cannot = Vec::new();
    for rule in rules.rules() {
        let Some(n) = needs(&rule.meta.query, avail) else {
            continue;
        };
        if n.kinds.iter().any(|k| k.starts_with("file:")) {
            file_rules += 1;
        }
        if !n.supported() {
            cannot.push(format!("{} ({})", rule.meta.name, n.describe()));
        }
    }
    let head = match &avail.file_events {
        Ok(m) => format!(
            "{file_rules} of {} rules use file events (via {m})",
            rules.len()
        ),
        Err(_) => format!(
            "{file_rules} of {} rules use file events, which are unavailable here",
            rules.len()
        ),
    };
    if cannot.is_empty() {
        format!("rules: {head}; every rule's event sources are provided")
    } else {
        format!(
            "rules: {head}; {} cannot fire fully here: {}",
            cannot.len(),
            cannot.join("; ")
        )
    }
}

/// The needs of a query, `None` when it does not parse as a single-event
/// query.
pub fn needs(query: &str, avail: &Availability) -> Option<Needs> {
    let q = eql::parse(query).ok()?;
    Some(needs_of(&q, avail))
}

/// What each step of a sequence query needs, in order (missing-event steps
/// left out: they need nothing to be seen, only to be absent); empty when
/// `query` is not a sequence. A sequence can fire only if every step can.
pub fn sequence_needs(query: &str, avail: &Availability) -> Vec<Needs> {
    match eql::parser::parse_statement(query) {
        Ok(eql::ast::Statement::Sequence(seq)) => seq
            .steps
            .iter()
            .filter(|s| !s.missing)
            .map(|s| needs_of(&s.query, avail))
            .collect(),
        Ok(eql::ast::Statement::Sample(sample)) => sample
            .filters
            .iter()
            .map(|s| needs_of(&s.query, avail))
            .collect(),
        _ => Vec::new(),
    }
}

fn needs_of(q: &eql::ast::Query, avail: &Availability) -> Needs {
    let named = match &q.category {
        Category::Any => None,
        Category::Named(c) => Some(c.as_str()),
    };
    let kinds: Vec<&Kind> = KINDS
        .iter()
        .filter(|k| named.is_none_or(|c| c == k.category))
        .filter(|k| eval(&q.condition, k) != Some(false))
        .collect();
    let foreign = match named {
        Some(c) if !KINDS.iter().any(|k| k.category == c) => Some(format!("`{c}` events")),
        Some(c) if kinds.is_empty() => Some(format!("`{c}` events of a type or action")),
        None if kinds.is_empty() => Some("events of a category, type or action".to_owned()),
        _ => None,
    };
    Needs {
        kinds: kinds.iter().map(|k| k.source).collect(),
        missing: kinds
            .iter()
            .filter(|k| !avail.provides(k))
            .map(|k| k.source)
            .collect(),
        foreign,
    }
}

/// The value of `event.category`, `event.type` or `event.action` for this
/// kind; `None` for any other field (unknown).
fn known<'k>(op: &Operand, k: &'k Kind) -> Option<&'k str> {
    let Operand::Field(f) = op else { return None };
    match f.path.as_str() {
        "event.category" => Some(k.category),
        "event.type" => Some(k.event_type),
        "event.action" => Some(k.action),
        _ => None,
    }
}

fn lit_str(op: &Operand) -> Option<&str> {
    match op {
        Operand::Lit(l) => match &l.value {
            Literal::Str(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn eq(a: &str, b: &str, ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Three-valued: `Some(b)` when the kind alone decides, `None` when other
/// fields do.
pub(crate) fn eval(e: &Expr, k: &Kind) -> Option<bool> {
    match e {
        Expr::Const(b) => Some(*b),
        Expr::Not(inner) => eval(inner, k).map(|b| !b),
        Expr::And(items) => {
            let mut all = Some(true);
            for i in items {
                match eval(i, k) {
                    Some(false) => return Some(false),
                    None => all = None,
                    Some(true) => {}
                }
            }
            all
        }
        Expr::Or(items) => {
            let mut any = Some(false);
            for i in items {
                match eval(i, k) {
                    Some(true) => return Some(true),
                    None => any = None,
                    Some(false) => {}
                }
            }
            any
        }
        Expr::Compare { left, op, right } => {
            let (v, s) = match (
                known(left, k),
                lit_str(right),
                known(right, k),
                lit_str(left),
            ) {
                (Some(v), Some(s), _, _) | (_, _, Some(v), Some(s)) => (v, s),
                _ => return None,
            };
            match op {
                CmpOp::Eq => Some(v == s),
                CmpOp::Ne => Some(v != s),
                _ => None,
            }
        }
        Expr::In {
            left,
            values,
            case_insensitive,
        } => {
            let v = known(left, k)?;
            let mut strs = Vec::new();
            for val in values {
                strs.push(lit_str(val)?);
            }
            Some(strs.iter().any(|s| eq(v, s, *case_insensitive)))
        }
        Expr::Like {
            left,
            patterns,
            case_insensitive,
        } => {
            let v = known(left, k)?;
            let mut any = false;
            for p in patterns {
                let Literal::Str(s) = &p.value else {
                    return None;
                };
                any |= WildcardPattern::new(s, *case_insensitive).is_match(v);
            }
            Some(any)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_files() -> Availability {
        Availability {
            file_events: Ok("test".into()),
            network_events: Ok("test".into()),
        }
    }

    fn without_files() -> Availability {
        Availability {
            file_events: Err("test".into()),
            network_events: Ok("test".into()),
        }
    }

    #[test]
    fn file_rules_need_file_events() {
        let q = r#"file where event.type != "deletion" and file.path like "/etc/ld.so.preload""#;
        let n = needs(q, &with_files()).expect("parses");
        assert_eq!(n.kinds, ["file:open", "file:creation", "file:rename"]);
        assert!(n.supported());
        let n = needs(q, &without_files()).expect("parses");
        assert!(!n.supported(), "{n:?}");
        assert!(n.describe().contains("not provided here"));
    }

    #[test]
    fn any_rules_name_both_categories() {
        let q = r#"any where container.id like "*" and (
            (event.category == "file" and event.type == "change" and event.action == "open" and file.path like "/x/*") or
            (event.category == "process" and event.type == "start" and event.action == "exec"))"#;
        let n = needs(q, &with_files()).expect("parses");
        assert_eq!(n.kinds, ["process:exec", "file:open"]);
        assert!(n.supported());
        assert!(!needs(q, &without_files()).expect("parses").supported());
    }

    #[test]
    fn process_start_rules_are_supported_without_forks() {
        let q = r#"process where event.type == "start" and process.name == "sh""#;
        let n = needs(q, &without_files()).expect("parses");
        assert_eq!(n.kinds, ["process:exec", "process:fork"]);
        assert!(n.supported());
        let end = needs(r#"process where event.type == "end""#, &without_files()).expect("parses");
        assert_eq!(end.kinds, ["process:end"]);
        assert!(end.supported());
    }

    #[test]
    fn network_rules_need_network_events_and_other_categories_are_never_supported() {
        let n = needs(r#"network where destination.port == 22"#, &with_files()).expect("parses");
        assert!(n.supported());
        assert_eq!(
            n.kinds,
            [
                "network:connection_attempted",
                "network:connection_accepted",
                "network:disconnect_received"
            ]
        );
        let q = r#"network where event.type == "start" and event.action == "connection_attempted""#;
        let n = needs(q, &with_files()).expect("parses");
        assert_eq!(n.kinds, ["network:connection_attempted"]);
        let no_net = Availability {
            network_events: Err("test".into()),
            ..with_files()
        };
        assert!(!needs(q, &no_net).expect("parses").supported());
        let n = needs(r#"registry where registry.path == "x""#, &with_files()).expect("parses");
        assert!(!n.supported());
        assert_eq!(n.foreign.as_deref(), Some("`registry` events"));
        let n = needs(r#"any where event.category == "dns""#, &with_files()).expect("parses");
        assert!(!n.supported());
    }
}
