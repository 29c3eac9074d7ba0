import Metrics
import RPCCore

/// The methods a server serves, looked up by the raw bytes of `:path` without
/// building a string.
final class RouteTable: Sendable {
  /// One method: its route and its metrics.
  final class Entry: Sendable {
    let route: MethodRoute
    let path: [UInt8]
    let metrics: MethodMetrics

    init(route: MethodRoute) {
      self.route = route
      self.path = Array(route.descriptor.path.utf8)
      self.metrics = MethodMetrics(route.descriptor)
    }
  }

  private let entries: [Entry]
  /// Open addressing: index into `entries`, or -1.
  private let buckets: [Int]
  private let mask: Int
  /// Names of the services served, for UNIMPLEMENTED messages.
  let serviceNames: Set<String>

  /// A table of `routes`; a later route for the same path replaces an earlier one.
  init(_ routes: [MethodRoute]) {
    var unique: [String: MethodRoute] = [:]
    var order: [String] = []
    for route in routes {
      if unique[route.descriptor.path] == nil { order.append(route.descriptor.path) }
      unique[route.descriptor.path] = route
    }
    let entries = order.map { Entry(route: unique[$0]!) }
    var size = 8
    while size < entries.count * 2 { size *= 2 }
    var buckets = [Int](repeating: -1, count: size)
    for (i, entry) in entries.enumerated() {
      var slot = entry.path.withUnsafeBytes { Self.hash($0) } & (size - 1)
      while buckets[slot] >= 0 { slot = (slot + 1) & (size - 1) }
      buckets[slot] = i
    }
    self.entries = entries
    self.buckets = buckets
    self.mask = size - 1
    self.serviceNames = Set(entries.map(\.route.descriptor.service))
  }

  /// The entry whose path equals `path`.
  func lookup(_ path: UnsafeRawBufferPointer) -> Entry? {
    var slot = Self.hash(path) & mask
    while true {
      let index = buckets[slot]
      if index < 0 { return nil }
      let entry = entries[index]
      if entry.path.count == path.count,
        entry.path.withUnsafeBytes({ memcmp($0.baseAddress!, path.baseAddress!, path.count) == 0 })
      {
        return entry
      }
      slot = (slot + 1) & mask
    }
  }

  /// Every method served.
  var descriptors: [MethodDescriptor] { entries.map(\.route.descriptor) }

  /// FNV-1a over the bytes.
  private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
      h = (h ^ UInt64(b)) &* 0x100_0000_01b3
    }
    return Int(truncatingIfNeeded: h >> 1)
  }

  /// The UNIMPLEMENTED message for a path no route serves, as grpc-go words it.
  func unimplementedMessage(path: String) -> String {
    let trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
    guard let slash = trimmed.lastIndex(of: "/") else { return "malformed method name: \"\(path)\"" }
    let service = String(trimmed[..<slash])
    let method = String(trimmed[trimmed.index(after: slash)...])
    if serviceNames.contains(service) { return "unknown method \(method) for service \(service)" }
    return "unknown service \(service)"
  }
}

/// The metrics of one method, created once so that recording a call costs no
/// lookup: calls started, calls handled by status code, handling latency.
final class MethodMetrics: Sendable {
  private let started: Counter
  private let handled: [Counter]
  private let otherCode: Counter
  private let latency: Timer

  init(_ descriptor: MethodDescriptor) {
    let dimensions = [("grpc_service", descriptor.service), ("grpc_method", descriptor.method)]
    started = Counter(label: "grpc_server_started_total", dimensions: dimensions)
    handled = (0...16).map {
      Counter(label: "grpc_server_handled_total", dimensions: dimensions + [("grpc_code", StatusCode(rawValue: $0).name)])
    }
    otherCode = Counter(label: "grpc_server_handled_total", dimensions: dimensions + [("grpc_code", "OTHER")])
    latency = Timer(label: "grpc_server_handling_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
  }

  func recordStart() {
    started.increment()
  }

  func recordEnd(code: StatusCode, nanoseconds: Int64) {
    if (0...16).contains(code.rawValue) { handled[code.rawValue].increment() } else { otherCode.increment() }
    latency.recordNanoseconds(nanoseconds)
  }
}

/// Connection- and stream-level metrics of a server.
struct ServerMetrics: Sendable {
  let connections = Meter(label: "rpc_server_connections")
  let inflightStreams = Meter(label: "rpc_server_inflight_streams")
  let unknownMethods = Counter(label: "grpc_server_unknown_method_total")
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
