// S7 (leases on a manual clock, Swift revokers) and S8 (API-key rotation):
// the Swift mirror of tests_py/test_lease.py and tests_py/test_rotation.py.
import Foundation
import XCTest

@testable import Strongroom

private let t0: UInt64 = 1_700_000_000_000
private let s: UInt64 = 1000

/// Records what it revokes.
final class Recorder: LeaseRevoker, @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [(id: String, data: Data)] = []

    var revoked: [(id: String, data: Data)] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }

    func revoke(lease: Lease, revocationData: Data) async throws {
        lock.lock()
        defer { lock.unlock() }
        seen.append((lease.id, revocationData))
    }
}

/// Fails the way a revoker should.
final class Failing: LeaseRevoker, @unchecked Sendable {
    func revoke(lease: Lease, revocationData: Data) async throws {
        throw RevokerError.Failed(reason: "target refused: role is busy")
    }
}

// A lease manager seals its records under a store's keys, so each test
// builds it on a fresh store (`newStore()`, in SecretsTests.swift).
final class LeaseTests: XCTestCase {
    func testIssueRenewRevokeExpire() async throws {
        let clock = Clock.manual(startMs: t0)
        XCTAssertEqual(clock.nowMs(), t0)
        let store = try await newStore()
        let mgr = try LeaseManager(store: store, clock: clock)
        let rec = Recorder()
        mgr.registerRevoker(engine: "test", revoker: rec)

        let lease = try await mgr.issue(
            path: "db/creds/app", engine: "test", ttlMs: 60 * s, maxTtlMs: 300 * s, renewable: true,
            revocationData: Data("role-1".utf8))
        XCTAssertTrue(lease.id.hasPrefix("lease_"))
        XCTAssertEqual(lease.expiresMs, t0 + 60 * s)

        try clock.advanceMs(byMs: 50 * s)
        let renewed = try await mgr.renew(id: lease.id, incrementMs: 120 * s)
        XCTAssertEqual(renewed.expiresMs, t0 + 170 * s)
        try clock.advanceMs(byMs: 100 * s)
        let capped = try await mgr.renew(id: lease.id, incrementMs: 1000 * s)
        XCTAssertEqual(capped.expiresMs, t0 + 300 * s)

        let other = try await mgr.issue(
            path: "db/creds/app", engine: "test", ttlMs: 60 * s, maxTtlMs: 60 * s, renewable: false,
            revocationData: Data("role-2".utf8))
        await expectError({ _ = try await mgr.renew(id: other.id, incrementMs: 10 * s) }) {
            if case .LeaseNotRenewable(let code, _, let f) = $0 { return f["id"]?.string == other.id && code == "lease.not_renewable" }
            return false
        }
        _ = try await mgr.revoke(id: other.id)
        XCTAssertEqual(rec.revoked.map { $0.id }, [other.id])
        await expectError({ _ = try await mgr.lookup(id: other.id) }) {
            if case .LeaseNotFound(let code, _, let f) = $0 { return f["id"]?.string == other.id && code == "lease.not_found" } else { return false }
        }

        try clock.advanceMs(byMs: 151 * s)
        let report = try await mgr.runDue()
        XCTAssertEqual(report.revoked, 1)
        XCTAssertEqual(rec.revoked.last?.id, lease.id)
        XCTAssertEqual(rec.revoked.last?.data, Data("role-1".utf8))

        let events = mgr.takeEvents()
        XCTAssertTrue(events.contains { if case .issued(let id, _, _) = $0 { return id == lease.id }; return false })
        XCTAssertTrue(events.contains { if case .renewed(_, _, _, let capped) = $0 { return capped }; return false })
        XCTAssertTrue(events.contains { if case .revoked(let id, _, _) = $0 { return id == lease.id }; return false })

        await expectError({ _ = try await mgr.lookup(id: "nope") }) {
            if case .LeaseInvalidId(_, _, let f) = $0 { return f["text"]?.string == "nope" } else { return false }
        }
    }

