//! Sources: where blocks come from and where they go.
//!
//! Every source sits behind [`BlockSource`], so operations never care whether
//! bytes came from the embedded store, a CAR file, a Kubo node or a gateway.
//! Every source verifies each block against its CID before handing it on.

pub mod store;
