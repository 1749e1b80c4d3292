//! The signed registry index.
