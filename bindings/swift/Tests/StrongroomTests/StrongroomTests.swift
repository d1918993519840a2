// The scenarios of bindings/SCENARIOS.md in Swift. No Swift compiler exists on
// the project's CI machines: there the same FFI runs the same scenarios
// through uniffi's Python bindings (tests_py/). Run these on macOS or Linux:
//   cargo build --release -p strongroom-ffi
//   cd bindings/swift && swift test -Xlinker -L../../target/release
import Foundation
import XCTest

@testable import Strongroom

private let repoRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func hex(_ s: String) -> Data {
    var data = Data()
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        data.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return data
}

private func toHex(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }

private func randomKey() -> Data { Data((0..<32).map { _ in UInt8.random(in: 0...255) }) }

private struct Vector: Decodable {
    let name, algorithm, key, nonce, path, plaintext, sealed: String
    let key_version: UInt32
    let version: UInt64
}

private struct VectorFile: Decodable { let vectors: [Vector] }

private struct MatrixValue: Codable {
    let algorithm, key, path, plaintext, sealed: String
    let key_version: UInt32
    let version: UInt64
}

private struct MatrixFile: Codable {
    let writer: String
    let values: [MatrixValue]
}

func expectError(
    _ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line,
    _ check: (StrongroomError) -> Bool
) async {
    do {
        try await body()
        XCTFail("expected an error", file: file, line: line)
    } catch let e as StrongroomError {
        XCTAssertTrue(check(e), "unexpected error \(e)", file: file, line: line)
    } catch {
        XCTFail("not a StrongroomError: \(error)", file: file, line: line)
    }
}

extension FieldValue {
    /// The text of a `.str` value.
    var string: String? { if case .str(let v) = self { return v }; return nil }
    /// The number of a `.u64` value.
    var number: UInt64? { if case .u64(let v) = self { return v }; return nil }
    /// The milliseconds of a `.time` value.
    var millis: UInt64? { if case .time(let v) = self { return v }; return nil }
    /// Whether the value is `.null` (an absent optional field).
    var isNull: Bool { if case .null = self { return true }; return false }
}

extension StrongroomError {
    /// The case's name, which is the error table's class of its code.
    var caseName: String { Mirror(reflecting: self).children.first?.label ?? "" }
}

final class StrongroomTests: XCTestCase {
    // S1
    func testVectors() async throws {
        let url = repoRoot.appendingPathComponent("docs/vectors/sealed-v1.json")
        let file = try JSONDecoder().decode(VectorFile.self, from: Data(contentsOf: url))
        XCTAssertFalse(file.vectors.isEmpty)
        for v in file.vectors {
            let key = hex(v.key), sealed = hex(v.sealed), plain = hex(v.plaintext)
            XCTAssertEqual(
                try openSealed(key: key, algorithm: v.algorithm, path: v.path, version: v.version, sealed: sealed).reveal(),
                plain, v.name)
            XCTAssertEqual(try sealedKeyVersion(sealed: sealed), v.key_version)
            let fresh = try sealWithKey(
                key: key, algorithm: v.algorithm, keyVersion: v.key_version, path: v.path, version: v.version,
                plaintext: plain)
            XCTAssertEqual(fresh.count, sealed.count)
            XCTAssertEqual(fresh.prefix(8), sealed.prefix(8))
            XCTAssertNotEqual(fresh.subdata(in: 8..<20), sealed.subdata(in: 8..<20))
            XCTAssertEqual(
                try openSealed(key: key, algorithm: v.algorithm, path: v.path, version: v.version, sealed: fresh).reveal(),
                plain)
            await expectError({
                _ = try openSealed(key: key, algorithm: v.algorithm, path: v.path, version: v.version &+ 1, sealed: sealed)
            }) { if case .DecryptionFailed = $0 { return true } else { return false } }
            await expectError({
                _ = try openSealed(key: key, algorithm: v.algorithm, path: v.path + "x", version: v.version, sealed: sealed)
            }) { if case .DecryptionFailed = $0 { return true } else { return false } }
            var flipped = sealed
            flipped[flipped.count - 1] ^= 1
            await expectError({
                _ = try openSealed(key: key, algorithm: v.algorithm, path: v.path, version: v.version, sealed: flipped)
            }) { if case .DecryptionFailed = $0 { return true } else { return false } }
        }
    }

