// The error table through the FFI: the Swift mirror of
// tests_py/test_errors.py (not compiled on the project's machines, which
// have no Swift compiler; see README.md). Real failures arrive as the
// table's case (class) with its code and exactly its fields.
import Foundation
import XCTest

@testable import Strongroom

private let table = Dictionary(uniqueKeysWithValues: errorCodes().map { ($0.code, $0) })

/// Runs `body`, which must throw a StrongroomError of the table's class for
/// `code`, with exactly the code's fields; returns its fields.
@discardableResult
private func expectTableError(
    _ code: String, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void
) async -> [String: FieldValue] {
    var got: [String: FieldValue] = [:]
    await expectError(body, file: file, line: line) { e in
        guard let row = table[code] else { return false }
        // Every case carries (code:message:fields:).
        var values: [String: Any] = [:]
        if let payload = Mirror(reflecting: e).children.first?.value {
            for part in Mirror(reflecting: payload).children { if let l = part.label { values[l] = part.value } }
        }
        guard let c = values["code"] as? String, let f = values["fields"] as? [String: FieldValue] else { return false }
        got = f
        return c == code && e.caseName == row.className
            && Set(f.keys) == Set(row.fields.map { $0.name })
    }
    return got
}

final class ErrorTableTests: XCTestCase {
    func testEveryCodeHasAClassAndUniqueFields() {
        XCTAssertEqual(table.count, errorCodes().count)
        for row in errorCodes() {
            XCTAssertFalse(row.className.isEmpty)
            XCTAssertEqual(Set(row.fields.map { $0.name }).count, row.fields.count, row.code)
        }
    }

    func testRealErrorsCarryTheTablesClassCodeAndFields() async throws {
        let key = randomKey32()
        let room = try await Strongroom.create(storage: Storage.memory(), protector: SoftwareProtector.fromKey(key: key))
        let sealed = try sealWithKey(key: randomKey32(), algorithm: "aes-256-gcm", keyVersion: 1, path: "p", version: 1, plaintext: Data("x".utf8))
        await expectTableError("decryption_failed") {
            _ = try openSealed(key: key, algorithm: "aes-256-gcm", path: "p", version: 1, sealed: sealed)
        }
        let storage = Storage.memory()
        _ = try await Strongroom.create(storage: storage, protector: SoftwareProtector.fromKey(key: key))
        await expectTableError("protector.unwrap_failed") {
            _ = try await Strongroom.unseal(storage: storage, protector: SoftwareProtector.fromKey(key: randomKey32()))
        }
        let notFound = await expectTableError("secret.not_found") { _ = try await room.getSecret(path: "prod/app/none") }
        XCTAssertEqual(notFound["version"], .null)
        _ = try await room.putSecret(path: "prod/app/db", value: Data("pw-1".utf8), cas: 0)
        let cas = await expectTableError("secret.cas_mismatch") {
            _ = try await room.putSecret(path: "prod/app/db", value: Data("pw-x".utf8), cas: 0)
        }
        XCTAssertEqual(cas["current"], .u64(value: 1))
        await expectTableError("path.upper_case") { _ = try await room.putSecret(path: "Prod/x", value: Data("v".utf8)) }
        let mgr = try LeaseManager(store: room, clock: Clock.manual(startMs: 1_700_000_000_000))
        await expectTableError("lease.not_found") { _ = try await mgr.lookup(id: "lease_000000000000000000000000000000ff") }
        await expectTableError("lease.invalid_id") { _ = try await mgr.lookup(id: "nope") }
    }
}
