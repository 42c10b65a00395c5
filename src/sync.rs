//! The one rule for locking a `std::sync::Mutex` here: a panic while it was
//! held leaves data that is still consistent (counters, maps of in-flight
//! work, each updated in one step), so a poisoned lock is taken, not
//! propagated as a second panic.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking it even when poisoned.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
