import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from os import PathLike
from typing import ClassVar, Optional, Union

from . import blocking as blocking

__version__: str

_Bytes = Union[bytes, bytearray, memoryview, "Secret"]
_Seconds = Union[int, float, datetime.timedelta]
"""A duration in seconds (or a timedelta)."""
_Protector = Union["SoftwareProtector", "ShamirProtector", "Pkcs11Protector"]

class StrongroomError(Exception):
    """Base class of every error Strongroom raises. Its subclasses are made
    from the core's error table (`ERROR_CODES`, docs/ERRORS.md)."""

    code: str
    """The error's stable code (e.g. "secret.cas_mismatch", "policy.denied",
    "protector.wrong_pin"; "closed" for `Closed`)."""

class Closed(StrongroomError):
    """The store was closed (close(), or leaving its with / async with
    block), or the interpreter is exiting. code == "closed"."""

    code: ClassVar[str]

ERROR_CODES: tuple[dict, ...]
"""The core's error table, one dict per code: "code", "class", "parent",
"kind", "fields" (a tuple of (name, type) pairs, types as in
docs/ERRORS.md) and "meaning"."""
ERROR_CLASSES: tuple[str, ...]
"""The names of every exception class (and alias) the module exports."""

# BEGIN error classes (generated from ERROR_CODES by tests/test_errors.py)

class SecretError(StrongroomError):
    """A versioned-secrets operation failed."""

class PolicyError(StrongroomError):
    """A policy could not be loaded or evaluated, or denied an operation."""

class AuditError(StrongroomError):
    """The audit trail could not be written or failed verification."""

class LeaseError(StrongroomError):
    """A lease operation failed."""

class RotationError(StrongroomError):
    """A credential rotation failed."""

class ShamirError(StrongroomError):
    """Shamir split or combine failed."""

class SigningError(StrongroomError):
    """A signing-key operation failed."""

class ApprovalError(StrongroomError):
    """Errors of the ApprovalError family."""

class PkiError(StrongroomError):
    """The internal certificate authority refused or failed (its own `pki.*` codes; its policy, storage and lease errors raise the core's classes)."""

class DecryptionFailed(StrongroomError):
    """a sealed value did not open (wrong key, tampering, moved value); deliberately says nothing more (code "decryption_failed")."""

class MalformedSealedValue(StrongroomError):
    """the bytes are not a sealed value this build can read (code "malformed_sealed_value")."""

    reason: str

class UnknownKeyVersion(StrongroomError):
    """the sealed value names a key version the keyring does not have (code "unknown_key_version")."""

    version: int
    latest: int

class KeyVersionRetired(StrongroomError):
    """the key version exists but may no longer decrypt (retired or destroyed) (code "key_version_retired")."""

    version: int
    state: str
    min_decryption_version: int

class InvalidKeyTransition(StrongroomError):
    """a key state change the key lifecycle forbids (code "invalid_key_transition")."""

    version: int
    from_state: str
    to_state: str

class KeyInUse(StrongroomError):
    """a key version still protects stored records; run rewrap first (code "key_in_use")."""

    version: int
    records: int
    example: str

class Sealed(StrongroomError):
    """the store is sealed (its keys are not in memory); unseal it first (code "sealed")."""

class AlreadyInitialized(StrongroomError):
    """init was called on storage that already holds a store (code "already_initialized")."""

class NotInitialized(StrongroomError):
    """unseal was called on storage that holds no store (code "not_initialized")."""

class UnsealFailed(StrongroomError):
    """the root key does not open this store's keyring (code "unseal_failed")."""

class StorageConflict(StrongroomError):
    """a storage record changed concurrently; re-read and retry (code "storage_conflict")."""

    key: str

class CorruptRecord(StrongroomError):
    """a stored record (not a sealed value) could not be decoded (code "corrupt_record")."""

    key: str
    reason: str

class RandomFailed(StrongroomError):
    """the operating system's random number generator failed (code "random_failed")."""

class InvalidArgument(StrongroomError):
    """an argument cannot be used (code "invalid_argument")."""

    reason: str

class InvalidPath(StrongroomError):
    """One class, several codes:

    - "path.empty": the path is empty
    - "path.empty_segment": the path has an empty segment (double, leading or trailing '/')
    - "path.dot_segment": the path has a '.' or '..' segment
    - "path.bad_character": the path has a character outside a-z, 0-9, '-', '_', '.', '/'
    - "path.upper_case": the path has upper-case letters
    - "path.too_long": the path is longer than max bytes
    - "path.too_deep": the path has more than max segments
    - "path.reserved": the path is under the reserved 'sys' prefix
    """

    path: str
    character: str
    """Only with code path.bad_character."""
    max: int
    """Only with code path.too_long, path.too_deep."""

