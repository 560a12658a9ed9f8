//! What the Rust functions and the infrastructure must agree on (`infra/contract.json`): each
//! environment variable with its default and range, each metric and its dimensions, the
//! operations each function calls, and the settings CDK and Terraform share. Rust tests, the CDK
//! tests and the Terraform tests all read the one file.

/// `infra/contract.json`, which the infrastructure's tests read too.
pub const CONTRACT_JSON: &str = include_str!("../../infra/contract.json");
