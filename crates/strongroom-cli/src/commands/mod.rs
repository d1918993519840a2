//! One file per group of commands; each function runs one command from its
//! parsed arguments, acting as the operator (see `operator`).

pub(crate) mod approval;
pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod creds;
pub(crate) mod declarative;
pub(crate) mod import;
pub(crate) mod init;
pub(crate) mod inventory;
pub(crate) mod keys;
pub(crate) mod leases;
pub(crate) mod pki;
pub(crate) mod policy;
pub(crate) mod run;
pub(crate) mod secrets;
pub(crate) mod signing;