    func testFailingRevokerDefersThenForceRevoke() async throws {
        let store = try await newStore()
        let mgr = try LeaseManager(store: store, clock: Clock.manual(startMs: t0))
        mgr.registerRevoker(engine: "flaky", revoker: Failing())
        let lease = try await mgr.issue(
            path: "db/creds/flaky", engine: "flaky", ttlMs: 60 * s, maxTtlMs: 300 * s, renewable: true)
        await expectError({ _ = try await mgr.revoke(id: lease.id) }) {
            if case .LeaseRevocationDeferred(let code, _, let f) = $0 {
                return f["id"]?.string == lease.id && f["attempts"]?.number == 1
                    && (f["reason"]?.string ?? "").contains("role is busy")
                    && (f["next_try"]?.millis ?? 0) > t0 && code == "lease.revocation_deferred"
            }
            return false
        }
        _ = try await mgr.forceRevoke(id: lease.id)
        await expectError({ _ = try await mgr.lookup(id: lease.id) }) {
            if case .LeaseNotFound = $0 { return true } else { return false }
        }
    }

    func testRevokePrefixAndQuota() async throws {
        let store = try await newStore()
        let mgr = try LeaseManager(store: store, clock: Clock.manual(startMs: t0), options: LeaseOptions(maxLeases: 2))
        let rec = Recorder()
        mgr.registerRevoker(engine: "test", revoker: rec)
        let a = try await mgr.issue(path: "db/creds/a", engine: "test", ttlMs: 60 * s, maxTtlMs: 300 * s, renewable: true)
        let b = try await mgr.issue(path: "db/creds/b", engine: "test", ttlMs: 60 * s, maxTtlMs: 300 * s, renewable: true)
        await expectError({
            _ = try await mgr.issue(path: "db/creds/c", engine: "test", ttlMs: 60 * s, maxTtlMs: 300 * s, renewable: true)
        }) {
            if case .LeaseQuotaExceeded(_, _, let f) = $0 { return f["limit"]?.number == 2 && f["count"]?.number == 2 }
            return false
        }
        let r = try await mgr.revokePrefix(prefix: "db/creds")
        XCTAssertEqual(Set(r.revoked), Set([a.id, b.id]))
        XCTAssertEqual(r.pending, [])
    }
}

final class RotationTests: XCTestCase {
    private let format = ApiKeyFormat.base62(prefix: "sk_", chars: 32)

    func testApiKeyRotationWithOverlap() async throws {
        let room = try await newStore()
        let verifier = try ApiKeyVerifier()
        let engine = try await RotationEngine.apiKey(
            room: room, name: "svc/api-key", format: format, verifier: verifier,
            options: RotationOptions(gracePeriodMs: 3_600_000))

        let r1 = try await engine.rotateNow()
        XCTAssertEqual(r1.promoted, 1)
        let key1 = try await engine.staged().current!.secret().reveal()
        XCTAssertEqual(key1.count, 35)
        XCTAssertEqual(verifier.verify(presented: key1), .current)

        let r2 = try await engine.rotateNow()
        XCTAssertEqual(r2.promoted, 2)
        let status = try await engine.status()
        XCTAssertEqual(status.current, 2)
        XCTAssertEqual(status.previous, 1)
        let staged = try await engine.staged()
        let key2 = staged.current!.secret().reveal()
        XCTAssertEqual(verifier.verify(presented: key2), .current)
        XCTAssertEqual(verifier.verify(presented: key1), .previous)
        XCTAssertEqual(verifier.verify(presented: Data(("sk_" + String(repeating: "0", count: 32)).utf8)), .noMatch)

        // Staged secrets print as a redaction.
        XCTAssertEqual("\(staged.current!)", "Credential(version=2, identity=\"sk_\", secret=[REDACTED; 35 bytes])")
        XCTAssertFalse("\(staged)".contains(String(decoding: key2, as: UTF8.self)))

        // A second engine over the same store sees the same versions.
        let verifier2 = try ApiKeyVerifier()
        let engine2 = try await RotationEngine.apiKey(room: room, name: "svc/api-key", format: format, verifier: verifier2)
        let status2 = try await engine2.status()
        XCTAssertEqual(status2.current, 2)
        XCTAssertEqual(status2.previous, 1)
        XCTAssertEqual(verifier2.verify(presented: key2), .current)
        XCTAssertEqual(verifier2.verify(presented: key1), .previous)

        let revoked = try await engine.revokeDue()
        XCTAssertFalse(revoked)  // grace period not over
    }

