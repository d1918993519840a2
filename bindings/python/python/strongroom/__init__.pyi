import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from os import PathLike
from typing import ClassVar, Optional, Union

from . import blocking as blocking

__version__: str

_Bytes = Union[bytes, bytearray, memoryview, "Secret"]
_Seconds = Union[int, float, datetime.timedelta]
"""A duration in seconds (or a timedelta)."""
_Protector = Union["SoftwareProtector", "Pkcs11Protector"]

class StrongroomError(Exception):
    """Base class of every error Strongroom raises."""

    code: str
    """The core's stable short code (e.g. "cas_mismatch", "policy_denied")."""

class DecryptionFailed(StrongroomError): ...
class MalformedSealedValue(StrongroomError): ...

class UnknownKeyVersion(StrongroomError):
    version: int
    latest: int

class KeyVersionRetired(StrongroomError):
    version: int
    state: str
    min_decryption_version: int

class InvalidKeyTransition(StrongroomError):
    version: int
    from_state: str
    to_state: str

class KeyInUse(StrongroomError):
    version: int
    records: int
    example: str

class InvalidPath(StrongroomError):
    path: str
    reason: str

class Sealed(StrongroomError): ...

class Closed(StrongroomError):
    """The store was closed (close(), or leaving its with / async with
    block), or the interpreter is exiting. code == "closed"."""
class AlreadyInitialized(StrongroomError): ...
class NotInitialized(StrongroomError): ...
class UnsealFailed(StrongroomError): ...

class KeyFileError(StrongroomError):
    path: str
    reason: str

class ProtectorError(StrongroomError):
    protector: str
    kind: str

class StorageError(StrongroomError):
    backend: str
    kind: str

class StorageConflict(StrongroomError):
    key: str

class CorruptRecord(StrongroomError):
    key: str

class RandomFailed(StrongroomError): ...
class InvalidArgument(StrongroomError): ...
class SecretStoreError(StrongroomError): ...
class CasConflict(SecretStoreError):
    path: str
    expected: int
    current: int

class NotFound(SecretStoreError):
    path: str
    version: int  # only set when a specific version was asked for

class VersionDeleted(SecretStoreError):
    path: str
    version: int
    deleted_ms: int

class VersionDestroyed(SecretStoreError):
    """Destroyed, or pruned past max_versions (then `oldest` is set instead
    of `destroyed_ms`)."""

    path: str
    version: int
    destroyed_ms: int
    oldest: int

class PolicyError(StrongroomError): ...

class PolicyDenied(PolicyError):
    path: str
    principal: str
    capability: str

class AuditError(StrongroomError): ...

class AuditChainBroken(AuditError):
    seq: int
    reason: str
class LeaseError(StrongroomError): ...

class LeaseExpired(LeaseError):
    id: str
    expired_at: int

class LeaseNotFound(LeaseError):
    id: str

class LeaseInvalidId(LeaseError):
    text: str

class LeaseNotRenewable(LeaseError):
    id: str

class LeaseNotActive(LeaseError):
    id: str
    state: str

class LeaseQuotaExceeded(LeaseError):
    prefix: str
    """The quota's path prefix; "" for the store-wide max_leases."""
    limit: int
    count: int

class LeaseNoRevoker(LeaseError):
    engine: str

class LeaseInvalidTtl(LeaseError):
    reason: str

class LeaseInvalidEngine(LeaseError):
    engine: str

class LeaseRevocationDeferred(LeaseError):
    """The revoker failed; the manager retries at `next_try` (ms)."""

    id: str
    attempts: int
    next_try: int
    reason: str

class LeaseIrrevocable(LeaseError):
    id: str
    attempts: int
    reason: str

class LeaseRevokerFailed(LeaseError):
    engine: str
    reason: str

class RotationError(StrongroomError): ...

class RotationInvalidName(RotationError):
    name: str
    reason: str

class RotationBusy(RotationError):
    credential: str
    owner: str
    until: int

class RotationLostLock(RotationError):
    credential: str

class RotationStepFailed(RotationError):
    credential: str
    version: int
    step: str
    attempts: int

class RotationRolledBack(RotationError):
    credential: str
    version: int
    step: str

class RotationAlreadyInitialized(RotationError):
    credential: str

class RotationCorruptState(RotationError):
    credential: str

class RotationAuditRefused(RotationError):
    credential: str
    step: str

class ShamirError(StrongroomError): ...

