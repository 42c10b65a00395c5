//! Run-time control of the integrations: saving them into the config file ([`persist`]).
pub mod persist;