    // S2
    func testMatrix() throws {
        var values: [MatrixValue] = []
        for (alg, kv) in [("aes-256-gcm", UInt32(5)), ("chacha20-poly1305", UInt32(6))] {
            let key = randomKey()
            let plain = Data("sealed by swift with \(alg)".utf8)
            let path = "xlang/swift/\(alg)"
            let sealed = try sealWithKey(key: key, algorithm: alg, keyVersion: kv, path: path, version: 9, plaintext: plain)
            values.append(MatrixValue(
                algorithm: alg, key: toHex(key), path: path, plaintext: toHex(plain), sealed: toHex(sealed),
                key_version: kv, version: 9))
        }
        let env = ProcessInfo.processInfo.environment
        let dir = URL(fileURLWithPath: env["STRONGROOM_XLANG_DIR"]
            ?? ((env["CARGO_TARGET_DIR"] ?? repoRoot.appendingPathComponent("target").path) + "/strongroom-xlang"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try JSONEncoder().encode(MatrixFile(writer: "swift", values: values))
            .write(to: dir.appendingPathComponent("swift.json"))
        var writers = Set<String>()
        for d in [dir, repoRoot.appendingPathComponent("bindings/xlang")] {
            for f in try FileManager.default.contentsOfDirectory(at: d, includingPropertiesForKeys: nil)
            where f.pathExtension == "json" {
                let doc = try JSONDecoder().decode(MatrixFile.self, from: Data(contentsOf: f))
                for v in doc.values {
                    let got = try openSealed(
                        key: hex(v.key), algorithm: v.algorithm, path: v.path, version: v.version, sealed: hex(v.sealed))
                    XCTAssertEqual(got.reveal(), hex(v.plaintext), f.path)
                }
                writers.insert(doc.writer)
            }
        }
        XCTAssertTrue(Set(["python", "rust", "uniffi", "swift"]).isSubset(of: writers), "\(writers)")
    }

    // S3
    func testLifecycle() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let keyFile = dir.appendingPathComponent("root.key").path
        try generateKeyFile(path: keyFile)
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as! NSNumber
        XCTAssertEqual(mode.intValue & 0o777, 0o600)
        let prot = try SoftwareProtector.fromKeyFile(path: keyFile)
        let storage = Storage.memory()
        XCTAssertEqual(storage.backend(), "memory")
        let initialized = try await storage.isInitialized()
        XCTAssertFalse(initialized)
        let room = try await Strongroom.create(storage: storage, protector: prot)
        let sealed = try await room.sealValue(plaintext: Data("hunter2".utf8), path: "prod/app/db", version: 1)
        XCTAssertEqual(try sealedKeyVersion(sealed: sealed), 1)
        XCTAssertEqual(try room.openValue(sealed: sealed, path: "prod/app/db", version: 1).reveal(), Data("hunter2".utf8))
        try await room.putSealed(key: "s/app/db", plaintext: Data("pw-1".utf8), path: "app/db", version: 1)
        let got = try await room.getSealed(key: "s/app/db", path: "app/db", version: 1)
        XCTAssertEqual(got?.reveal(), Data("pw-1".utf8))
        let missing = try await room.getSealed(key: "s/missing", path: "missing", version: 1)
        XCTAssertNil(missing)
        await expectError({ _ = try await Strongroom.create(storage: storage, protector: prot) }) {
            if case .AlreadyInitialized = $0 { return true } else { return false }
        }
        room.seal()
        XCTAssertTrue(room.isSealed())
        await expectError({ _ = try room.openValue(sealed: sealed, path: "prod/app/db", version: 1) }) {
            if case .Sealed = $0 { return true } else { return false }
        }
        let again = try await Strongroom.unseal(storage: storage, protector: SoftwareProtector.fromKeyFile(path: keyFile))
        let reopened = try await again.getSealed(key: "s/app/db", path: "app/db", version: 1)
        XCTAssertEqual(reopened?.reveal(), Data("pw-1".utf8))
        await expectError({
            _ = try await Strongroom.unseal(storage: storage, protector: SoftwareProtector.fromKey(key: randomKey()))
        }) { if case .ProtectorError(let code, _, let f) = $0 { return code == "protector.unwrap_failed" && f["protector"]?.string == "software" } else { return false } }
        await expectError({ _ = try await Strongroom.unseal(storage: Storage.memory(), protector: prot) }) {
            if case .NotInitialized = $0 { return true } else { return false }
        }
    }

    // S4
    func testRotateRewrap() async throws {
        let room = try await Strongroom.create(storage: Storage.memory(), protector: SoftwareProtector.fromKey(key: randomKey()))
        for i in 0..<3 {
            try await room.putSealed(key: "s/r\(i)", plaintext: Data("value-\(i)".utf8), path: "r/\(i)", version: 1)
        }
        let old = try await room.sealValue(plaintext: Data("old".utf8), path: "o", version: 1)
        let info = try await room.rotate()
        XCTAssertEqual(info.version, 2)
        XCTAssertEqual(info.state, .primary)
        XCTAssertEqual(try room.keys().map { $0.state }, [.active, .primary])
        let new = try await room.sealValue(plaintext: Data("new".utf8), path: "n", version: 1)
        XCTAssertEqual(try sealedKeyVersion(sealed: new), 2)
        try await room.setMinDecryptionVersion(min: 2)
        await expectError({ _ = try room.openValue(sealed: old, path: "o", version: 1) }) {
            if case .KeyVersionRetired(_, _, let f) = $0 { return f["version"]?.number == 1 && f["min_decryption_version"]?.number == 2 } else { return false }
        }
        await expectError({ try await room.destroyKey(version: 1) }) {
            if case .KeyInUse(_, _, let f) = $0 { return f["records"]?.number == 3 } else { return false }
        }
        try await room.setMinDecryptionVersion(min: 1)
        let report = try await room.rewrap(batchSize: 2)
        XCTAssertEqual(report, RewrapReport(scanned: 3, rewrapped: 3, unreadable: []))
        try await room.setMinDecryptionVersion(min: 2)
        try await room.destroyKey(version: 1)
        for i in 0..<3 {
            let v = try await room.getSealed(key: "s/r\(i)", path: "r/\(i)", version: 1)
            XCTAssertEqual(v?.reveal(), Data("value-\(i)".utf8))
        }
        XCTAssertEqual(try room.keys().map { $0.state }, [.destroyed, .primary])
    }

    // S5
    func testBadInput() async throws {
        let room = try await Strongroom.create(storage: Storage.memory(), protector: SoftwareProtector.fromKey(key: randomKey()))
        await expectError({ _ = try room.openValue(sealed: Data(repeating: 7, count: 40), path: "p", version: 1) }) {
            if case .MalformedSealedValue = $0 { return true } else { return false }
        }
        var sealed = try await room.sealValue(plaintext: Data("x".utf8), path: "p", version: 1)
        sealed.replaceSubrange(4..<8, with: [0, 0, 0, 99])
        let tampered = sealed
        await expectError({ _ = try room.openValue(sealed: tampered, path: "p", version: 1) }) {
            if case .UnknownKeyVersion(let code, _, let f) = $0 { return f["version"]?.number == 99 && code == "unknown_key_version" } else { return false }
        }
        await expectError({ try await room.putSealed(key: "outside/prefix", plaintext: Data(), path: "p", version: 1) }) {
            if case .InvalidArgument = $0 { return true } else { return false }
        }
        await expectError({
            _ = try sealWithKey(key: Data(count: 31), algorithm: "aes-256-gcm", keyVersion: 1, path: "p", version: 1, plaintext: Data())
        }) { if case .InvalidArgument = $0 { return true } else { return false } }
        await expectError({
            _ = try sealWithKey(key: randomKey(), algorithm: "des", keyVersion: 1, path: "p", version: 1, plaintext: Data())
        }) { if case .InvalidArgument = $0 { return true } else { return false } }
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString).path
        try generateKeyFile(path: keyFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        await expectError({ _ = try SoftwareProtector.fromKeyFile(path: keyFile) }) {
            if case .KeyFileError(let code, let message, let f) = $0 {
                return f["path"]?.string == keyFile && message.contains("chmod 600") && code == "key_file.loose_permissions"
            }
            return false
        }
    }

    // S6
    func testSecretRedactedAndWiped() throws {
        let key = randomKey()
        let sealed = try sealWithKey(
            key: key, algorithm: "aes-256-gcm", keyVersion: 1, path: "p", version: 1, plaintext: Data("correct horse".utf8))
        let s = try openSealed(key: key, algorithm: "aes-256-gcm", path: "p", version: 1, sealed: sealed)
        XCTAssertEqual("\(s)", "Secret([REDACTED; 13 bytes])")
        XCTAssertFalse(String(describing: s).contains("horse"))
        XCTAssertEqual(s.len(), 13)
        s.wipe()
        XCTAssertEqual(s.reveal(), Data(count: 13))
    }
}