class KeyFileError(StrongroomError):
    """One class, several codes:

    - "key_file.loose_permissions": the key file can be read or written by group or others (chmod 600)
    - "key_file.io": the key file could not be read or written
    - "key_file.bad_content": the key file is not a base64-encoded 32-byte key
    - "key_file.exists": the key file already exists (a root key is never overwritten)
    - "key_file.wrong_owner": the key file belongs to another user than this process's
    - "key_file.unsafe_directory": the key file's directory is writable by group or others
    - "key_file.too_large": the file is larger than any key file
    """

    path: str
    mode: int
    """Only with code key_file.loose_permissions, key_file.unsafe_directory."""
    detail: str
    """Only with code key_file.io."""
    uid: int
    """Only with code key_file.wrong_owner."""
    expected: int
    """Only with code key_file.wrong_owner."""
    dir: str
    """Only with code key_file.unsafe_directory."""
    limit: int
    """Only with code key_file.too_large."""

class ProtectorError(StrongroomError):
    """One class, several codes:

    - "protector.unwrap_failed": the wrapped root key did not unwrap (wrong key, another token, tampering)
    - "protector.wrong_pin": the PIN was rejected
    - "protector.pin_locked": the PIN is locked after too many failures
    - "protector.token_not_found": no token with the configured label
    - "protector.token_removed": the token was removed
    - "protector.key_not_found": the wrapping key is not on the token
    - "protector.mechanism_unsupported": the module does not support a needed mechanism
    - "protector.module_not_found": the module library could not be loaded
    - "protector.config": the protector's configuration is incomplete or contradictory
    - "protector.device": the device reported another failure
    """

    protector: str
    detail: str

class StorageError(StrongroomError):
    """One class, several codes:

    - "storage.unavailable": the backend could not be reached or opened
    - "storage.corrupt": the backend's files or tables are damaged or not a Strongroom store
    - "storage.rejected": the backend refused the operation (permissions, read-only, full disk)
    - "storage.unsupported_version": a schema or format version this build does not understand
    - "storage.other": an injected or otherwise unclassified storage fault
    """

    backend: str
    detail: str

class SecretNotFound(SecretError):
    """no secret at the path, or it never had the version asked for (code "secret.not_found")."""

    path: str
    version: Optional[int]

class SecretVersionDeleted(SecretError):
    """the version was soft-deleted; undelete brings it back (code "secret.version_deleted")."""

    path: str
    version: int
    deleted_at: int

class SecretVersionDestroyed(SecretError):
    """the version was destroyed and cannot be recovered (code "secret.version_destroyed")."""

    path: str
    version: int
    destroyed_at: int

class SecretVersionPruned(SecretError):
    """the version was pruned by max_versions and is gone (code "secret.version_pruned")."""

    path: str
    version: int
    oldest: int

class SecretCasMismatch(SecretError):
    """a check-and-set write found another current version (0: absent); re-read and retry (code "secret.cas_mismatch")."""

    path: str
    expected: int
    current: int

class SecretInvalidMetadata(SecretError):
    """metadata or an option is out of bounds (code "secret.invalid_metadata")."""

    path: str
    reason: str

class SecretContended(SecretError):
    """other writers kept changing the secret; the write gave up (code "secret.contended")."""

    path: str
    attempts: int

class PolicyDenied(PolicyError):
    """the principal's policies do not grant the capability on the path (code "policy.denied")."""

    principal: str
    capability: str
    path: str

class PolicyParse(PolicyError):
    """a policy text is wrong at this line and column (code "policy.parse")."""

    source_name: str
    line: int
    column: int
    detail: str

class PolicyInvalidPattern(PolicyError):
    """a pattern given in code is invalid (code "policy.invalid_pattern")."""

    pattern: str
    reason: str

class PolicyUnknownCapability(PolicyError):
    """a capability name is not one of the known ones (code "policy.unknown_capability")."""

    capability: str

class PolicyUnknownPolicy(PolicyError):
    """a principal names a policy that is not loaded (code "policy.unknown_policy")."""

    policy: str

class PolicyIo(PolicyError):
    """a policy file could not be read (code "policy.io")."""

    path: str
    detail: str

class AuditNoSinkAccepted(AuditError):
    """no audit sink accepted the event, so the operation was refused (code "audit.no_sink_accepted")."""

    seq: int
    sinks: list[str]
    timed_out: list[bool]
    failures: list[str]

class AuditSink(AuditError):
    """an audit sink failed to write a record (code "audit.sink")."""

    sink: str
    detail: str

class AuditChainBroken(AuditError):
    """the audit chain does not verify at this record (code "audit.chain_broken")."""

    seq: int
    break_kind: str
    reason: str

class AuditMalformedRecord(AuditError):
    """a line is not an audit record of a known format (code "audit.malformed_record")."""

    reason: str

class AuditWeakKey(AuditError):
    """the audit key is too short (code "audit.weak_key")."""

    len: int

class AuditNoSinks(AuditError):
    """an audit log needs at least one sink (code "audit.no_sinks")."""

class AuditSequenceExhausted(AuditError):
    """the audit sequence numbers are used up (code "audit.sequence_exhausted")."""

class AuditIo(AuditError):
    """an audit file could not be opened or read (code "audit.io")."""

    path: str
    detail: str

