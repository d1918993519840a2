//! Storage backends: opening one by location through
//! [`strongroom_host::storage::HostStorage`], and closing it.

use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;
use strongroom::Strongroom;
use strongroom_host::storage::HostStorage;

use crate::to_js;

/// A storage backend that stores can be opened on.
#[napi]
pub struct NativeStorage {
    pub(crate) host: HostStorage,
}

#[napi]
impl NativeStorage {
    /// A fresh in-memory storage.
    #[napi(factory)]
    pub fn memory() -> Self {
        Self {
            host: HostStorage::memory(),
        }
    }

    /// Closes the backend: an SQLite file's change watcher, connections
    /// and writer thread (queued writes committed, the WAL checkpointed),
    /// a PostgreSQL store's pool and change listener. Later calls on it
    /// fail with a storage error of kind `Unavailable`. Nothing to do for
    /// memory.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let host = self.host.clone();
        env.spawn_future(async move {
            host.close().await;
            Ok(())
        })
    }

    /// The backend's name ("memory", "sqlite", "postgres").
    #[napi(getter)]
    pub fn backend(&self) -> String {
        self.host.backend().to_owned()
    }

    /// Whether the storage already holds a store.
    #[napi]
    pub fn is_initialized<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let storage = self.host.storage().clone();
        env.spawn_future(async move { Strongroom::is_initialized(&storage).await.map_err(to_js) })
    }
}

/// Opens the storage at `location`: `"memory:"` (or `":memory:"`) for a
/// fresh in-memory one, a `postgres://` URL, `sqlite:<path>` or a plain
/// path (an SQLite file, created if missing).
#[napi]
pub fn open_storage(env: &Env, location: String) -> napi::Result<PromiseRaw<'_, NativeStorage>> {
    env.spawn_future(async move {
        let host = if location == ":memory:" {
            HostStorage::memory()
        } else {
            HostStorage::open(&location).await.map_err(to_js)?
        };
        Ok(NativeStorage { host })
    })
}
