//! Configuration as code: a declared state of policies, principals and
//! secret metadata, planned against the store and applied in one step.
