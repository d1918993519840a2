// Versioned secrets, policies, principal handles and the audit trail: the
// Swift mirror of tests_py/test_store.py (not compiled on the project's
// machines, which have no Swift compiler; see README.md).
import Foundation
import XCTest

@testable import Strongroom

private let policyToml = """
name = "payment-svc"
[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["create", "read"]
"""

func newStore() async throws -> Strongroom {
    try await Strongroom.create(
        storage: Storage.memory(), protector: SoftwareProtector.fromKey(key: Data((0..<32).map { UInt8($0) })))
}

func tempDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

final class SecretsTests: XCTestCase {
    func testVersionsAndCasConflict() async throws {
        let room = try await newStore()
        let v1 = try await room.putSecret(path: "prod/app/db", value: Data("pw-1".utf8), cas: 0)
        XCTAssertEqual(v1.version, 1)
        XCTAssertNil(v1.deletedMs)
        XCTAssertNil(v1.destroyedMs)
        let v2 = try await room.putSecret(path: "prod/app/db", value: Data("pw-2".utf8), cas: 1)
        XCTAssertEqual(v2.version, 2)

        do {
            _ = try await room.putSecret(path: "prod/app/db", value: Data("pw-x".utf8), cas: 1)
            XCTFail("expected SecretCasMismatch")
        } catch StrongroomError.SecretCasMismatch(let code, let message, let f) {
            XCTAssertEqual(f["path"], .str(value: "prod/app/db"))
            XCTAssertEqual(f["expected"], .u64(value: 1))
            XCTAssertEqual(f["current"], .u64(value: 2))
            XCTAssertEqual(code, "secret.cas_mismatch")
            XCTAssertFalse(message.contains("pw-x"))
        }

        let latest = try await room.getSecret(path: "prod/app/db")
        XCTAssertEqual(latest.info.version, 2)
        XCTAssertEqual(latest.secret.reveal(), Data("pw-2".utf8))
        let first = try await room.getSecret(path: "prod/app/db", version: 1)
        XCTAssertEqual(first.secret.reveal(), Data("pw-1".utf8))
        XCTAssertEqual("\(first.secret)", "Secret([REDACTED; 4 bytes])")
        first.secret.wipe()
        XCTAssertEqual(first.secret.reveal(), Data(count: 4))

        _ = try await room.putSecret(path: "prod/app/api", value: Data("k".utf8))
        let top = try await room.listSecrets(prefix: "prod/")
        XCTAssertEqual(top, ["app/"])
        let names = try await room.listSecrets(prefix: "prod/app/")
        XCTAssertEqual(names.sorted(), ["api", "db"])

        let meta = try await room.secretMetadata(path: "prod/app/db")
        XCTAssertEqual(meta.path, "prod/app/db")
        XCTAssertEqual(meta.currentVersion, 2)
        XCTAssertEqual(meta.versions.map { $0.version }, [1, 2])

        await expectError({ _ = try await room.getSecret(path: "prod/app/none") }) {
            if case .SecretNotFound(let code, _, let f) = $0 {
                return f["path"]?.string == "prod/app/none" && f["version"]?.isNull == true && code == "secret.not_found"
            }
            return false
        }
        await expectError({ _ = try await room.getSecret(path: "prod/app/db", version: 9) }) {
            if case .SecretNotFound(_, _, let f) = $0 { return f["version"]?.number == 9 }
            return false
        }
        await expectError({ _ = try await room.putSecret(path: "Prod/../x", value: Data("v".utf8)) }) {
            if case .InvalidPath(let code, _, let f) = $0 { return f["path"]?.string == "Prod/../x" && code.hasPrefix("path.") }
            return false
        }
    }

    func testDeletedAndDestroyedAreDistinct() async throws {
        let room = try await newStore()
        for v in ["a", "b", "c"] {
            _ = try await room.putSecret(path: "prod/app/db", value: Data(v.utf8))
        }
        let deleted = try await room.deleteSecret(path: "prod/app/db", versions: [1])
        XCTAssertEqual(deleted, [1])
        let destroyed = try await room.destroySecret(path: "prod/app/db", versions: [2])
        XCTAssertEqual(destroyed, [2])

        await expectError({ _ = try await room.getSecret(path: "prod/app/db", version: 1) }) {
            if case .SecretVersionDeleted(let code, _, let f) = $0 {
                return f["version"]?.number == 1 && (f["deleted_at"]?.millis ?? 0) > 0 && code == "secret.version_deleted"
            }
            return false
        }
        await expectError({ _ = try await room.getSecret(path: "prod/app/db", version: 2) }) {
            if case .SecretVersionDestroyed(let code, _, let f) = $0 {
                return f["version"]?.number == 2 && (f["destroyed_at"]?.millis ?? 0) > 0 && code == "secret.version_destroyed"
            }
            return false
        }

        let undeleted = try await room.undeleteSecret(path: "prod/app/db", versions: [1])
        XCTAssertEqual(undeleted, [1])
        let back = try await room.getSecret(path: "prod/app/db", version: 1)
        XCTAssertEqual(back.secret.reveal(), Data("a".utf8))
        await expectError({ _ = try await room.undeleteSecret(path: "prod/app/db", versions: [2]) }) {
            if case .SecretVersionDestroyed = $0 { return true } else { return false }
        }

        // No versions given: the current one.
        let current = try await room.deleteSecret(path: "prod/app/db")
        XCTAssertEqual(current, [3])
    }

