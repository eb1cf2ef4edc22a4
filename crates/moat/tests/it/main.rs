//! End-to-end tests: the built `moat` binary against the real Docker daemon, each test in
//! its own `MOAT_HOME` and workspace.

#![allow(clippy::disallowed_methods)] // test code may read the environment it was given

mod architecture;
mod audit;
mod claude;
mod cleanup;
mod config;
mod deps;
mod doctor;
mod egress;
mod errors;
mod fake_upstream;
mod faults;
mod firsthour;
mod grant;
mod grants;
mod harness;
mod input;
mod interactive;
mod lifecycle;
mod logs;
mod mcp;
mod mirrors;
mod plugins;
mod run;
mod sandbox;
mod snapshots;
mod ssh;
mod streams;
mod terminal;