class AuditEncode(AuditError):
    """an audit record could not be encoded (code "audit.encode")."""

    reason: str

class LeaseNotFound(LeaseError):
    """no lease with this id (never issued, or revoked) (code "lease.not_found")."""

    id: str

class LeaseInvalidId(LeaseError):
    """the text is not a lease id (code "lease.invalid_id")."""

    text: str

class LeaseNotRenewable(LeaseError):
    """the lease was issued as not renewable (code "lease.not_renewable")."""

    id: str

class LeaseExpired(LeaseError):
    """the lease has expired (code "lease.expired")."""

    id: str
    expired_at: int

class LeaseNotActive(LeaseError):
    """the lease is being revoked, revoked or irrevocable, so it cannot be renewed (code "lease.not_active")."""

    id: str
    state: str

class LeaseQuotaExceeded(LeaseError):
    """issuing would exceed a lease quota (scope total, or prefix) (code "lease.quota_exceeded")."""

    scope: str
    prefix: Optional[str]
    limit: int
    count: int

class LeaseNoRevoker(LeaseError):
    """no revoker is registered for the lease's engine (code "lease.no_revoker")."""

    engine: str

class LeaseInvalidTtl(LeaseError):
    """a TTL argument cannot be used (code "lease.invalid_ttl")."""

    reason: str

class LeaseInvalidEngine(LeaseError):
    """an engine name cannot be used (code "lease.invalid_engine")."""

    engine: str

class LeaseRevocationDeferred(LeaseError):
    """the engine failed to revoke the lease; the manager retries at next_try (code "lease.revocation_deferred")."""

    id: str
    attempts: int
    next_try: int
    reason: str

class LeaseIrrevocable(LeaseError):
    """revocation failed too often; revoke again or force it (code "lease.irrevocable")."""

    id: str
    attempts: int
    reason: str

class LeaseRevokerFailed(LeaseError):
    """a revoker failed for a reason of its own (code "lease.revoker_failed")."""

    engine: str
    reason: str

class RotationInvalidName(RotationError):
    """the credential name cannot be used (code "rotation.invalid_name")."""

    credential: str
    reason: str

class RotationBusy(RotationError):
    """another process is rotating this credential until the given time (code "rotation.busy")."""

    credential: str
    owner: str
    until: int

class RotationLostLock(RotationError):
    """another process took over the rotation; this one stopped (code "rotation.lost_lock")."""

    credential: str

class RotationStepFailed(RotationError):
    """a rotation step kept failing; resume retries it (code "rotation.step_failed")."""

    credential: str
    version: int
    step: str
    attempts: int
    detail: str

class RotationRolledBack(RotationError):
    """the new version could not be set or tested and was rolled back (code "rotation.rolled_back")."""

    credential: str
    version: int
    step: str
    detail: str

class RotationAlreadyInitialized(RotationError):
    """the credential already has a current version (code "rotation.already_initialized")."""

    credential: str

class RotationCorruptState(RotationError):
    """the stored rotation state cannot be read (code "rotation.corrupt_state")."""

    credential: str
    reason: str

class RotationAuditRefused(RotationError):
    """the audit hook refused to record a step, so the step was not run (code "rotation.audit_refused")."""

    credential: str
    step: str
    detail: str

class ShamirInvalidParameters(ShamirError):
    """threshold or share count out of range, or an empty secret (code "shamir.invalid_parameters")."""

    reason: str

class ShamirNoShares(ShamirError):
    """no shares were given (code "shamir.no_shares")."""

class ShamirTooFewShares(ShamirError):
    """fewer distinct shares than the threshold (code "shamir.too_few_shares")."""

    needed: int
    given: int

class ShamirDuplicateShare(ShamirError):
    """the same share was given twice (code "shamir.duplicate_share")."""

    x: int
    first: int
    second: int
    needed: int

class ShamirDifferentSplits(ShamirError):
    """shares from two different splits were mixed (code "shamir.different_splits")."""

    index: int
    expected: str
    found: str

class ShamirCorruptShare(ShamirError):
    """a share failed its checksum or is malformed (code "shamir.corrupt_share")."""

    index: Optional[int]
    reason: str

class SigningUnknownKey(SigningError):
    """no signing key has this name (code "signing.unknown_key")."""

    key: str

class SigningKeyExists(SigningError):
    """a signing key of this name exists already (perhaps just created by another process) (code "signing.key_exists")."""

    key: str

class SigningUnknownVersion(SigningError):
    """the signing key has no such version (code "signing.unknown_version")."""

    key: str
    version: int
    latest: int

class SigningVersionRetired(SigningError):
    """the version is below the key's minimum verify version: its signatures no longer verify (code "signing.version_retired")."""

    key: str
    version: int
    min_verify_version: int

class SigningWrongKeyType(SigningError):
    """the operation needs another type of signing key (code "signing.wrong_key_type")."""

    key: str
    key_type: str
    operation: str
    needed: str

class SigningRateLimited(SigningError):
    """the key's rate limit is exhausted in this process; retry after the given milliseconds (code "signing.rate_limited")."""

    key: str
    retry_after_ms: int

