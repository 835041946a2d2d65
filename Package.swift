// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Deform",
    products: [
        .library(name: "DeformTensor", targets: ["DeformTensor"]),
        .library(name: "DeformNN", targets: ["DeformNN"]),
        .library(name: "DeformIO", targets: ["DeformIO"]),
        .library(name: "DeformNRSfM", targets: ["DeformNRSfM"]),
        .library(name: "DeformGeometry", targets: ["DeformGeometry"]),
        .library(name: "DeformRender", targets: ["DeformRender"]),
        .library(name: "DeformSynth", targets: ["DeformSynth"]),
        .library(name: "DeformView", targets: ["DeformView"]),
        .executable(name: "deform", targets: ["deform"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // Debian's libopenblas-dev + liblapacke-dev (installed by the Makefile).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        // Debian's libpng-dev and libturbojpeg0-dev (installed by the Makefile), for DeformIO's images.
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .target(name: "DeformTensor", dependencies: ["CBLAS"]),
        .target(name: "DeformNN", dependencies: ["DeformTensor"]),
        .target(name: "DeformIO", dependencies: ["DeformTensor", "ZIPFoundation", "CPNG", "CTurboJPEG"]),
        .target(name: "DeformNRSfM", dependencies: ["DeformGeometry", "DeformIO", "DeformNN", "DeformTensor"]),
        .target(name: "DeformGeometry", dependencies: ["DeformTensor"]),
        .target(name: "DeformRender", dependencies: ["DeformGeometry", "DeformTensor"]),
        .target(name: "DeformSynth", dependencies: ["DeformRender", "DeformGeometry", "DeformIO", "DeformTensor"]),
        // Reports: colour maps, SVG plots, self-contained HTML viewers of run folders and PNG previews
        // (drawn with DeformRender's rasteriser).
        .target(name: "DeformView", dependencies: ["DeformRender", "DeformIO", "DeformTensor"]),
        .executableTarget(name: "deform", dependencies: [
            "DeformTensor", "DeformNN", "DeformIO", "DeformGeometry", "DeformNRSfM", "DeformRender", "DeformSynth", "DeformView",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "DeformTensorTests", dependencies: ["DeformTensor"]),
        .testTarget(name: "DeformNNTests", dependencies: ["DeformNN", "DeformTensor"]),
        .testTarget(name: "DeformIOTests", dependencies: [
            "DeformIO", "DeformTensor", .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),
        .testTarget(name: "DeformNRSfMTests", dependencies: ["DeformNRSfM", "DeformGeometry", "DeformNN", "DeformTensor"]),
        .testTarget(name: "DeformGeometryTests", dependencies: ["DeformGeometry", "DeformTensor"]),
        .testTarget(name: "DeformRenderTests", dependencies: ["DeformRender", "DeformTensor"]),
        .testTarget(name: "DeformViewTests", dependencies: ["DeformView", "DeformRender", "DeformIO", "DeformTensor"]),
        .testTarget(name: "DeformSynthTests", dependencies: ["DeformSynth", "DeformRender", "DeformIO", "DeformTensor"]),
    ],
    swiftLanguageModes: [.v5]
)
