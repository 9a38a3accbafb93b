//! Key resolution with a cache (to be written).
