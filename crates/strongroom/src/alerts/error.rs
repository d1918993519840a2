//! The alert module's errors.

/// Why an alert configuration or engine could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The TOML text is not a valid alert configuration.
    #[error("alert configuration is not valid TOML for alert rules: {0}")]
    Toml(String),
    /// A setting is out of range or inconsistent.
    #[error("alert rule {rule}: {reason}")]
    InvalidRule {
        /// The rule's configuration name (`read_rate`, `limits`, ...).
        rule: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// [`AlertEngine::start`](super::AlertEngine::start) was called outside
    /// a tokio runtime (it spawns its delivery task).
    #[error(
        "the alert engine must be started inside a tokio runtime (it spawns its delivery task)"
    )]
    NoRuntime,
}
