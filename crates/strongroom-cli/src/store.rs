//! Opening a store from a command's arguments: the SQLite file or the
//! PostgreSQL database, unsealed with the protector given.

use strongroom::{Options, Strongroom};

use strongroom::dangerous::Door;

use crate::args::StoreArgs;
use crate::backend::{self, Backend};
use crate::exit::{CliResult, Failure};
use crate::protectors::{Unsealer, store_protector};

/// The caller name of the CLI's door to unchecked access (its
/// `dangerous_open` record goes to tracing; every command is audited to the
/// operator's file).
pub(crate) const CALLER: &str = "cli";

/// An unsealed store over its SQLite file or PostgreSQL database.
pub(crate) struct Open {
    /// Through the door to unchecked access: the CLI authorises and
    /// audits each command itself, as its operator.
    pub(crate) sr: Door,
    backend: Backend,
    pub(crate) protector: Unsealer,
}

impl Open {
    /// Opens `--db` (which must exist) and unseals it with the protector
    /// given. `stdin_free`: whether the PIN may be read from stdin.
    pub(crate) async fn unseal(a: &StoreArgs, stdin_free: bool) -> CliResult<Self> {
        if backend::postgres_url(&a.db).is_none() && !a.db.exists() {
            return Err(Failure::NoDatabase(a.db.clone()));
        }
        let protector = store_protector(a, stdin_free).await?;
        let backend = Backend::open_for_use(&a.db, a.read_only).await?;
        let storage = backend.storage();
        let opened = async {
            Strongroom::unseal(storage, protector.as_dyn(), Options::default())
                .await?
                .dangerous_traced(CALLER)
                .await
        };
        match opened.await {
            Ok(sr) => Ok(Self {
                sr,
                backend,
                protector,
            }),
            Err(e) => {
                backend.close().await;
                Err(e.into())
            }
        }
    }

    /// Seals the store and closes its file or connections.
    pub(crate) async fn close(self) {
        self.sr.seal();
        self.backend.close().await;
    }
}