class SigningBadSignatureEncoding(SigningError):
    """a signature's text form cannot be parsed (code "signing.bad_signature_encoding")."""

    reason: str

class SigningConflict(SigningError):
    """the signing key changed concurrently; re-read and retry (code "signing.conflict")."""

    key: str

class SigningCorruptKey(SigningError):
    """a stored private key cannot be opened or parsed (code "signing.corrupt_key")."""

    key: str
    version: int
    reason: str

class SigningCorruptRecord(SigningError):
    """a signing key's metadata record cannot be read (code "signing.corrupt_record")."""

    key: str
    reason: str

class SigningInvalidMinVerifyVersion(SigningError):
    """the minimum verify version can only be raised, up to the newest version (code "signing.invalid_min_verify_version")."""

    key: str
    requested: int
    current: int
    latest: int

class SigningInvalidRateLimit(SigningError):
    """a rate limit needs at least 1 per second and a burst of at least 1 (code "signing.invalid_rate_limit")."""

    reason: str

class SigningInvalidChainId(SigningError):
    """an EIP-155 chain id of zero or one whose v overflows (code "signing.invalid_chain_id")."""

    chain_id: int

class NamingViolation(StrongroomError):
    """a write names a path that follows none of the applied naming rules; nothing was written (code "naming.violation")."""

    path: str
    reason: str

class ApprovalRequired(ApprovalError):
    """a gate holds this operation on this path and no approved request was given; nothing was done (code "approval.required")."""

    operation: str
    path: str

class ApprovalNotFound(ApprovalError):
    """no approval request has this id (code "approval.not_found")."""

    id: str

class ApprovalExpired(ApprovalError):
    """the approval request's time to live ran out before it was used (code "approval.expired")."""

    id: str
    expired_at: int

class ApprovalRefused(ApprovalError):
    """an approver refused the request; it can never run (code "approval.refused")."""

    id: str
    by: str

class ApprovalNotApproved(ApprovalError):
    """the request does not yet have the approvals its gates need (code "approval.not_approved")."""

    id: str
    approvals: int
    required: int

class ApprovalUsed(ApprovalError):
    """the approved request has run already; it runs once (code "approval.used")."""

    id: str

class ApprovalNotApprover(ApprovalError):
    """no gate holding the request names this principal as an approver (code "approval.not_approver")."""

    id: str
    principal: str

class ApprovalSelfApproval(ApprovalError):
    """the requester cannot approve its own request (code "approval.self_approval")."""

    id: str
    principal: str

class ApprovalAlreadyApproved(ApprovalError):
    """this principal has approved the request already; each approver counts once (code "approval.already_approved")."""

    id: str
    principal: str

class ApprovalMismatch(ApprovalError):
    """the request was made for another operation, path or requester (code "approval.mismatch")."""

    id: str
    what: str

class ApprovalNoGate(ApprovalError):
    """no gate holds this operation on this path; there is nothing to request (code "approval.no_gate")."""

    operation: str
    path: str

class ApprovalInvalidGates(ApprovalError):
    """a gates file or gate list is not valid (the line is given for files; no value is quoted) (code "approval.invalid_gates")."""

    line: Optional[int]
    reason: str

class ApprovalInvalidRequest(ApprovalError):
    """a request's reason, time to live or path cannot be used (code "approval.invalid_request")."""

    reason: str

class ApprovalConflict(ApprovalError):
    """the gates or the request changed concurrently; re-read and retry (code "approval.conflict")."""

    what: str

class PkiInvalidName(PkiError):
    """a mount or role name (`what`) is outside a-z, 0-9, '-' and '_', 1 to 64 bytes (code "pki.invalid_name")."""

    what: str
    given_name: str

class PkiCaExists(PkiError):
    """the mount already holds a certificate authority; it is never replaced (code "pki.ca_exists")."""

    mount: str

class PkiUnknownCa(PkiError):
    """the mount holds no certificate authority yet; create a root or an intermediate first (code "pki.unknown_ca")."""

    mount: str

class PkiUnknownRole(PkiError):
    """the mount has no role of that name (code "pki.unknown_role")."""

    mount: str
    role: str

class PkiInvalidRole(PkiError):
    """a role definition cannot be used (code "pki.invalid_role")."""

    reason: str

class PkiNameNotAllowed(PkiError):
    """the role does not allow the requested DNS name or IP address (code "pki.name_not_allowed")."""

    role: str
    requested_name: str
    reason: str

class PkiTtlOverMax(PkiError):
    """the requested ttl is over the role's max_ttl (both in seconds) (code "pki.ttl_over_max")."""

    role: str
    requested_secs: int
    max_secs: int

class PkiOutlivesCa(PkiError):
    """the certificate would outlive the CA that signs it; ask for a shorter ttl (code "pki.outlives_ca")."""

    requested: int
    ca_not_after: int

class PkiKeyTypeNotAllowed(PkiError):
    """the role does not allow the requested key type (`allowed` is comma-separated) (code "pki.key_type_not_allowed")."""

    role: str
    requested: str
    allowed: str

