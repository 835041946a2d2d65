// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Deform",
    products: [
        .library(name: "DeformTensor", targets: ["DeformTensor"]),
        .library(name: "DeformNN", targets: ["DeformNN"]),
        .library(name: "DeformGeometry", targets: ["DeformGeometry"]),
        .executable(name: "deform", targets: ["deform"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Debian's libopenblas-dev + liblapacke-dev (installed by the Makefile).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .target(name: "DeformTensor", dependencies: ["CBLAS"]),
        .target(name: "DeformNN", dependencies: ["DeformTensor"]),
        .target(name: "DeformGeometry", dependencies: ["DeformTensor"]),
        .executableTarget(name: "deform", dependencies: [
            "DeformTensor", "DeformNN",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "DeformTensorTests", dependencies: ["DeformTensor"]),
        .testTarget(name: "DeformNNTests", dependencies: ["DeformNN", "DeformTensor"]),
        .testTarget(name: "DeformGeometryTests", dependencies: ["DeformGeometry", "DeformTensor"]),
    ],
    swiftLanguageModes: [.v5]
)
