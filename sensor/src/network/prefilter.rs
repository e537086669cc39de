//! Which network events leave the kernel: derived from the loaded rules,
//! per action (`connection_attempted`, `connection_accepted`,
//! `disconnect_received`).
//!
//! An action no rule can match is not sent at all (`NET_WANT`). An action
//! every rule wanting it restricts to named processes (`process.name ==`,
//! `in`, `:`, `in~`, `like` without wildcards — what a busy web server's
//! accepts never are) is sent only for processes whose name the kernel
//! judged to pass it at their exec, the same per-process verdict the file
//! prefilter keeps (`FILE_FILTER_PROC_VERDICT`, one bit per network
//! action from `NET_PROC_OP_BASE`). Anything else passes every event of
//! the action, and `sensor rules check` / the start-up line name the rule
//! and why. A process with no verdict (older than the sensor, evicted)
//! passes: the filter never drops what it is unsure of.

use std::collections::BTreeSet;

use sensor_common::net::{net_op, net_proc_bit};

use crate::eql::parser::parse_statement;
use crate::rules::prefilter::{derive_query, named_reasons, statement_queries, Atom, Derived};
use crate::rules::sources::KINDS;

use super::hooks::NetWant;

/// The network actions, as the prefilter names them.
pub const ACTIONS: [(u32, &str); 3] = [
    (net_op::ATTEMPTED, "connection_attempted"),
    (net_op::ACCEPTED, "connection_accepted"),
    (net_op::CLOSED, "disconnect_received"),
];

/// One action's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    /// No rule can match it: never sent.
    Unwanted,
    /// Sent for processes named one of these (`Atom::Proc`, possibly
    /// folded).
    ByName(BTreeSet<Atom>),
    /// Sent always, because of these rules (name, why).
    PassAll(Vec<(String, String)>),
}

/// The network prefilter of a rule set, per action ([`ACTIONS`] order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPrefilter {
    pub actions: [ActionFilter; 3],
}

/// What one query needs of network events of the action `op`.
fn derive_action(query: &crate::eql::ast::Query, op: u32) -> Derived {
    let Some(kind) = KINDS.iter().find(|k| k.net_op == Some(op)) else {
        return Derived::Never;
    };
    match derive_query(query, kind) {
        Derived::Atoms(atoms) => {
            if atoms
                .iter()
                .all(|a| matches!(a.unfolded().0, Atom::Proc(_)))
            {
                Derived::Atoms(atoms)
            } else {
                Derived::PassAll {
                    reason: "a condition the kernel cannot check on network events".to_owned(),
                    file: false,
                }
            }
        }
        Derived::PassAll { .. } => Derived::PassAll {
            reason: "no condition on process.name is required".to_owned(),
            file: false,
        },
        Derived::Never => Derived::Never,
    }
}