class PkiUsageNotAllowed(PkiError):
    """the role does not allow the requested usage (server or client authentication) (code "pki.usage_not_allowed")."""

    role: str
    requested: str

class PkiInvalidRequest(PkiError):
    """a request that makes no sense whatever the role says (no names, a zero ttl, a malformed serial) (code "pki.invalid_request")."""

    reason: str

class PkiUnknownCertificate(PkiError):
    """no live certificate of that serial (hex) on the mount: never issued, revoked, or expired and removed (code "pki.unknown_certificate")."""

    mount: str
    serial: str

class PkiBadRecord(PkiError):
    """a stored CA record failed authentication (edited, moved, forged) or does not decode (code "pki.bad_record")."""

    key: str
    reason: str

class PkiCertificate(PkiError):
    """building, signing or parsing a certificate or CRL failed (code "pki.certificate")."""

    detail: str

class PkiTls(PkiError):
    """rustls refused a key, chain or verifier configuration (code "pki.tls")."""

    detail: str

class PkiContended(PkiError):
    """a CA record kept changing under other writers; retry later (code "pki.contended")."""

    key: str
    attempts: int

SecretStoreError = SecretError
CasConflict = SecretCasMismatch
NotFound = SecretNotFound
VersionDeleted = SecretVersionDeleted
VersionDestroyed = SecretVersionDestroyed
# END error classes

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
    @staticmethod
    def open(location: str) -> Storage:
        """"memory:", "sqlite:<path>" or a file path, or a postgres:// URL."""
    @property
    def backend(self) -> str: ...
    def is_initialized(self) -> bool: ...
    def close(self) -> None: ...

class SoftwareProtector:
    @staticmethod
    def from_key(key: _Bytes) -> SoftwareProtector: ...
    @staticmethod
    def from_key_file(path: Union[str, PathLike[str]]) -> SoftwareProtector: ...
    @staticmethod
    def generate_key_file(path: Union[str, PathLike[str]]) -> None: ...

class ShamirProtector:
    """A root-key protector whose key-encryption key is split into Shamir
    shares (srs1-... texts)."""

    @staticmethod
    def generate(threshold: int, shares: int) -> tuple[ShamirProtector, list[str]]: ...
    @staticmethod
    def from_shares(shares: list[str]) -> ShamirProtector: ...
    @property
    def threshold(self) -> int: ...
    @property
    def split_id(self) -> str: ...

def shamir_split(secret: _Bytes, threshold: int, shares: int) -> list[str]: ...
def shamir_combine(shares: list[str]) -> Secret: ...

class Pkcs11Protector:
    """A root-key protector whose wrapping key lives in a PKCS#11 token.
    Constructing it does no I/O; `init_key()` creates the token key once,
    `open()` connects to it, and `Strongroom.init` / `unseal` connect on
    first use (a wrong PIN raises `ProtectorError` with code "protector.wrong_pin")."""

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

class PgLogin:
    """A login for one new connection; `password` is a Secret (never in repr)."""

    version: int
    username: str
    password: Secret

class AfterError:
    """What a pool does after a server error: kind "retry" (connect with
    `login`), "no-other-credential" or "not-a-credential-error" (raise it)."""

    kind: str
    login: Optional[PgLogin]

class CredentialFeed:
    """The logins a pool uses for new connections, from a rotated credential."""

    @staticmethod
    def rotated(
        sr: Union[Strongroom, blocking.Strongroom], name: str, *, external_auth: bool = False
    ) -> CredentialFeed: ...
    @property
    def refreshes(self) -> int: ...
    def login(self) -> Awaitable[Optional[PgLogin]]: ...
    def after_error(self, version: int, sqlstate: str, message: str) -> Awaitable[AfterError]: ...
    def blocking(self) -> blocking.CredentialFeed: ...

class PgRotation:
    """A rotated PostgreSQL password ("alternating" roles <role>_a/_b, or "single")."""

    @staticmethod
    def open(
        sr: Union[Strongroom, blocking.Strongroom], name: str, admin_url: str, role: str, *,
        mode: str = "alternating", grace_period: Optional[_Seconds] = None
    ) -> Awaitable[PgRotation]: ...
    @property
    def name(self) -> str: ...
    def rotate_now(self) -> Awaitable[RotationReport]: ...
    def staged(self) -> Awaitable[Staged]: ...
    def status(self) -> Awaitable[RotationStatus]: ...
    def revoke_due(self) -> Awaitable[bool]: ...
    def credential_feed(self, *, external_auth: bool = False) -> CredentialFeed: ...
    def close(self) -> Awaitable[None]: ...
    def blocking(self) -> blocking.PgRotation: ...

class DynamicLogin:
    """A dynamic credential: its lease, the generated role and password."""

    lease: Lease
    username: str
    password: Secret

def configure_pg_catalog(
    sr: Union[Strongroom, blocking.Strongroom], toml: str, expected_revision: Optional[int] = None
) -> int:
    """Stores the role catalog (strongroom creds configure's format); the new revision."""

