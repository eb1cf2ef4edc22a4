//! In-process tests of the proxy against local upstreams (127.0.0.1 only) that have their
//! own test CA.

#![allow(clippy::disallowed_methods)] // test code may read the environment it was given

mod support;

mod auth;
mod injection;
mod lifecycle;
mod passthrough;
mod policy;
mod private;
mod reflection;
mod streaming;
mod upgrade;
