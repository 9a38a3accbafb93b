//! The invariants the fuzz targets check, one module per parser of untrusted input.
//!
//! The modules under `checks/` are also compiled into the workspace's regression tests (with
//! `#[path]`), so that every input kept in `fuzz/regressions/` and `fuzz/seeds/` is replayed by
//! plain `cargo test` on the stable toolchain.

pub mod checks {
    pub mod blob;
    pub mod json_request;
    pub mod policy;
    pub mod sigv4_headers;
}