    func testPolicyDeniedAndAudited() async throws {
        let room = try await newStore()
        let file = try tempDir().appendingPathComponent("audit.jsonl")
        let policy = try Policy.fromToml(text: policyToml)
        XCTAssertEqual(policy.name(), "payment-svc")
        let audit = try await room.openAuditLog(path: file.path, fsync: true)
        XCTAssertEqual(audit.path(), file.path)
        let svc = room.asPrincipal(name: "payment-svc", policies: [policy], audit: audit)
        XCTAssertEqual(svc.principal(), "payment-svc")

        let v = try await svc.put(path: "prod/payment-svc/postgres", value: Data("pw-1".utf8), cas: 0)
        XCTAssertEqual(v.version, 1)
        let read = try await svc.read(path: "prod/payment-svc/postgres")
        XCTAssertEqual(read.secret.reveal(), Data("pw-1".utf8))

        await expectError({ _ = try await svc.read(path: "prod/other/db") }) {
            if case .PolicyDenied(let code, _, let f) = $0 {
                return f["principal"]?.string == "payment-svc" && f["capability"]?.string == "read"
                    && f["path"]?.string == "prod/other/db" && code == "policy.denied"
            }
            return false
        }
        await expectError({ _ = try await svc.put(path: "prod/other/db", value: Data("x".utf8)) }) {
            if case .PolicyDenied = $0 { return true } else { return false }
        }
        await expectError({ _ = try await svc.put(path: "prod/payment-svc/postgres", value: Data("pw-2".utf8)) }) {
            if case .PolicyDenied(_, _, let f) = $0 { return f["capability"]?.string == "update" }
            return false
        }

        let text = try String(contentsOf: file, encoding: .utf8)
        XCTAssertFalse(text.contains("pw-1"))
        XCTAssertEqual(text.split(separator: "\n").filter { $0.contains("prod/other/db") }.count, 2)

        await expectError({
            _ = try Policy.fromToml(text: "name = \"x\"\n[[path]]\npattern = \"a/*\"\ncapabilities = [\"fly\"]\n")
        }) { if case .PolicyParse(let code, _, _) = $0 { return code == "policy.parse" } else { return false } }
    }

    func testAuditFileVerifiesAndTamperingNamesTheSeq() async throws {
        let room = try await newStore()
        let dir = try tempDir()
        let file = dir.appendingPathComponent("audit.jsonl")
        let audit = try await room.openAuditLog(path: file.path, fsync: false)
        let policy = try Policy.fromToml(text: policyToml)
        let svc = room.asPrincipal(name: "payment-svc", policies: [policy], audit: audit)
        _ = try await svc.put(path: "prod/payment-svc/a", value: Data("v-a".utf8))
        _ = try await svc.put(path: "prod/payment-svc/b", value: Data("v-b".utf8))
        _ = try await svc.read(path: "prod/payment-svc/a")

        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
        let report = try await verifyAuditFile(path: file.path, room: room)
        XCTAssertEqual(report.records, UInt64(lines.count))
        XCTAssertEqual(report.headMac.count, 64)

        // Edit one record in a copy: the chain breaks at its seq.
        let idx = lines.firstIndex { $0.contains("prod/payment-svc/b") }!
        let record = try JSONSerialization.jsonObject(with: Data(lines[idx].utf8)) as! [String: Any]
        let seq = (record["seq"] as! NSNumber).uint64Value
        var edited = lines
        edited[idx] = edited[idx].replacingOccurrences(of: "prod/payment-svc/b", with: "prod/payment-svc/z")
        let tampered = dir.appendingPathComponent("tampered.jsonl")
        try (edited.joined(separator: "\n") + "\n").write(to: tampered, atomically: true, encoding: .utf8)
        await expectError({ _ = try await verifyAuditFile(path: tampered.path, room: room) }) {
            if case .AuditChainBroken(let code, _, let f) = $0 {
                return f["seq"]?.number == seq && (f["reason"]?.string ?? "").contains("MAC")
                    && f["break_kind"]?.string == "bad_mac" && code == "audit.chain_broken"
            }
            return false
        }

        // Another store's key does not verify this file.
        let other = try await Strongroom.create(storage: Storage.memory(), protector: SoftwareProtector.fromKey(key: randomKey32()))
        await expectError({ _ = try await verifyAuditFile(path: file.path, room: other) }) {
            if case .AuditChainBroken = $0 { return true } else { return false }
        }
    }
}

func randomKey32() -> Data { Data((0..<32).map { _ in UInt8.random(in: 0...255) }) }
