//! Integration tests: real HTTP over loopback, each test with its own server on port 0.
//! Timing bounds are generous (shared 2-core machines); counts are exact.

mod common;

mod endpoints;
mod faults;
mod fidelity;
mod knobs;
mod pacing;
mod stats;
mod streaming;