class Secret:
    """A secret value; repr() is redacted. See the README for what Python
    cannot wipe."""

    def __init__(self, value: _Bytes) -> None: ...
    def reveal(self) -> bytes: ...
    def as_bytearray(self) -> bytearray: ...
    def wipe(self) -> None: ...
    def __len__(self) -> int: ...

class Storage:
    @staticmethod
    def memory() -> Storage: ...
    @staticmethod
    def sqlite(path: Union[str, PathLike[str]]) -> Storage: ...
    @property
    def backend(self) -> str: ...
    def is_initialized(self) -> bool: ...

class SoftwareProtector:
    @staticmethod
    def from_key(key: _Bytes) -> SoftwareProtector: ...
    @staticmethod
    def from_key_file(path: Union[str, PathLike[str]]) -> SoftwareProtector: ...
    @staticmethod
    def generate_key_file(path: Union[str, PathLike[str]]) -> None: ...

class Pkcs11Protector:
    """A root-key protector whose wrapping key lives in a PKCS#11 token.
    Constructing it does no I/O; `init_key()` creates the token key once,
    `open()` connects to it, and `Strongroom.init` / `unseal` connect on
    first use (a wrong PIN raises `ProtectorError` with kind "wrong pin")."""

    def __init__(
        self, module_path: Union[str, PathLike[str]], token_label: str, pin: Union[str, _Bytes],
        key_label: str
    ) -> None: ...
    def init_key(self) -> None:
        """Generates the token key (blocks, GIL released)."""
    def open(self) -> None:
        """Connects to the existing token key (blocks, GIL released)."""
    @property
    def module_path(self) -> str: ...
    @property
    def token_label(self) -> str: ...
    @property
    def key_label(self) -> str: ...
    @property
    def key_version(self) -> Optional[int]:
        """The token key version in use; None until connected."""

class ManualClock:
    """A clock that moves only when told to. Times are ms since the epoch."""

    def __init__(self, start_ms: int = 0) -> None: ...
    def now(self) -> int: ...
    def advance(self, seconds: _Seconds) -> None: ...
    def set(self, ms: int) -> None: ...

