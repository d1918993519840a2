"""The blocking API: the same methods as :class:`strongroom.Strongroom`,
returning results instead of awaitables. Each call releases the GIL while it
runs on the extension's runtime, so other Python threads keep going."""

from ._native import AlreadyInitialized  # made from the error table at import
from ._native import BlockingApiKeyRotation as ApiKeyRotation
from ._native import BlockingApprovals as Approvals
from ._native import BlockingCredentialFeed as CredentialFeed
from ._native import BlockingDynamicPg as DynamicPg
from ._native import BlockingHandle as Handle
from ._native import BlockingLeaseManager as LeaseManager
from ._native import BlockingPgRotation as PgRotation
from ._native import BlockingPki as Pki
from ._native import BlockingSigningHandle as SigningHandle
from ._native import BlockingStrongroom as Strongroom

__all__ = ["ApiKeyRotation", "Approvals", "CredentialFeed", "DynamicPg", "Handle", "LeaseManager", "PgRotation", "Pki", "SigningHandle", "Strongroom", "open"]


def open(path, *, key_file=None, key=None) -> Strongroom:
    """Blocking form of :func:`strongroom.open`."""
    from . import _protector, _storage

    storage, protector = _storage(path), _protector(key_file, key)
    if not storage.is_initialized():
        try:
            return Strongroom.init(storage, protector)
        except AlreadyInitialized:
            pass
    return Strongroom.unseal(storage, protector)
