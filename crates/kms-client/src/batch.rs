//! Batch key validation (to be written).
