//! Run-time control of the integrations (CONTRACT.md section 6): the live
//! registry changed by the admin API and by reloads ([`live`]), saved into the
//! config file ([`persist`]), and the reload triggers ([`reload`]).
pub mod live;
pub mod persist;
pub mod reload;
