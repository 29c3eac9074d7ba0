// swift-tools-version:6.0
// The fuzz targets: a package of its own holding only what they exercise —
// the protobuf wire reader and descriptors, the JSON transcoder and the gRPC
// message framer (symbolic links to ../Sources) — so that it builds in
// seconds with `-sanitize=fuzzer,address`. Run through `make fuzz` (long) or
// `make fuzz-quick` (part of `make test`); see fuzz/run.sh.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
  name: "flashsale-fuzz",
  targets: [
    .target(name: "RPCCore", swiftSettings: swiftSettings),
    .target(name: "ProtoDescriptors", swiftSettings: swiftSettings),
    .target(name: "ProtoJSON", dependencies: ["ProtoDescriptors"], swiftSettings: swiftSettings),
    .target(name: "FuzzSupport", dependencies: ["ProtoDescriptors", "ProtoJSON", "RPCCore"], swiftSettings: swiftSettings),
    .executableTarget(name: "FuzzProtobuf", dependencies: ["FuzzSupport", "ProtoDescriptors", "ProtoJSON"], swiftSettings: swiftSettings),
    .executableTarget(name: "FuzzJSON", dependencies: ["FuzzSupport", "ProtoJSON"], swiftSettings: swiftSettings),
    .executableTarget(name: "FuzzFramer", dependencies: ["FuzzSupport", "RPCCore"], swiftSettings: swiftSettings),
  ]
)
