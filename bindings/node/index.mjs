// ES module entry: the same objects as the CommonJS entry (index.js).
import strongroom from './index.js'

export const {
  Strongroom,
  Storage,
  Secret,
  sealWithKey,
  sealedKeyVersion,
  openSealed,
  generateKeyFile,
  StrongroomError,
  DecryptionFailed,
  MalformedSealedValue,
  UnknownKeyVersion,
  KeyVersionRetired,
  InvalidKeyTransition,
  KeyInUse,
  InvalidPath,
  Sealed,
  AlreadyInitialized,
  NotInitialized,
  UnsealFailed,
  KeyFileError,
  ProtectorError,
  StorageError,
  StorageConflict,
  CorruptRecord,
  RandomFailure,
  InvalidArgument,
  SecretWiped,
  PolicyDenied,
  LeaseExpired,
  CasConflict
} = strongroom

export default strongroom
