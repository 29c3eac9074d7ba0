import FlashSaleDomain
import FlashSaleServer
import FlashSaleTestSupport
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import NIOEmbedded
import RPCCore
import RPCHTTP2

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replays a fixed stream of gRPC requests through one server connection
/// handler on an `EmbeddedChannel`: no sockets, no kernel, no load generator,
/// so the figure is the server's own CPU time per call, repeatable to a few
/// percent. Used to find where the time goes; `make bench` runs the real,
/// side-by-side benchmark.
///
///   rpc-microbench [CALLS_PER_BATCH] [SECONDS]
///   rpc-microbench [CALLS_PER_BATCH] --connections N   (fixed work, for callgrind:
///       instructions per call = (Ir(N=2) - Ir(N=1)) / 4000)
///
/// The call is `grpc.health.v1.Health/Check` with a `grpc-timeout` and a custom
/// header (as `make bench` sends it); with `MICROBENCH_CALL=sold-out-book` it is
/// a `flashsale.v1.Booking/Book` of a sold-out sale, refused from memory (as
/// `make claim-bench` sends it: the caller identity headers, no deadline); add
/// `MICROBENCH_STORE=shared` for a store shared with other processes, as
/// PostgreSQL is (the key is checked against the sold-out sale's key set,
/// ``SoldOutKeys``, instead of this process's own index, ``ClaimedKeys``).
@main
enum RPCMicrobench {
  static func main() throws {
    let arguments = CommandLine.arguments
    let batch = arguments.count > 1 ? Int(arguments[1]) ?? 32 : 32
    var seconds = arguments.count > 2 ? Double(arguments[2]) ?? 3 : 3
    var connections = Int.max
    if arguments.count > 3, arguments[2] == "--connections" {
      connections = Int(arguments[3]) ?? 1
      seconds = .infinity
    }
    // Metrics on, as `flashsale serve --metrics-port` runs.
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
    let service: any RPCService
    let path: String
    let message: [UInt8]
    var headers: [(String, String)] = [
      (":method", "POST"), (":scheme", "http"), (":path", ""), (":authority", "127.0.0.1"),
      ("content-type", "application/grpc"), ("te", "trailers"),
    ]
    if getenv("MICROBENCH_CALL").map({ String(cString: $0) }) == "sold-out-book" {
      // Set up on another thread: the embedded channel below must stay on this one.
      let (booking, sale) = try MultiThreadedEventLoopGroup.singleton.any().makeFutureWithTask {
        try await soldOutBooking()
      }.wait()
      service = booking
      path = "/flashsale.v1.Booking/Book"
      // BookRequest {sale_id, idempotency_key: a key with no booking}.
      let key = Array("sold-out-probe".utf8)
      message = [0x0a, UInt8(sale.utf8.count)] + Array(sale.utf8) + [0x12, UInt8(key.count)] + key
      headers += [("x-flashsale-service-token", "x"), ("x-flashsale-user-id", "probe")]
    } else {
      let health = HealthRegistry()
      health.set("flashsale.v1.Inventory", .serving)
      service = HealthService(registry: health)
      path = "/grpc.health.v1.Health/Check"
      // The HealthCheckRequest {service: "flashsale.v1.Inventory"}.
      message = [0x0a, 22] + Array("flashsale.v1.Inventory".utf8)
      headers += [("grpc-timeout", "5S"), ("x-request-id", "bench-0001")]
    }
    headers[2].1 = path
    let server = RPCServer(
      configuration: RPCServerConfiguration(authenticator: SharedTokenAuthenticator(token: "x")),
      services: [service])

    let requestsPerConnection = 4000
    let bytes = RequestStream.build(requests: requestsPerConnection, headers: headers, message: message)

    var calls = 0
    var elapsed: Duration = .zero
    let clock = ContinuousClock()
    var done = 0
    while elapsed < .seconds(seconds.isFinite ? seconds : 1e9), done < connections {
      done += 1
      let channel = EmbeddedChannel()
      try channel.pipeline.syncOperations.addHandler(server.makeConnectionHandler())
      try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
      _ = try channel.readOutbound(as: ByteBuffer.self)  // the server's SETTINGS
      let start = clock.now
      for chunk in bytes.chunks(callsPerChunk: batch) {
        try channel.writeInbound(channel.allocator.buffer(bytes: chunk))
        while let _ = try channel.readOutbound(as: ByteBuffer.self) {}
      }
      elapsed += clock.now - start
      calls += requestsPerConnection
      _ = try? channel.finish()
    }
    let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    print("calls: \(calls), \(String(format: nanos / Double(calls), precision: 0)) ns/call, batch \(batch)")
  }

