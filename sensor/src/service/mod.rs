//! The service around the data flow: settings ([`config`]), the live
//! sensor's start → run → shutdown ([`live`]), its metrics and health
//! endpoint ([`metrics`]), the capabilities it needs ([`privileges`]), and offline replay of ECS JSON through the same
//! rules and writers ([`replay`]).

pub mod config;
pub mod http;
pub mod live;
pub mod metrics;
pub mod privileges;
pub mod replay;
pub mod rule_metrics;
