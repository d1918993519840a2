//! Alerts on unusual access: rules evaluated on the audit stream.
