"""Strongroom: sealed values under a versioned keyring, from Python.

The asyncio API is :class:`Strongroom` (methods return awaitables); the
blocking API with the same methods is :class:`strongroom.blocking.Strongroom`.
Both run on a tokio runtime owned by the extension module and release the GIL
while they encrypt, decrypt or touch storage.
"""

from ._native import (
    AlreadyInitialized,
    AuditChainBroken,
    AuditError,
    AuditLog,
    AuditReport,
    Handle,
    NotFound,
    Policy,
    SecretMetadata,
    VersionDeleted,
    VersionDestroyed,
    VersionInfo,
    verify_audit_file,
    CasConflict,
    CorruptRecord,
    DecryptionFailed,
    InvalidArgument,
    InvalidKeyTransition,
    InvalidPath,
    KeyFileError,
    KeyInfo,
    KeyInUse,
    KeyVersionRetired,
    LeaseError,
    LeaseExpired,
    MalformedSealedValue,
    NotInitialized,
    PolicyDenied,
    PolicyError,
    ProtectorError,
    RandomFailed,
    RewrapReport,
    RotationError,
    Sealed,
    Secret,
    SecretStoreError,
    ShamirError,
    SoftwareProtector,
    Storage,
    StorageConflict,
    StorageError,
    Strongroom,
    StrongroomError,
    UnknownKeyVersion,
    UnsealFailed,
    __version__,
    open_sealed,
    seal_with_key,
    sealed_key_version,
)
from . import blocking


def _protector(key_file, key):
    if (key_file is None) == (key is None):
        raise InvalidArgument("give exactly one of key_file= or key=")
    if key_file is not None:
        return SoftwareProtector.from_key_file(key_file)
    return SoftwareProtector.from_key(key)


def _storage(path):
    return Storage.memory() if str(path) == ":memory:" else Storage.sqlite(path)


async def open(path, *, key_file=None, key=None) -> Strongroom:
    """Opens the store at `path` (an SQLite file, or ":memory:"), creating it
    on first use, with a software root key from `key_file` or `key`."""
    storage, protector = _storage(path), _protector(key_file, key)
    if not storage.is_initialized():
        try:
            return await Strongroom.init(storage, protector)
        except AlreadyInitialized:
            pass  # another process created it first
    return await Strongroom.unseal(storage, protector)

__all__ = [
    "AlreadyInitialized",
    "AuditChainBroken",
    "AuditError",
    "AuditLog",
    "AuditReport",
    "Handle",
    "NotFound",
    "Policy",
    "SecretMetadata",
    "VersionDeleted",
    "VersionDestroyed",
    "VersionInfo",
    "verify_audit_file",
    "CasConflict",
    "CorruptRecord",
    "DecryptionFailed",
    "InvalidArgument",
    "InvalidKeyTransition",
    "InvalidPath",
    "KeyFileError",
    "KeyInfo",
    "KeyInUse",
    "KeyVersionRetired",
    "LeaseError",
    "LeaseExpired",
    "MalformedSealedValue",
    "NotInitialized",
    "PolicyDenied",
    "PolicyError",
    "ProtectorError",
    "RandomFailed",
    "RewrapReport",
    "RotationError",
    "Sealed",
    "Secret",
    "SecretStoreError",
    "ShamirError",
    "SoftwareProtector",
    "Storage",
    "StorageConflict",
    "StorageError",
    "Strongroom",
    "StrongroomError",
    "UnknownKeyVersion",
    "UnsealFailed",
    "__version__",
    "blocking",
    "open",
    "open_sealed",
    "seal_with_key",
    "sealed_key_version",
]
