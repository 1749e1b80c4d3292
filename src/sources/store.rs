//! The embedded block store. TODO(lead): implement.
