//! Sealed records as a principal: [`Handle::put_sealed`] and
//! [`Handle::get_sealed`].

use super::gate::{self, admit, change, conclude};
use crate::audit::Operation;
use crate::policy::Capability;
use crate::seal::SealContext;
use crate::{Handle, Result, SecretBytes};

impl Handle {
    /// Stores `plaintext` sealed at storage key `key` (under
    /// [`SEALED_PREFIX`](crate::SEALED_PREFIX)), bound to `context`, as this
    /// principal: checked for `create` and `update` on the context's path
    /// (whether the record exists or not), the intent audited (operation
    /// `write`, the path and version) before it is stored, the outcome
    /// after. See the [module docs](super).
    #[tracing::instrument(name = "Handle::put_sealed", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn put_sealed(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        let event = gate::event(self, Operation::Write)?
            .with_path(context.path())
            .with_version(context.version());
        admit(
            self,
            &event,
            context.path(),
            &[Capability::Create, Capability::Update],
        )
        .await?;
        let sr = self.strongroom();
        change(self, event, sr.put_sealed(key, plaintext, context), |_| {
            None
        })
        .await
    }

    /// Reads and opens the sealed record at `key` for `context` as this
    /// principal: checked for `read` on the context's path, and the value
    /// handed out only once its record (operation `read`) is accepted.
    #[tracing::instrument(name = "Handle::get_sealed", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn get_sealed(
        &self,
        key: &str,
        context: &SealContext<'_>,
    ) -> Result<Option<SecretBytes>> {
        let event = gate::event(self, Operation::Read)?
            .with_path(context.path())
            .with_version(context.version());
        admit(self, &event, context.path(), &[Capability::Read]).await?;
        let result = self.strongroom().get_sealed(key, context).await;
        conclude(self, event, result, |ev, _| ev).await
    }
}
