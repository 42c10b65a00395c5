//! Run-time control of the integrations (CONTRACT.md section 6): the live
//! registry changed by the admin API and by reloads ([`live`]), saved into the
//! config file ([`persist`]) or the shared store ([`keep`]), the reload triggers
//! ([`reload`]), and the shared store's announcements ([`follow`]).
pub mod follow;
pub mod keep;
pub mod live;
pub mod persist;
pub mod reload;
