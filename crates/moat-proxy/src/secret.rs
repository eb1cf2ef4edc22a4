//! The proxy holds its token and the grants' credentials as the workspace's one
//! [`moat_secret::Secret`].

pub use moat_secret::Secret;
