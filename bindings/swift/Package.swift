// swift-tools-version:5.9
// Strongroom for Swift: the uniffi-generated bindings (Sources/Strongroom)
// over the Rust library libstrongroom_ffi. SwiftPM does not compile the Rust
// library; it is supplied as a binary (README.md, "How the binary is
// supplied"):
//
// - Apple platforms (macOS, iOS, iOS simulator): the binary target
//   `StrongroomFFI`, the XCFramework StrongroomFFI.xcframework beside this
//   file (git-ignored), which `bash build-xcframework.sh` builds on a Mac with
//   Xcode (static libstrongroom_ffi.a per platform, the uniffi header and a
//   module map). A published release would replace the path with the zip
//   that `build-xcframework.sh --zip` makes:
//     .binaryTarget(name: "StrongroomFFI",
//                   url: "https://<release host>/StrongroomFFI.xcframework.zip",
//                   checksum: "<printed by build-xcframework.sh --zip>")
// - Linux (SwiftPM has no XCFramework support there), or any host with
//   STRONGROOM_FFI=system in the environment: the system-library target in
//   Sources/StrongroomFFI/include, which links libstrongroom_ffi built by
//   `cargo build --release -p strongroom-ffi`; then e.g.
//     swift test -Xlinker -L../../target/release
//
// No Swift compiler exists on this project's machines: neither variant is
// built there (bindings/swift/test.sh exercises the same FFI from Python).
import PackageDescription

#if os(Linux)
let useSystemLibrary = true
#else
let useSystemLibrary = Context.environment["STRONGROOM_FFI"] == "system"
#endif

let ffi: Target = useSystemLibrary
    ? .systemLibrary(name: "StrongroomFFI", path: "Sources/StrongroomFFI/include")
    : .binaryTarget(name: "StrongroomFFI", path: "StrongroomFFI.xcframework")

let package = Package(
    name: "Strongroom",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Strongroom", targets: ["Strongroom"]),
    ],
    targets: [
        ffi,
        .target(name: "Strongroom", dependencies: ["StrongroomFFI"], path: "Sources/Strongroom"),
        .testTarget(
            name: "StrongroomTests",
            dependencies: ["Strongroom"],
            path: "Tests/StrongroomTests"
        ),
    ]
)
