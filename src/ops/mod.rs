//! Operations: every major operation is implemented here; each CLI command is a
//! thin wrapper around one of them.