  /// A booking service whose only sale (its id returned) is sold out, and
  /// known to be by the sale core, so that a new key is refused from memory.
  static func soldOutBooking() async throws -> (BookingService, String) {
    let shared = getenv("MICROBENCH_STORE").map { String(cString: $0) } == "shared"
    // (A restock delay of an hour: one sold-out read vouches for the key set
    // through a whole run under valgrind, where no refresh runs.)
    let store = shared ? InMemorySaleStore(restockDelay: .seconds(3600)) : InMemorySaleStore(soleWriter: true)
    let clock = SystemClock()
    let core = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let sale = try await core.createSale(.testPhones(quantity: 1, from: clock.now()), idempotencyKey: nil)
    _ = try await core.book(saleID: sale.id, userID: UserID("buyer"), idempotencyKey: "the-only-unit")
    var waits = 0
    while core.immediateRefusal(saleID: sale.id, idempotencyKey: "sold-out-probe") == nil, waits < 100 {
      try await Task.sleep(for: .milliseconds(20))  // (the key index or set loads)
      try await core.availability.refresh()  // (the counts in memory come to say sold out)
      waits += 1
    }
    guard core.immediateRefusal(saleID: sale.id, idempotencyKey: "sold-out-probe") != nil else {
      throw MicrobenchError(message: "the sale core did not learn within 2 s that the sale is sold out")
    }
    return (BookingService(core: core), sale.id.rawValue)
  }
}

struct MicrobenchError: Error, CustomStringConvertible {
  var message: String
  var description: String { message }
}

extension String {
  init(format value: Double, precision: Int) {
    let scale = precision == 0 ? 1.0 : Double(Int(pow10(precision)))
    self = String(Int((value * scale).rounded()))
  }
}

private func pow10(_ n: Int) -> Int { n <= 0 ? 1 : 10 * pow10(n - 1) }

/// A client's side of a connection, encoded by hand: the preface, SETTINGS,
/// and per call a HEADERS frame and a DATA frame ending the stream.
struct RequestStream {
  var preface: [UInt8]
  var calls: [[UInt8]]

  static func build(requests: Int, headers: [(String, String)], message: [UInt8]) -> RequestStream {
    var preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    preface += frame(type: 0x4, flags: 0, stream: 0, payload: [])  // SETTINGS
    // As h2load sends them: the first request adds every header to the HPACK
    // dynamic table (literal with incremental indexing); later requests refer
    // to the entries by index (the newest entry is index 62).
    var first: [UInt8] = []
    for (name, value) in headers {
      first.append(0x40)
      first += hpackString(name)
      first += hpackString(value)
    }
    let indexed: [UInt8] = (0..<headers.count).map { UInt8(0x80 | (62 + headers.count - 1 - $0)) }
    let body = [0, 0, 0, 0, UInt8(message.count)] + message
    var calls: [[UInt8]] = []
    for i in 0..<requests {
      let stream = UInt32(2 * i + 1)
      calls.append(
        frame(type: 0x1, flags: 0x4, stream: stream, payload: i == 0 ? first : indexed)
          + frame(type: 0x0, flags: 0x1, stream: stream, payload: body))
    }
    return RequestStream(preface: preface, calls: calls)
  }

  func chunks(callsPerChunk: Int) -> [[UInt8]] {
    var out: [[UInt8]] = [preface]
    var i = 0
    while i < calls.count {
      out.append(calls[i..<min(i + callsPerChunk, calls.count)].flatMap { $0 })
      i += callsPerChunk
    }
    return out
  }

  static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
    let n = payload.count
    return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
      UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
      + payload
  }

  static func hpackString(_ s: String) -> [UInt8] {
    let bytes = Array(s.utf8)
    precondition(bytes.count < 127)
    return [UInt8(bytes.count)] + bytes
  }
}
