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
    /// Position in the table, for per-connection metric batches.
    let index: Int

    init(route: MethodRoute, index: Int) {
      self.route = route
      self.path = Array(route.descriptor.path.utf8)
      self.metrics = MethodMetrics(route.descriptor)
      self.index = index
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
    let entries = order.enumerated().map { Entry(route: unique[$1]!, index: $0) }
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

  /// The entry at `index`.
  func entry(at index: Int) -> Entry { entries[index] }

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

  /// The number of methods.
  var count: Int { entries.count }

  /// A path's hash; the table's buckets take its low bits.
  private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
    Int(truncatingIfNeeded: bytes.multiplicativeHash() >> 1)
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

  func recordStarts(_ count: Int) {
    started.increment(by: Int64(count))
  }

  func recordEnds(code: Int, count: Int) {
    if (0...16).contains(code) { handled[code].increment(by: Int64(count)) } else { otherCode.increment(by: Int64(count)) }
  }

  func recordLatency(nanoseconds: Int64) {
    latency.recordNanoseconds(nanoseconds)
  }
}

/// A connection's metric updates, published once per batch of I/O instead of
/// once per call: counters and gauges shared by every event loop would
/// otherwise bounce between cores on each call. Values stay exact; they are
/// visible at the end of the batch that produced them. Latencies are recorded
/// one by one (a histogram has no batch API in swift-metrics), but back to back
/// at the end of the batch, so the histogram's lock stays on one core.
struct MetricsBatch {
  /// Calls ended since the last flush, with their start times: their latency
  /// runs until the flush that sends their answers.
  private var latencies: [(index: Int, startNanos: UInt64)] = []
  private var starts: [Int] = []
  /// Per method, per status code (0...16, 17 for others).
  private var ends: [Int] = []
  private var touched: [Int] = []
  private var streamDelta = 0

  /// A call of the method at `index` in the route table started.
  mutating func started(method index: Int, methods: Int) {
    prepare(methods)
    if starts[index] == 0, !touched.contains(index) { touched.append(index) }
    starts[index] += 1
  }

  /// A call of the method at `index` in the route table ended.
  mutating func ended(method index: Int, code: StatusCode, startNanos: UInt64, methods: Int) {
    prepare(methods)
    let slot = (0...16).contains(code.rawValue) ? code.rawValue : 17
    if !touched.contains(index) { touched.append(index) }
    ends[index * 18 + slot] += 1
    latencies.append((index, startNanos))
  }

  mutating func streamOpened() { streamDelta += 1 }
  mutating func streamClosed() { streamDelta -= 1 }

  /// Publishes what accumulated.
  mutating func flush(routes: RouteTable, server: ServerMetrics) {
    if streamDelta > 0 {
      server.inflightStreams.increment(by: Double(streamDelta))
    } else if streamDelta < 0 {
      server.inflightStreams.decrement(by: Double(-streamDelta))
    }
    streamDelta = 0
    if !latencies.isEmpty {
      let now = ServerConnectionHandler.nowNanos()
      // Consecutive samples are mostly of one method: its metrics are looked up once.
      var method = latencies[0].index
      var metrics = routes.entry(at: method).metrics
      for sample in latencies {
        if sample.index != method {
          method = sample.index
          metrics = routes.entry(at: method).metrics
        }
        metrics.recordLatency(nanoseconds: Int64(truncatingIfNeeded: now &- sample.startNanos))
      }
      latencies.removeAll(keepingCapacity: true)
    }
    guard !touched.isEmpty else { return }
    for index in touched {
      let metrics = routes.entry(at: index).metrics
      if starts[index] > 0 {
        metrics.recordStarts(starts[index])
        starts[index] = 0
      }
      for code in 0..<18 where ends[index * 18 + code] > 0 {
        metrics.recordEnds(code: code, count: ends[index * 18 + code])
        ends[index * 18 + code] = 0
      }
    }
    touched.removeAll(keepingCapacity: true)
  }

  private mutating func prepare(_ methods: Int) {
    if starts.count < methods {
      starts = [Int](repeating: 0, count: methods)
      ends = [Int](repeating: 0, count: methods * 18)
    }
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
