//! The kinds of event the sensor produces, declared once: each [`Action`]
//! with its `event.category`, `event.type` and `event.action`, whether the
//! rules see it, and the kernel file operation it comes from. The rules'
//! source check (`rules::sources::KINDS`) and the file prefilter's
//! operations (`rules::prefilter::OPS`) are derived from this table.

use sensor_common::file_op;
use sensor_common::net::net_op;

macro_rules! actions {
    (
        $(
            $(#[$doc:meta])*
            $variant:ident => $category:literal, $type:literal, $action:literal,
                evaluated: $evaluated:literal, file_op: $file_op:expr, net_op: $net_op:expr;
        )+
    ) => {
        /// What kind of event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $($(#[$doc])* $variant,)+
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: [Action; [$(Action::$variant),+].len()] = [$(Action::$variant),+];

            /// `event.action`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $action,)+
                }
            }

            /// `event.type`.
            pub const fn event_type(self) -> &'static str {
                match self {
                    $(Action::$variant => $type,)+
                }
            }

            /// `event.category`.
            pub const fn category(self) -> &'static str {
                match self {
                    $(Action::$variant => $category,)+
                }
            }

            /// `category:action`, as reports name a kind.
            pub const fn source(self) -> &'static str {
                match self {
                    $(Action::$variant => concat!($category, ":", $action),)+
                }
            }

            /// Seen by the rules (fork events are only written, with
            /// `--lifecycle-events`).
            pub const fn evaluated(self) -> bool {
                match self {
                    $(Action::$variant => $evaluated,)+
                }
            }

            /// The kernel file operation (`sensor_common::file_op`) this
            /// action reports, for file events.
            pub const fn file_op(self) -> Option<u32> {
                match self {
                    $(Action::$variant => $file_op,)+
                }
            }

            /// The kernel network operation (`sensor_common::net::net_op`)
            /// this action reports, for network events.
            pub const fn net_op(self) -> Option<u32> {
                match self {
                    $(Action::$variant => $net_op,)+
                }
            }
        }
    };
}

actions! {
    Exec => "process", "start", "exec", evaluated: true, file_op: None, net_op: None;
    Fork => "process", "start", "fork", evaluated: false, file_op: None, net_op: None;
    End => "process", "end", "end", evaluated: true, file_op: None, net_op: None;
    /// A process that was not interactive when it started (its exec, or
    /// the sensor's /proc read) now has its controlling terminal on stdin
    /// and stderr, seen when it starts a child. A web server does not do
    /// that on its own: it is what `setsid` plus a pty in a compromised
    /// server looks like. `event.type: change`.
    BecameInteractive => "process", "change", "became_interactive", evaluated: true, file_op: None, net_op: None;
    /// File events, as Defend for Containers names them: an existing file
    /// opened for writing (`open`, type `change`), a file created
    /// (`creation`), deleted (`deletion`), renamed (`rename`, type
    /// `change`).
    FileOpen => "file", "change", "open", evaluated: true, file_op: Some(file_op::OPEN_WRITE), net_op: None;
    FileCreation => "file", "creation", "creation", evaluated: true, file_op: Some(file_op::CREATE), net_op: None;
    FileDeletion => "file", "deletion", "deletion", evaluated: true, file_op: Some(file_op::DELETE), net_op: None;
    FileRename => "file", "change", "rename", evaluated: true, file_op: Some(file_op::RENAME), net_op: None;
    /// Network events, as Elastic Defend names them: a TCP connection the
    /// process started (`connection_attempted`, type `start`), one it
    /// accepted (`connection_accepted`, type `start`), and the end of
    /// either (`disconnect_received`, type `end`).
    ConnectionAttempted => "network", "start", "connection_attempted", evaluated: true, file_op: None, net_op: Some(net_op::ATTEMPTED);
    ConnectionAccepted => "network", "start", "connection_accepted", evaluated: true, file_op: None, net_op: Some(net_op::ACCEPTED);
    DisconnectReceived => "network", "end", "disconnect_received", evaluated: true, file_op: None, net_op: Some(net_op::CLOSED);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_tables() {
        assert_eq!(Action::ALL.len(), 11);
        assert_eq!(Action::DisconnectReceived.event_type(), "end");
        assert_eq!(Action::ConnectionAccepted.net_op(), Some(net_op::ACCEPTED));
        assert_eq!(
            Action::BecameInteractive.source(),
            "process:became_interactive"
        );
        assert_eq!(Action::FileOpen.event_type(), "change");
        assert_eq!(Action::FileDeletion.category(), "file");
        assert_eq!(Action::FileRename.file_op(), Some(file_op::RENAME));
        assert!(!Action::Fork.evaluated());
    }
}
