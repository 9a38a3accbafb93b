//! Client helpers for applications that use a KMS (ferrokms or AWS KMS) through `aws-sdk-kms`.
//!
//! - [`resolve`]: alias → key ARN and `DescribeKey` metadata, cached with a TTL.
//! - [`batch`]: validating the keys of many resources at once, one `DescribeKey` and one
//!   `GetKeyPolicy` per distinct key per batch.
//! - [`envelope`]: envelope encryption of data of any size in the AWS Encryption SDK message
//!   format, streaming.

pub mod batch;
pub mod envelope;
pub mod resolve;