impl NetPrefilter {
    /// From (rule name, query) pairs, single-event and sequence rules.
    pub fn from_queries<'a>(rules: impl IntoIterator<Item = (&'a str, &'a str)>) -> NetPrefilter {
        let mut actions: [ActionFilter; 3] = std::array::from_fn(|_| ActionFilter::Unwanted);
        for (name, query) in rules {
            let Ok(stmt) = parse_statement(query) else {
                continue; // refused at load; never evaluated
            };
            let queries = statement_queries(&stmt);
            for (slot, (op, _)) in actions.iter_mut().zip(ACTIONS) {
                for q in &queries {
                    match (&mut *slot, derive_action(q, op)) {
                        (_, Derived::Never) => {}
                        (ActionFilter::PassAll(v), Derived::PassAll { reason, .. }) => {
                            v.push((name.to_owned(), reason))
                        }
                        (ActionFilter::PassAll(_), Derived::Atoms(_)) => {}
                        (s, Derived::PassAll { reason, .. }) => {
                            *s = ActionFilter::PassAll(vec![(name.to_owned(), reason)])
                        }
                        (ActionFilter::ByName(set), Derived::Atoms(a)) => set.extend(a),
                        (s @ ActionFilter::Unwanted, Derived::Atoms(a)) => {
                            *s = ActionFilter::ByName(a)
                        }
                    }
                }
            }
        }
        NetPrefilter { actions }
    }

    /// The prefilter of a loaded rule set.
    pub fn from_rules(rules: &crate::rules::RuleSet) -> NetPrefilter {
        NetPrefilter::from_queries(rules.named_queries())
    }

    /// The actions to attach for.
    pub fn want(&self) -> NetWant {
        let mut want = NetWant::default();
        for ((op, _), a) in ACTIONS.iter().zip(&self.actions) {
            if *a != ActionFilter::Unwanted {
                want = want.union(NetWant(1 << op));
            }
        }
        want
    }

    /// The actions decided by process name (`NET_BY_NAME`: bit `1 << op`).
    pub fn by_name(&self) -> u32 {
        ACTIONS
            .iter()
            .zip(&self.actions)
            .filter(|(_, a)| matches!(a, ActionFilter::ByName(_)))
            .fold(0, |m, ((op, _), _)| m | (1 << op))
    }

    /// The process-name atoms and, for each, the verdict bit of every
    /// action it passes (`net_proc_bit`), for the file prefilter's
    /// process-name map.
    pub fn proc_bits(&self) -> Vec<(&Atom, u32)> {
        let mut out = Vec::new();
        for ((op, _), a) in ACTIONS.iter().zip(&self.actions) {
            if let ActionFilter::ByName(atoms) = a {
                out.extend(atoms.iter().map(|atom| (atom, net_proc_bit(*op))));
            }
        }
        out
    }

    /// The start-up line.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = ACTIONS
            .iter()
            .zip(&self.actions)
            .map(|((_, name), a)| match a {
                ActionFilter::Unwanted => format!("{name}: not needed"),
                ActionFilter::ByName(atoms) => {
                    format!("{name}: {} process names", atoms.len())
                }
                ActionFilter::PassAll(rules) if rules.is_empty() => format!("{name}: all"),
                ActionFilter::PassAll(rules) => {
                    format!("{name}: all, because of {}", named_reasons(rules))
                }
            })
            .collect();
        format!("network prefilter: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(name: &str) -> Atom {
        Atom::Proc(name.as_bytes().to_vec())
    }

    #[test]
    fn actions_no_rule_matches_are_not_wanted_and_names_restrict_the_rest() {
        let p = NetPrefilter::from_queries([(
            "shells",
            r#"network where event.type == "start" and event.action == "connection_attempted"
               and process.name in ("bash", "sh") and destination.ip != null"#,
        )]);
        assert_eq!(
            p.actions,
            [
                ActionFilter::ByName([proc("bash"), proc("sh")].into()),
                ActionFilter::Unwanted,
                ActionFilter::Unwanted
            ]
        );
        assert_eq!(p.want(), NetWant::ATTEMPTED);
        assert_eq!(p.by_name(), 1 << net_op::ATTEMPTED);
    }

    #[test]
    fn case_insensitive_names_fold_and_sequences_count_every_step() {
        let p = NetPrefilter::from_queries([(
            "seq",
            r#"sequence by process.entity_id
               [network where event.action in ("connection_attempted", "connection_accepted")
                  and process.name : ("BASH", "socat")]
               [process where event.action == "exec" and process.name == "bash"]"#,
        )]);
        let folded: BTreeSet<Atom> = [proc("bash").folded(), proc("socat").folded()].into();
        assert_eq!(p.actions[0], ActionFilter::ByName(folded.clone()));
        assert_eq!(p.actions[1], ActionFilter::ByName(folded));
        assert_eq!(p.actions[2], ActionFilter::Unwanted);
    }

    #[test]
    fn a_rule_without_a_name_condition_passes_its_actions_and_is_named() {
        let p = NetPrefilter::from_queries([
            ("names", r#"network where process.name == "nc""#),
            (
                "ports",
                r#"network where event.type == "start" and destination.port == 10250"#,
            ),
        ]);
        let why = "no condition on process.name is required".to_owned();
        assert_eq!(
            p.actions[0],
            ActionFilter::PassAll(vec![("ports".to_owned(), why.clone())])
        );
        assert_eq!(
            p.actions[1],
            ActionFilter::PassAll(vec![("ports".to_owned(), why)])
        );
        assert_eq!(p.actions[2], ActionFilter::ByName([proc("nc")].into()));
        assert_eq!(p.by_name(), 1 << net_op::CLOSED);
        assert!(p.summary().contains(
            "connection_attempted: all, because of \"ports\" (no condition on process.name is required)"
        ));
    }

    #[test]
    fn process_rules_want_no_network_event() {
        let p = NetPrefilter::from_queries([(
            "exec",
            r#"process where event.type == "start" and process.name == "sh""#,
        )]);
        assert!(p.want().none());
    }
}
