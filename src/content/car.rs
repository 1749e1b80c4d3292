//! CAR files: CARv1 read and write, CARv2 read.
//!
//! TODO(car): implement.
