// swift-tools-version:5.9
// Strongroom for Swift: the uniffi-generated bindings over libstrongroom_ffi.
// Build the Rust library first (see README.md), then e.g.
//   swift test -Xlinker -L../../target/release
import PackageDescription

let package = Package(
    name: "Strongroom",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Strongroom", targets: ["Strongroom"]),
    ],
    targets: [
        .systemLibrary(name: "StrongroomFFI", path: "Sources/StrongroomFFI/include"),
        .target(name: "Strongroom", dependencies: ["StrongroomFFI"], path: "Sources/Strongroom"),
        .testTarget(
            name: "StrongroomTests",
            dependencies: ["Strongroom"],
            path: "Tests/StrongroomTests"
        ),
    ]
)
