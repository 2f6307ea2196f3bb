//! `permgate demo`: everything needed to try the gateway in one process.
//!
//! [`api`] is the example upstream, an in-memory credential API the
//! gateway is put in front of. It is deliberately independent of the
//! gateway code: it only speaks HTTP, like any real upstream would.

pub mod api;
