//! Envelope encryption in the AWS Encryption SDK message format (to be written).