    func testGracePeriodZeroRevokesPrevious() async throws {
        let room = try await newStore()
        let verifier = try ApiKeyVerifier()
        let engine = try await RotationEngine.apiKey(
            room: room, name: "svc/api-key", format: format, verifier: verifier,
            options: RotationOptions(gracePeriodMs: 0))
        _ = try await engine.rotateNow()
        let old = try await engine.staged().current!.secret().reveal()
        _ = try await engine.rotateNow()
        XCTAssertEqual(verifier.verify(presented: old), .previous)
        let revoked = try await engine.revokeDue()
        XCTAssertTrue(revoked)
        let status = try await engine.status()
        XCTAssertNil(status.previous)
        XCTAssertEqual(verifier.verify(presented: old), .noMatch)
    }

    func testBadNameIsARotationError() async throws {
        let room = try await newStore()
        await expectError({
            _ = try await RotationEngine.apiKey(room: room, name: "Bad Name!", format: self.format, verifier: ApiKeyVerifier())
        }) { if case .RotationInvalidName(let code, _, _) = $0 { return code == "rotation.invalid_name" } else { return false } }
    }
}

/// S9: a SoftHSM2 token made in a temporary directory. SoftHSM reads
/// SOFTHSM2_CONF once per process, so the tokens are made once, before any
/// PKCS#11 call. Skipped where SoftHSM2 is not installed.
final class Pkcs11Tests: XCTestCase {
    private static let userPin = "1234-user"
    private static let module: String? = {
        let candidates = [
            "/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/opt/homebrew/lib/softhsm/libsofthsm2.so",
            "/usr/local/lib/softhsm/libsofthsm2.so",
        ]
        guard let module = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }),
            let dir = try? tempDir()
        else { return nil }
        let tokens = dir.appendingPathComponent("tokens")
        try? FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        let conf = dir.appendingPathComponent("softhsm2.conf")
        let text = "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        guard (try? text.write(to: conf, atomically: true, encoding: .utf8)) != nil else { return nil }
        setenv("SOFTHSM2_CONF", conf.path, 1)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["softhsm2-util", "--init-token", "--free", "--label", "swift-s9",
                       "--so-pin", "87654321", "--pin", userPin]
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        return p.terminationStatus == 0 ? module : nil
    }()

    func testRootKeyInToken() async throws {
        guard let module = Self.module else { throw XCTSkip("SoftHSM2 is not installed") }
        let prot = Pkcs11Protector(modulePath: module, tokenLabel: "swift-s9", pin: Self.userPin, keyLabel: "root-kek")
        try await prot.initKey()
        XCTAssertEqual(prot.keyVersion(), 1)
        XCTAssertFalse("\(prot)".contains(Self.userPin))

        let db = try tempDir().appendingPathComponent("store.db").path
        let room = try await Strongroom.createWithPkcs11(storage: Storage.sqlite(path: db), protector: prot)
        _ = try await room.putSecret(path: "prod/app/db", value: Data("pw-in-hsm".utf8))
        room.seal()
        XCTAssertTrue(room.isSealed())

        let again = try await Strongroom.unsealWithPkcs11(
            storage: Storage.sqlite(path: db),
            protector: Pkcs11Protector(modulePath: module, tokenLabel: "swift-s9", pin: Self.userPin, keyLabel: "root-kek"))
        let read = try await again.getSecret(path: "prod/app/db")
        XCTAssertEqual(read.secret.reveal(), Data("pw-in-hsm".utf8))

        let wrong = Pkcs11Protector(modulePath: module, tokenLabel: "swift-s9", pin: "0000-wrong", keyLabel: "root-kek")
        await expectError({ _ = try await Strongroom.unsealWithPkcs11(storage: Storage.sqlite(path: db), protector: wrong) }) {
            if case .ProtectorError(let code, let message, let f) = $0 {
                return f["protector"]?.string == "pkcs11" && code == "protector.wrong_pin" && message.lowercased().contains("pin")
                    && !message.contains("0000-wrong")
            }
            return false
        }
        XCTAssertTrue(room.isSealed())
        XCTAssertNil(wrong.keyVersion())
    }
}
