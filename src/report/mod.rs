//! Reports: every output format, computed from a [`crate::sweep::SweepReport`] alone.