class Lease:
    """A lease. Times are ms since the epoch; ttl and max_ttl are seconds."""

    @property
    def id(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def engine(self) -> str: ...
    @property
    def issued_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def max_expires_at(self) -> int: ...
    @property
    def ttl(self) -> float: ...
    @property
    def max_ttl(self) -> float: ...
    @property
    def renewable(self) -> bool: ...
    @property
    def state(self) -> str:
        """"active", "revoking", "revoked" or "irrevocable"."""
    @property
    def attempts(self) -> int: ...
    @property
    def next_try(self) -> Optional[int]: ...
    @property
    def revocation_data(self) -> Secret:
        """A new Secret holding the engine's revocation data, per access."""

class LeaseEvent:
    @property
    def kind(self) -> str:
        """"issued", "renewed", "expiring_soon", "revoked" or "irrevocable"."""
    @property
    def id(self) -> Optional[str]: ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def expires_at(self) -> Optional[int]: ...
    @property
    def capped(self) -> bool: ...
    @property
    def forced(self) -> bool: ...
    @property
    def attempts(self) -> Optional[int]: ...
    @property
    def reason(self) -> Optional[str]: ...

class LeaseEvents:
    """Lease events from subscribe() on: async for, for (blocking), wait, drain."""

    def __aiter__(self) -> AsyncIterator[LeaseEvent]: ...
    def __anext__(self) -> Awaitable[LeaseEvent]: ...
    def __iter__(self) -> Iterator[LeaseEvent]: ...
    def __next__(self) -> LeaseEvent: ...
    def wait(self, timeout: Optional[_Seconds] = None) -> Optional[LeaseEvent]: ...
    def drain(self) -> list[LeaseEvent]: ...

class DueReport:
    @property
    def revoked(self) -> int: ...
    @property
    def deferred(self) -> int: ...
    @property
    def irrevocable(self) -> int: ...
    @property
    def expiring_soon(self) -> int: ...
    @property
    def errors(self) -> int: ...

class PrefixRevocation:
    @property
    def revoked(self) -> list[str]: ...
    @property
    def pending(self) -> list[str]: ...

_Revoker = Callable[[Lease], Union[None, Awaitable[None]]]
_StoreLike = Union["Strongroom", blocking.Strongroom]

class LeaseManager:
    """Leases in an unsealed store, sealed under its keys (asyncio API)."""

    def __init__(
        self, store: _StoreLike, clock: Optional[ManualClock] = None, *,
        max_leases: Optional[int] = None, prefix_quotas: Optional[dict[str, int]] = None,
        expiring_soon_fraction: Optional[float] = 0.75, max_revoke_attempts: int = 8,
        revoke_timeout: Optional[_Seconds] = None, event_capacity: int = 1024
    ) -> None: ...
    def register_revoker(self, engine: str, revoker: _Revoker) -> None: ...
    def subscribe(self) -> LeaseEvents: ...
    @property
    def live_leases(self) -> int: ...
    def issue(
        self, path: str, engine: str, ttl: _Seconds, max_ttl: Optional[_Seconds] = None,
        renewable: bool = True, data: Optional[_Bytes] = None
    ) -> Awaitable[Lease]: ...
    def renew(self, id: str, increment: _Seconds) -> Awaitable[Lease]: ...
    def revoke(self, id: str) -> Awaitable[Lease]: ...
    def force_revoke(self, id: str) -> Awaitable[Lease]: ...
    def revoke_prefix(self, prefix: str) -> Awaitable[PrefixRevocation]: ...
    def lookup(self, id: str) -> Awaitable[Lease]: ...
    def list(self, prefix: str = "") -> Awaitable[list[str]]: ...
    def run_due(self) -> Awaitable[DueReport]: ...
    def blocking(self) -> blocking.LeaseManager: ...

class Matched:
    """Which stored key a presented API key matched (compare with ==)."""

    Current: ClassVar[Matched]
    Previous: ClassVar[Matched]
    NoMatch: ClassVar[Matched]

class Credential:
    @property
    def version(self) -> int: ...
    @property
    def identity(self) -> str: ...
    @property
    def secret(self) -> Secret: ...

class Staged:
    @property
    def pending(self) -> Optional[Credential]: ...
    @property
    def current(self) -> Optional[Credential]: ...
    @property
    def previous(self) -> Optional[Credential]: ...

class RotationStatus:
    @property
    def pending(self) -> Optional[int]: ...
    @property
    def current(self) -> Optional[int]: ...
    @property
    def previous(self) -> Optional[int]: ...
    @property
    def revoke_previous_at(self) -> Optional[int]: ...
    @property
    def last_promoted(self) -> Optional[int]: ...
    @property
    def in_flight(self) -> Optional[tuple[str, int]]: ...
    @property
    def history(self) -> list[int]: ...

class RotationReport:
    @property
    def promoted(self) -> Optional[int]: ...
    @property
    def revoked(self) -> Optional[int]: ...

class ApiKeyRotation:
    """Rotation of one API key (asyncio API)."""

    @staticmethod
    def open(
        sr: Union[Strongroom, blocking.Strongroom], name: str, *, prefix: str = "sk_", chars: int = 32,
        grace_period: Optional[_Seconds] = None
    ) -> Awaitable[ApiKeyRotation]: ...
    @property
    def name(self) -> str: ...
    def verify(self, presented: Union[str, _Bytes]) -> Matched: ...
    def rotate_now(self) -> Awaitable[RotationReport]: ...
    def staged(self) -> Awaitable[Staged]: ...
    def status(self) -> Awaitable[RotationStatus]: ...
    def revoke_due(self) -> Awaitable[bool]: ...
    def import_current(self, key: Union[str, bytes, bytearray, memoryview, Secret]) -> Awaitable[int]: ...
    def refresh(self) -> Awaitable[None]: ...
    def blocking(self) -> blocking.ApiKeyRotation: ...

class KeyInfo:
    @property
    def version(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def created_ms(self) -> int: ...
    @property
    def encryptions_reserved(self) -> int: ...

class RewrapReport:
    @property
    def scanned(self) -> int: ...
    @property
    def rewrapped(self) -> int: ...
    @property
    def unreadable(self) -> list[str]: ...
    @property
    def target_version(self) -> int: ...
    @property
    def remaining(self) -> int: ...

class VersionInfo:
    """Facts about one version of a secret (never its value)."""

    @property
    def version(self) -> int: ...
    @property
    def created_ms(self) -> int: ...
    @property
    def deleted_ms(self) -> Optional[int]: ...
    @property
    def destroyed_ms(self) -> Optional[int]: ...

class SecretMetadata:
    @property
    def path(self) -> str: ...
    @property
    def current_version(self) -> int: ...
    @property
    def oldest_version(self) -> int: ...
    @property
    def max_versions(self) -> Optional[int]: ...
    @property
    def effective_max_versions(self) -> int: ...
    @property
    def created_ms(self) -> int: ...
    @property
    def updated_ms(self) -> int: ...
    @property
    def owner(self) -> Optional[str]: ...
    @property
    def environment(self) -> Optional[str]: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def versions(self) -> list[VersionInfo]: ...

class Policy:
    @staticmethod
    def from_toml(text: str) -> Policy: ...
    @property
    def name(self) -> str: ...

class AuditLog:
    """An audit log writing to a JSON-lines file (from `open_audit_log`)."""

    @property
    def path(self) -> str: ...

class AuditReport:
    @property
    def records(self) -> int: ...
    @property
    def head_seq(self) -> int: ...
    @property
    def head_mac(self) -> str: ...

class Handle:
    """A principal's view of the secrets store: checked and audited."""

    @property
    def principal(self) -> str: ...
    def read(self, path: str, version: Optional[int] = None) -> Awaitable[tuple[VersionInfo, Secret]]: ...
    def put(self, path: str, value: _Bytes, cas: Optional[int] = None) -> Awaitable[VersionInfo]: ...
    def list(self, prefix: str) -> Awaitable[list[str]]: ...

class Strongroom:
    """An unsealed store (asyncio API)."""

    @staticmethod
    def init(
        storage: Storage, protector: _Protector, clock: Optional[ManualClock] = None
    ) -> Awaitable[Strongroom]: ...
    @staticmethod
    def unseal(
        storage: Storage, protector: _Protector, clock: Optional[ManualClock] = None
    ) -> Awaitable[Strongroom]: ...
    def seal(self) -> None: ...
    @property
    def is_sealed(self) -> bool: ...
    def close(self) -> None:
        """Idempotent. Pending awaitables of this store (and of lease managers,
        rotations, handles made from it) raise Closed, event subscriptions
        stop, later calls raise Closed, an SQLite file is closed."""
    @property
    def closed(self) -> bool: ...
    async def __aenter__(self) -> Strongroom: ...
    async def __aexit__(self, *args: object) -> bool: ...
    def __enter__(self) -> Strongroom: ...
    def __exit__(self, *args: object) -> bool: ...
    def seal_value(self, plaintext: _Bytes, path: str, version: int) -> Awaitable[bytes]: ...
    def open_value(self, sealed: bytes, path: str, version: int) -> Awaitable[Secret]: ...
    def put_sealed(self, key: str, plaintext: _Bytes, path: str, version: int) -> Awaitable[None]: ...
    def get_sealed(self, key: str, path: str, version: int) -> Awaitable[Optional[Secret]]: ...
    def rotate(self) -> Awaitable[KeyInfo]: ...
    def promote(self, version: int) -> Awaitable[None]: ...
    def set_min_decryption_version(self, min: int) -> Awaitable[None]: ...
    def destroy_key(self, version: int) -> Awaitable[None]: ...
    def rewrap(self, batch_size: int = 500) -> Awaitable[RewrapReport]: ...
    def reload(self) -> Awaitable[None]: ...
    def keys(self) -> list[KeyInfo]: ...
    def put_secret(self, path: str, value: _Bytes, cas: Optional[int] = None) -> Awaitable[VersionInfo]: ...
    def get_secret(
        self, path: str, version: Optional[int] = None
    ) -> Awaitable[tuple[VersionInfo, Secret]]: ...
    def list_secrets(self, prefix: str) -> Awaitable[list[str]]: ...
    def delete_secret(self, path: str, versions: Optional[list[int]] = None) -> Awaitable[list[int]]: ...
    def undelete_secret(self, path: str, versions: Optional[list[int]] = None) -> Awaitable[list[int]]: ...
    def destroy_secret(self, path: str, versions: Optional[list[int]] = None) -> Awaitable[list[int]]: ...
    def secret_metadata(self, path: str) -> Awaitable[SecretMetadata]: ...
    def open_audit_log(self, path: str, fsync: bool = True) -> Awaitable[AuditLog]: ...
    def as_principal(self, name: str, policies: list[Policy], audit: AuditLog) -> Handle: ...
    def blocking(self) -> blocking.Strongroom: ...

async def open(
    path: Union[str, PathLike[str]], *, key_file: Union[str, PathLike[str], None] = None,
    key: Optional[_Bytes] = None
) -> Strongroom: ...
def seal_with_key(
    key: _Bytes, algorithm: str, key_version: int, path: str, version: int, plaintext: _Bytes
) -> bytes: ...
def open_sealed(key: _Bytes, algorithm: str, path: str, version: int, sealed: bytes) -> Secret: ...
def sealed_key_version(sealed: bytes) -> int: ...
def verify_audit_file(
    path: Union[str, PathLike[str]], sr: Union[Strongroom, blocking.Strongroom]
) -> AuditReport: ...
