"""Strongroom: sealed values under a versioned keyring, from Python.

The asyncio API is :class:`Strongroom` (methods return awaitables); the
blocking API with the same methods is :class:`strongroom.blocking.Strongroom`.
Both run on a tokio runtime owned by the extension module and release the GIL
while they encrypt, decrypt or touch storage.
"""

from . import _native
from ._native import (
    Alert,
    AlertEngine,
    ApiKeyRotation,
    ApprovalGates,
    ApprovalRequest,
    Approvals,
    Gate,
    CaCertificate,
    Credential,
    Crl,
    EthSignature,
    IssuedCertificate,
    Pki,
    PublicKey,
    RateLimit,
    Signature,
    SigningHandle,
    SigningKeyInfo,
    DueReport,
    Lease,
    LeaseEvent,
    LeaseEvents,
    LeaseManager,
    ManualClock,
    Matched,
    Pkcs11Protector,
    PrefixRevocation,
    RotationReport,
    RotationStatus,
    Staged,
    AuditLog,
    AuditReport,
    Handle,
    Policy,
    SecretMetadata,
    VersionInfo,
    verify_audit_file,
    KeyInfo,
    RewrapReport,
    Secret,
    SoftwareProtector,
    ShamirProtector,
    PgRotation,
    DynamicPg,
    DynamicLogin,
    configure_pg_catalog,
    InventoryEntry,
    CredentialFeed,
    PgLogin,
    AfterError,
    shamir_split,
    shamir_combine,
    Storage,
    Strongroom,
    __version__,
    open_sealed,
    seal_with_key,
    sealed_key_version,
    ERROR_CODES,
    ERROR_CLASSES,
)

# The exception classes: made by the extension from the core's error table
# (ERROR_CODES, one row per code; docs/ERRORS.md), plus StrongroomError,
# Closed and the old names kept as aliases (SecretStoreError, CasConflict,
# NotFound, VersionDeleted, VersionDestroyed).
for _name in ERROR_CLASSES:
    globals()[_name] = getattr(_native, _name)
del _name

from . import blocking


def _protector(key_file, key):
    if (key_file is None) == (key is None):
        raise _native.InvalidArgument("give exactly one of key_file= or key=")
    if key_file is not None:
        return SoftwareProtector.from_key_file(key_file)
    return SoftwareProtector.from_key(key)


def _storage(path):
    return Storage.memory() if str(path) == ":memory:" else Storage.open(str(path))


async def open(path, *, key_file=None, key=None) -> Strongroom:
    """Opens the store at `path` (an SQLite file, ":memory:", "memory:", or a
    ``postgres://`` URL), creating it on first use, with a software root key
    from `key_file` or `key`."""
    storage, protector = _storage(path), _protector(key_file, key)
    if not storage.is_initialized():
        try:
            return await Strongroom.init(storage, protector)
        except AlreadyInitialized:
            pass  # another process created it first
    return await Strongroom.unseal(storage, protector)

__all__ = [
    "InventoryEntry",
    "PgRotation",
    "DynamicPg",
    "DynamicLogin",
    "configure_pg_catalog",
    "CredentialFeed",
    "PgLogin",
    "AfterError",
    "ShamirProtector",
    "shamir_split",
    "shamir_combine",
    "Alert",
    "AlertEngine",
    "ApiKeyRotation",
    "ApprovalGates",
    "ApprovalRequest",
    "Approvals",
    "Gate",
    "CaCertificate",
    "Credential",
    "Crl",
    "EthSignature",
    "IssuedCertificate",
    "Pki",
    "PublicKey",
    "RateLimit",
    "Signature",
    "SigningHandle",
    "SigningKeyInfo",
    "DueReport",
    "Lease",
    "LeaseEvent",
    "LeaseEvents",
    "LeaseManager",
    "ManualClock",
    "Matched",
    "Pkcs11Protector",
    "PrefixRevocation",
    "RotationReport",
    "RotationStatus",
    "Staged",
    "AuditLog",
    "AuditReport",
    "Handle",
    "Policy",
    "SecretMetadata",
    "VersionInfo",
    "verify_audit_file",
    "KeyInfo",
    "RewrapReport",
    "Secret",
    "SoftwareProtector",
    "Storage",
    "Strongroom",
    "__version__",
    "blocking",
    "open",
    "open_sealed",
    "seal_with_key",
    "sealed_key_version",
    "ERROR_CODES",
] + list(ERROR_CLASSES)
