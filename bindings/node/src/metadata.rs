//! Metadata changes and the inventory: conversion over
//! [`strongroom_host::metadata`] and [`strongroom_host::inventory`] (the
//! checks and filters the CLI and every binding share).

use std::collections::HashMap;
use std::path::PathBuf;

use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;
use strongroom_host::inventory::{InventoryEntry, InventoryFilter};
use strongroom_host::metadata::MetadataUpdate;

use crate::{
    NativeSecretMetadata, NativeSecrets, NativeStrongroom, Target, duration_ms, invalid, ms, to_js,
};

/// What to change in a secret's metadata: fields left out keep their
/// value; `clear` names fields to reset (`owner`, `environment`, `tags`,
/// `custom`, `rotation_interval`, `max_versions`).
#[napi(object)]
pub struct NativeMetadataUpdate {
    /// New owner.
    pub owner: Option<String>,
    /// New environment.
    pub environment: Option<String>,
    /// New tag set (replaces the old one).
    pub tags: Option<Vec<String>>,
    /// New custom key-values (replace the old ones; never secrets).
    pub custom: Option<HashMap<String, String>>,
    /// New rotation interval (ms).
    pub rotation_interval_ms: Option<f64>,
    /// New version limit; lowering it prunes the oldest versions at once.
    pub max_versions: Option<f64>,
    /// Fields to reset.
    pub clear: Option<Vec<String>>,
}

impl NativeMetadataUpdate {
    fn into_host(self) -> napi::Result<MetadataUpdate> {
        let max_versions = match self.max_versions {
            None => None,
            Some(v) if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) => {
                Some(v as u32)
            }
            Some(v) => {
                return Err(invalid(format!(
                    "maxVersions must be an integer between 0 and 2^32-1, got {v}"
                )));
            }
        };
        Ok(MetadataUpdate {
            owner: self.owner,
            environment: self.environment,
            tags: self.tags.map(|t| t.into_iter().collect()),
            custom: self.custom.map(|c| c.into_iter().collect()),
            rotation_interval: self
                .rotation_interval_ms
                .map(|v| duration_ms("rotationIntervalMs", v))
                .transpose()?,
            max_versions,
            clear: self.clear.unwrap_or_default(),
        })
    }
}

#[napi]
impl NativeSecrets {
    /// Changes the metadata of the secret at `path` (through a principal's
    /// handle: needs `update`, audited) and resolves to the result.
    #[napi]
    pub fn update_metadata<'env>(
        &self,
        env: &'env Env,
        path: String,
        update: NativeMetadataUpdate,
    ) -> napi::Result<PromiseRaw<'env, NativeSecretMetadata>> {
        let t = self.target()?;
        let patch = update.into_host()?.into_patch().map_err(to_js)?;
        env.spawn_future(async move {
            match &t {
                Target::Store(s) => {
                    let store = s
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .secrets();
                    store.update_metadata(&path, patch).await
                }
                Target::Handle(h) => h.update_metadata(&path, patch).await,
            }
            .map(Into::into)
            .map_err(to_js)
        })
    }
}

/// Which secrets an inventory keeps (every field left out: all).
#[napi(object)]
pub struct NativeInventoryFilter {
    /// The store's audit file, for last reads (verified first).
    pub audit_file: Option<String>,
    /// Only secrets with this owner.
    pub owner: Option<String>,
    /// Only secrets in this environment.
    pub environment: Option<String>,
    /// Only secrets carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// Only secrets whose rotation is overdue.
    pub overdue: Option<bool>,
    /// Only secrets not read for at least this long (ms), by the audit
    /// file; never read counts as not read.
    pub unread_for_ms: Option<f64>,
}

/// One secret of an inventory.
#[napi(object)]
pub struct NativeInventoryEntry {
    /// Its metadata.
    pub metadata: NativeSecretMetadata,
    /// Whether its rotation is overdue now.
    pub rotation_overdue: bool,
    /// Its last successful value read in the audit file (ms; none found or
    /// no file given: absent).
    pub last_read_ms: Option<f64>,
}

impl From<InventoryEntry> for NativeInventoryEntry {
    fn from(e: InventoryEntry) -> Self {
        Self {
            rotation_overdue: e.rotation_overdue,
            last_read_ms: e.last_read.map(ms),
            metadata: e.metadata.into(),
        }
    }
}

#[napi]
impl NativeStrongroom {
    /// Every secret under `prefix` with its metadata, rotation state and,
    /// given the store's audit file, its last read; filtered. Values are
    /// never read.
    #[napi]
    pub fn inventory<'env>(
        &self,
        env: &'env Env,
        prefix: String,
        filter: Option<NativeInventoryFilter>,
    ) -> napi::Result<PromiseRaw<'env, Vec<NativeInventoryEntry>>> {
        let door = self.handle()?;
        let (audit_file, filter) = match filter {
            None => (None, InventoryFilter::default()),
            Some(f) => (
                f.audit_file.map(PathBuf::from),
                InventoryFilter {
                    owner: f.owner,
                    environment: f.environment,
                    tags: f.tags.unwrap_or_default().into_iter().collect(),
                    overdue: f.overdue.unwrap_or(false),
                    unread_for: f
                        .unread_for_ms
                        .map(|v| duration_ms("unreadForMs", v))
                        .transpose()?,
                },
            ),
        };
        env.spawn_future(async move {
            let entries =
                strongroom_host::inventory::collect(&door, &prefix, audit_file.as_deref(), &filter)
                    .await
                    .map_err(to_js)?;
            Ok(entries.into_iter().map(Into::into).collect())
        })
    }
}
