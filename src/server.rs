//! The media listener.
