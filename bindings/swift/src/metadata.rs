//! Metadata changes and the inventory: conversion over
//! `strongroom_host::{metadata, inventory}` (the checks and the filters the
//! CLI and every binding share).

use std::collections::HashMap;
use std::time::Duration;

use strongroom_host::inventory::{InventoryEntry as HostEntry, InventoryFilter as HostFilter};
use strongroom_host::metadata::MetadataUpdate as HostUpdate;

use crate::Strongroom;
use crate::errors::Result;
use crate::store::{Handle, SecretMetadata};

/// What to change in a secret's metadata: fields left nil keep their
/// value; `clear` names fields to reset (`owner`, `environment`, `tags`,
/// `custom`, `rotation_interval`, `max_versions`). An unknown name, or a
/// field both set and cleared, fails with `InvalidArgument`.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct MetadataUpdate {
    /// New owner.
    #[uniffi(default = None)]
    pub owner: Option<String>,
    /// New environment.
    #[uniffi(default = None)]
    pub environment: Option<String>,
    /// New tag set (replaces the old one).
    #[uniffi(default = None)]
    pub tags: Option<Vec<String>>,
    /// New custom key-values (replace the old ones; never secrets).
    #[uniffi(default = None)]
    pub custom: Option<HashMap<String, String>>,
    /// New rotation interval (ms).
    #[uniffi(default = None)]
    pub rotation_interval_ms: Option<u64>,
    /// New version limit; lowering it prunes the oldest versions at once.
    #[uniffi(default = None)]
    pub max_versions: Option<u32>,
    /// Fields to reset.
    #[uniffi(default = [])]
    pub clear: Vec<String>,
}

impl MetadataUpdate {
    fn patch(self) -> Result<strongroom::secrets::MetadataPatch> {
        Ok(HostUpdate {
            owner: self.owner,
            environment: self.environment,
            tags: self.tags.map(|t| t.into_iter().collect()),
            custom: self.custom.map(|c| c.into_iter().collect()),
            rotation_interval: self.rotation_interval_ms.map(Duration::from_millis),
            max_versions: self.max_versions,
            clear: self.clear,
        }
        .into_patch()?)
    }
}

/// Which secrets an inventory keeps (every field empty: all).
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct InventoryFilter {
    /// Only secrets with this owner.
    #[uniffi(default = None)]
    pub owner: Option<String>,
    /// Only secrets in this environment.
    #[uniffi(default = None)]
    pub environment: Option<String>,
    /// Only secrets carrying every one of these tags.
    #[uniffi(default = [])]
    pub tags: Vec<String>,
    /// Only secrets whose rotation is overdue.
    #[uniffi(default = false)]
    pub overdue: bool,
    /// Only secrets not read for at least this long (ms), by the audit
    /// file; never read counts as not read.
    #[uniffi(default = None)]
    pub unread_for_ms: Option<u64>,
}

/// One secret of an inventory.
#[derive(Debug, Clone, uniffi::Record)]
pub struct InventoryEntry {
    /// Its metadata.
    pub metadata: SecretMetadata,
    /// Whether its rotation is overdue now.
    pub rotation_overdue: bool,
    /// Its last successful value read in the audit file (ms since the
    /// epoch; nil: none found, or no file given).
    pub last_read_ms: Option<u64>,
}

impl From<HostEntry> for InventoryEntry {
    fn from(e: HostEntry) -> Self {
        Self {
            rotation_overdue: e.rotation_overdue,
            last_read_ms: e.last_read.map(|t| t.as_millis()),
            metadata: e.metadata.into(),
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Strongroom {
    /// Changes the metadata of the secret at `path` (unchecked) and returns
    /// the result.
    pub async fn update_secret_metadata(
        &self,
        path: String,
        update: MetadataUpdate,
    ) -> Result<SecretMetadata> {
        let patch = update.patch()?;
        Ok(self
            .core
            .secrets()
            .update_metadata(&path, patch)
            .await?
            .into())
    }

    /// Every secret under `prefix` with its metadata, rotation state and,
    /// given the store's audit file (verified first: an edited file fails
    /// with `AuditChainBroken`), its last read; filtered by `filter`.
    /// Values are never read.
    #[uniffi::method(default(audit_file = None, filter = None))]
    pub async fn inventory(
        &self,
        prefix: String,
        audit_file: Option<String>,
        filter: Option<InventoryFilter>,
    ) -> Result<Vec<InventoryEntry>> {
        let f = filter.unwrap_or_default();
        let filter = HostFilter {
            owner: f.owner,
            environment: f.environment,
            tags: f.tags.into_iter().collect(),
            overdue: f.overdue,
            unread_for: f.unread_for_ms.map(Duration::from_millis),
        };
        let entries = strongroom_host::inventory::collect(
            &self.core,
            &prefix,
            audit_file.as_deref().map(std::path::Path::new),
            &filter,
        )
        .await?;
        Ok(entries.into_iter().map(Into::into).collect())
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Handle {
    /// Changes the metadata of the secret at `path` (needs `update`;
    /// audited).
    pub async fn update_metadata(
        &self,
        path: String,
        update: MetadataUpdate,
    ) -> Result<SecretMetadata> {
        let patch = update.patch()?;
        Ok(self.inner.update_metadata(&path, patch).await?.into())
    }
}
