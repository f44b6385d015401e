// swift-tools-version:5.9
// The OpKey Swift package: the Rust core as a static XCFramework (`OpKeyFFI`), the
// UniFFI-generated Swift over it (`OpKeyBindings`), and the small idiomatic layer the app
// uses (`OpKey`). The XCFramework and the generated Swift are made by
// scripts/build-xcframework and are not in git.
import PackageDescription

let package = Package(
    name: "OpKey",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "OpKey", targets: ["OpKey"]),
    ],
    targets: [
        // The Rust static library. Its Headers/ hold opkey_ffiFFI.h and a module.modulemap
        // declaring module `opkey_ffiFFI`, the module the generated Swift imports. SwiftPM
        // wants a binary target named like its .xcframework file; the module name is the
        // modulemap's.
        .binaryTarget(name: "OpKeyFFI", path: "OpKeyFFI.xcframework"),
        .target(
            name: "OpKeyBindings",
            dependencies: ["OpKeyFFI"],
            path: "Sources/OpKeyBindings",
            exclude: ["README.md"],
            linkerSettings: [
                // rustls-platform-verifier checks server certificates with SecTrust.
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
            ]
        ),
        .target(
            name: "OpKey",
            dependencies: ["OpKeyBindings"],
            path: "Sources/OpKey"
        ),
    ]
)