class DynamicPg:
    """Dynamic PostgreSQL credentials from the stored role catalog (asyncio API)."""

    @staticmethod
    def open(
        sr: Union[Strongroom, blocking.Strongroom], leases: Union[LeaseManager, blocking.LeaseManager]
    ) -> Awaitable[DynamicPg]: ...
    def roles(self) -> list[str]: ...
    def issue(self, role: str, ttl: Optional[_Seconds] = None) -> Awaitable[DynamicLogin]: ...
    def feed(
        self, role: str, ttl: Optional[_Seconds] = None, refresh_fraction: float = 0.5
    ) -> Awaitable[CredentialFeed]: ...

class ApiKeyRotation:
    """Rotation of one API key (asyncio API)."""

    @staticmethod
    def open(
        sr: Union[Strongroom, blocking.Strongroom], name: str, *, prefix: str = "sk_",
        chars: Optional[int] = None, hex_bytes: Optional[int] = None,
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
    def custom(self) -> dict[str, str]: ...
    @property
    def rotation_interval(self) -> Optional[float]: ...
    @property
    def last_rotated_ms(self) -> Optional[int]: ...
    @property
    def versions(self) -> list[VersionInfo]: ...

class InventoryEntry:
    """One secret of `Strongroom.inventory()`; last_read_ms from the audit file."""

    metadata: SecretMetadata
    rotation_overdue: bool
    last_read_ms: Optional[int]

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

class RateLimit:
    """A signing key's token bucket: `burst` signatures at once, refilled at
    `per_second` (each at least 1; 0 raises SigningInvalidRateLimit)."""

    def __init__(self, per_second: int, burst: int) -> None: ...
    @property
    def per_second(self) -> int: ...
    @property
    def burst(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...

class SigningKeyInfo:
    """What is known about a signing key (no key material)."""

    @property
    def name(self) -> str: ...
    @property
    def key_type(self) -> str:
        """"ed25519", "ecdsa_p256" or "secp256k1"."""
    @property
    def latest_version(self) -> int:
        """The newest version, used to sign."""
    @property
    def min_verify_version(self) -> int:
        """Signatures of older versions raise SigningVersionRetired."""
    @property
    def versions(self) -> list[tuple[int, int]]:
        """(version, created_ms) of every version, oldest first."""
    @property
    def rate_limit(self) -> Optional[RateLimit]: ...

class Signature:
    """A signature and the key version that made it; `str()` is the text
    form "strongroom:v<version>:<base64>"."""

    def __init__(self, version: int, data: bytes) -> None: ...
    @staticmethod
    def from_text(text: str) -> Signature:
        """Parses the text form; raises SigningBadSignatureEncoding."""
    @property
    def version(self) -> int: ...
    @property
    def data(self) -> bytes:
        """Ed25519: 64 bytes; ECDSA P-256: ASN.1 DER; secp256k1: 65 bytes
        r || s || recovery id over Keccak-256 of the message."""
    def to_text(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class PublicKey:
    """The public key of one version of a signing key."""

    @property
    def key_type(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def raw(self) -> bytes:
        """32 bytes (Ed25519) or the 65-byte uncompressed point."""
    @property
    def eth_address(self) -> Optional[str]:
        """EIP-55 address of a secp256k1 key; None otherwise."""
    def spki_der(self) -> bytes: ...
    def spki_pem(self) -> str: ...

class EthSignature:
    """An Ethereum signature (r, s, v) made by a secp256k1 key."""

    @property
    def version(self) -> int: ...
    @property
    def r(self) -> bytes: ...
    @property
    def s(self) -> bytes: ...
    @property
    def v(self) -> int:
        """27 or 28 (personal message); chain_id * 2 + 35 + recovery id (EIP-155)."""
    @property
    def recovery_id(self) -> int: ...
    def to_bytes(self) -> bytes:
        """r || s || v (65 bytes whenever v < 256)."""
    def to_hex(self) -> str: ...

class SigningHandle:
    """A principal's signing keys (asyncio API), from `Handle.signing()`:
    every call checked against its policies on the key's name and audited.
    Capabilities: create (create_key), rotate (rotate_key), update
    (set_min_verify_version, set_rate_limit), sign (sign, eth_sign_*),
    read (key_info, public_key, eth_address, verify)."""

    @property
    def principal(self) -> str: ...
    def create_key(
        self, name: str, key_type: str, rate_limit: Optional[RateLimit] = None
    ) -> Awaitable[SigningKeyInfo]: ...
    def rotate_key(self, name: str) -> Awaitable[SigningKeyInfo]: ...
    def set_min_verify_version(self, name: str, version: int) -> Awaitable[SigningKeyInfo]: ...
    def set_rate_limit(self, name: str, rate_limit: Optional[RateLimit]) -> Awaitable[SigningKeyInfo]: ...
    def key_info(self, name: str) -> Awaitable[SigningKeyInfo]: ...
    def public_key(self, name: str, version: Optional[int] = None) -> Awaitable[PublicKey]: ...
    def eth_address(self, name: str, version: Optional[int] = None) -> Awaitable[str]: ...
    def sign(self, name: str, message: _Bytes) -> Awaitable[Signature]: ...
    def verify(self, name: str, message: _Bytes, signature: Union[Signature, str]) -> Awaitable[bool]: ...
    def eth_sign_personal_message(self, name: str, message: _Bytes) -> Awaitable[EthSignature]: ...
    def eth_sign_transaction_hash(self, name: str, hash: _Bytes, chain_id: int) -> Awaitable[EthSignature]: ...

class CaCertificate:
    """A CA's certificate and the chain above it (DER). Its private key
    never leaves the store."""

    @property
    def mount(self) -> str: ...
    @property
    def kind(self) -> str:
        """"root" or "intermediate"."""
    @property
    def key_type(self) -> str:
        """"ed25519" or "ecdsa-p256"."""
    @property
    def common_name(self) -> str: ...
    @property
    def certificate(self) -> bytes: ...
    @property
    def parents(self) -> list[bytes]: ...
    @property
    def not_before_ms(self) -> int: ...
    @property
    def not_after_ms(self) -> int: ...
    def pem(self) -> str: ...

class IssuedCertificate:
    """An issued certificate and its private key (never in repr)."""

    @property
    def serial(self) -> str:
        """Hex."""
    @property
    def lease_id(self) -> str: ...
    @property
    def key_type(self) -> str: ...
    @property
    def certificate(self) -> bytes: ...
    @property
    def ca_chain(self) -> list[bytes]: ...
    @property
    def not_before_ms(self) -> int: ...
    @property
    def not_after_ms(self) -> int: ...
    @property
    def private_key(self) -> bytes:
        """PKCS#8 DER; a bytes copy Python cannot wipe."""
    def certificate_pem(self) -> str: ...
    def chain_pem(self) -> str:
        """The certificate, then the CA chain, PEM."""

class Crl:
    """A CRL signed by the mount's CA."""

    @property
    def der(self) -> bytes: ...
    @property
    def number(self) -> int: ...
    @property
    def this_update_ms(self) -> int: ...
    @property
    def next_update_ms(self) -> int: ...
    @property
    def serials(self) -> list[str]:
        """The revoked serials on it, hex."""
    def pem(self) -> str: ...

_HandleLike = Union["Handle", blocking.Handle]

class Pki:
    """One mount of the internal certificate authority (asyncio API); each
    method acts for the principal of `handle`."""

    def __init__(
        self, store: _StoreLike, lease_manager: Union[LeaseManager, blocking.LeaseManager], mount: str
    ) -> None: ...
    @property
    def mount(self) -> str: ...
    def create_root(
        self, handle: _HandleLike, common_name: str, key_type: str = "ed25519",
        ttl: Optional[_Seconds] = None
    ) -> Awaitable[CaCertificate]: ...
    def ca(self, handle: _HandleLike) -> Awaitable[CaCertificate]: ...
    def put_role(
        self, handle: _HandleLike, name: str, allowed_names: list[str], *,
        allow_localhost: bool = False, allow_ip_sans: bool = False,
        allow_wildcard_certificates: bool = False, key_types: Optional[list[str]] = None,
        usages: Optional[list[str]] = None, ttl: Optional[_Seconds] = None,
        max_ttl: Optional[_Seconds] = None
    ) -> Awaitable[None]: ...
    def issue(
        self, handle: _HandleLike, role: str, dns_names: list[str], *,
        common_name: Optional[str] = None, ip_addresses: Optional[list[str]] = None,
        key_type: Optional[str] = None, usages: Optional[list[str]] = None,
        ttl: Optional[_Seconds] = None
    ) -> Awaitable[IssuedCertificate]: ...
    def revoke(self, handle: _HandleLike, serial: str) -> Awaitable[str]: ...
    def crl(self, handle: _HandleLike) -> Awaitable[Crl]: ...

class Handle:
    """A principal's view of the secrets store: checked and audited."""

    @property
    def principal(self) -> str: ...
    def read(self, path: str, version: Optional[int] = None) -> Awaitable[tuple[VersionInfo, Secret]]: ...
    def put(self, path: str, value: _Bytes, cas: Optional[int] = None) -> Awaitable[VersionInfo]: ...
    def list(self, prefix: str) -> Awaitable[list[str]]: ...
    def metadata(self, path: str) -> Awaitable[SecretMetadata]: ...
    def update_metadata(
        self, path: str, *, owner: Optional[str] = ..., environment: Optional[str] = ...,
        tags: Optional[list[str]] = ..., custom: Optional[dict[str, str]] = ...,
        rotation_interval: Optional[_Seconds] = ..., max_versions: Optional[int] = ...
    ) -> Awaitable[SecretMetadata]: ...
    def delete_metadata(self, path: str) -> Awaitable[None]: ...
    def delete(self, path: str, versions: Optional[list[int]] = None) -> Awaitable[list[int]]: ...
    def undelete(self, path: str, versions: Optional[list[int]] = None) -> Awaitable[list[int]]: ...
    def destroy(self, path: str, versions: Optional[list[int]] = None) -> Awaitable[list[int]]:
        """Held by a "destroy" gate: raises ApprovalRequired without an
        approved request given by `with_approval`."""
    def signing(self) -> SigningHandle:
        """This principal's signing keys."""
    def approvals(self) -> Approvals:
        """This principal's approval requests."""
    def with_approval(self, id: str) -> Handle:
        """This handle with approval request `id`: its next gated call (a
        destroy, a sensitive read) uses the approved request up."""

class ApprovalRequest:
    """An approval request as read. Times in ms since the epoch."""

    @property
    def id(self) -> str: ...
    @property
    def operation(self) -> str:
        """"destroy", "sensitive_read", "root_key_rotate", "key_destroy" or "apply_config"."""
    @property
    def path(self) -> str: ...
    @property
    def requester(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def state(self) -> str:
        """"pending", "approved", "refused", "used" or "expired"."""
    @property
    def approvals(self) -> list[tuple[str, int]]:
        """(principal, at_ms) of each approval, in order."""
    @property
    def refusals(self) -> list[tuple[str, int]]: ...
    @property
    def created_ms(self) -> int: ...
    @property
    def expires_ms(self) -> int: ...
    @property
    def used_by(self) -> Optional[str]: ...

class Gate:
    """One approval gate."""

    @property
    def operation(self) -> str: ...
    @property
    def pattern(self) -> Optional[str]:
        """None for the store-wide operations."""
    @property
    def required(self) -> int: ...
    @property
    def approvers(self) -> list[str]: ...

class ApprovalGates:
    """The store's gates and their revision (0 if never set)."""

    @property
    def revision(self) -> int: ...
    @property
    def gates(self) -> list[Gate]: ...
    @property
    def toml(self) -> str:
        """The gates as a gates file."""

class Approvals:
    """A principal's approval requests (asyncio API), from `handle.approvals()`."""

    @property
    def principal(self) -> str: ...
    def request(self, operation: str, path: str, reason: str, ttl: _Seconds) -> Awaitable[ApprovalRequest]:
        """`path` is "" for the store-wide operations."""
    def approve(self, id: str) -> Awaitable[ApprovalRequest]: ...
    def refuse(self, id: str) -> Awaitable[ApprovalRequest]: ...
    def get(self, id: str) -> Awaitable[ApprovalRequest]: ...
    def list(self) -> Awaitable[list[ApprovalRequest]]: ...
    def gates(self) -> Awaitable[ApprovalGates]: ...

class Alert:
    """One alert on unusual access (never a value)."""

    @property
    def kind(self) -> str:
        """"new_path", "read_rate", "bulk_access", "off_hours",
        "repeated_denials", "sensitive_read" or "stale_version"."""
    @property
    def severity(self) -> str:
        """"info", "warning" or "critical"."""
    @property
    def principal(self) -> str: ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def request_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def summary(self) -> str: ...
    @property
    def at_ms(self) -> int: ...

class AlertEngine:
    """Alert rules (TOML) over the audit logs opened with `alerts=engine`;
    `callback(alert)` runs on a worker thread (exceptions go to
    sys.unraisablehook and are counted, never stop the engine)."""

    def __init__(self, config: str, callback: Callable[[Alert], object]) -> None: ...
    def stats(self) -> dict[str, int]:
        """"raised", "delivered", "dropped", "sink_timeouts", "callback_errors"."""
    def settled(self) -> Awaitable[None]:
        """Resolves once every alert raised so far was delivered or dropped."""
    def wait_settled(self) -> None:
        """Blocking form of settled()."""

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
    def rotate_root_key(self, protector: _Protector) -> Awaitable[None]: ...
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
    def update_secret_metadata(
        self, path: str, *, owner: Optional[str] = ..., environment: Optional[str] = ...,
        tags: Optional[list[str]] = ..., custom: Optional[dict[str, str]] = ...,
        rotation_interval: Optional[_Seconds] = ..., max_versions: Optional[int] = ...
    ) -> Awaitable[SecretMetadata]: ...
    def delete_secret_metadata(self, path: str) -> Awaitable[None]: ...
    def inventory(
        self, prefix: str = "", *, audit_file: Union[str, PathLike[str], None] = None,
        owner: Optional[str] = None, environment: Optional[str] = None,
        tags: Optional[list[str]] = None, overdue: bool = False, unread_for: Optional[_Seconds] = None
    ) -> Awaitable[list[InventoryEntry]]: ...
    def open_audit_log(
        self, path: str, fsync: bool = True, alerts: Optional[AlertEngine] = None
    ) -> Awaitable[AuditLog]: ...
    def as_principal(self, name: str, policies: list[Policy], audit: AuditLog) -> Handle: ...
    def set_gates(
        self, toml: str, expected_revision: int, operator: Optional[_HandleLike] = None
    ) -> Awaitable[int]:
        """Replaces the approval gates through the door; the new revision."""
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
