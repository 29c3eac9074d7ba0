import ArgumentParser
import CommandLineSupport
import FlashSaleAPI
import Foundation
import RPCCore
import RPCHTTP2
import StandardProtos
import Synchronization

/// `flashsale-load`: a load generator for `Book`. Unlike h2load it gives every
/// call its own user and idempotency key, so that each call is a real claim.
@main
struct LoadCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flashsale-load",
    abstract: "Drive Book calls at a sale, each from a distinct user with a distinct idempotency key.",
    discussion: """
      Keeps --concurrency calls in flight over --connections HTTP/2 connections for --duration seconds, \
      then prints calls/s, holds/s, latency percentiles and refusals by reason, and a JSON summary line. \
      With --create-sale N it first creates a sale of N units (admin) and prints its id.
      """)

  @Option(help: "The booking service (host:port).")
  var target: String = "127.0.0.1:50051"

  @Option(help: "The sale to book from.")
  var sale: String?

  @Option(help: "Create a sale of this many units first (per-user limit 1) and book from it.")
  var createSale: Int64?

  @Option(help: "With --create-sale: how long a hold lasts, in seconds (the sale's default: 300).")
  var holdSeconds: Int64?

  @Option(help: "Seconds to run.")
  var duration: Double = 10

  @Option(help: "Calls in flight at once.")
  var concurrency: Int = 256

  @Option(help: "HTTP/2 connections to the target.")
  var connections: Int = 4

  @Option(help: "The internal service credential (to act as users). Default: $FLASHSALE_SERVICE_TOKEN.")
  var serviceToken: String?

  @Option(help: "A prefix for user ids and keys (default: random), so that runs do not collide.")
  var runID: String = String(UInt32.random(in: 0 ... .max), radix: 36)

  @Flag(
    name: .customLong("scattered-ids"),
    help: """
      Scatter user ids and keys over their whole range, as real buyers and UUID keys arrive \
      (default: numbered in call order, which a store's indexes take as appends).
      """)
  var scatteredIDs = false

  func run() async throws {
    guard let target = RPCClientConfiguration.Target(target) else {
      throw ValidationError("--target must be host:port")
    }
    guard let token = serviceToken ?? ProcessInfo.processInfo.environment["FLASHSALE_SERVICE_TOKEN"] else {
      throw ValidationError("--service-token (or FLASHSALE_SERVICE_TOKEN) is needed to act as users")
    }
    let client = RPCClient(
      configuration: RPCClientConfiguration(targets: [target], connectionsPerTarget: max(1, connections)))
    defer { client.close() }

    var saleID = sale ?? ""
    if let quantity = createSale {
      var metadata = Metadata()
      CallerIdentity(userID: "load-admin", roles: [CallerIdentity.adminRole]).apply(to: &metadata, serviceToken: token)
      let now = Date().timeIntervalSince1970
      let created = try await Inventory.Client(channel: client).createSale(
        CreateSaleRequest(
          itemID: "load-item", itemName: "Load test item", price: Money(currency: "EUR", amountMinor: 100),
          quantity: quantity, startsAt: Google_Protobuf_Timestamp(secondsSinceEpoch: now - 1),
          endsAt: Google_Protobuf_Timestamp(secondsSinceEpoch: now + 3600),
          holdDuration: holdSeconds.map { Google_Protobuf_Duration(.seconds($0)) }),
        metadata: metadata)
      saleID = created.saleID
      printNow("created sale \(saleID) with \(quantity) units")
    }
    guard !saleID.isEmpty else { throw ValidationError("--sale or --create-sale is needed") }

    let driver = LoadDriver(
      client: client, saleID: saleID, runID: runID, scattered: scatteredIDs, serviceToken: token,
      end: ContinuousClock.now + .milliseconds(Int64(duration * 1000)))
    let start = ContinuousClock.now
    await driver.run(concurrency: max(1, concurrency))
    let elapsed = ContinuousClock.now - start
    driver.stats.withLock { $0.report(elapsed: elapsed, saleID: saleID, concurrency: concurrency, connections: connections) }
  }

  /// The ErrorInfo reason of a refusal, else the status code's name.
  static func reason(_ error: RPCError) -> String {
    for detail in error.details {
      if case .errorInfo(let info) = detail { return info.reason }
    }
    return error.code.name
  }
}

/// Keeps `concurrency` Book calls in flight until the end time: each call's
/// completion records its outcome and starts the next call. The calls use the
/// client's completion-based unary call, so that the load generator spends its
/// CPU on calls rather than on a task and two thread hops per call (it shares
/// the machine with the server it measures).
final class LoadDriver: Sendable {
  let stats = Mutex(LoadStats())
  private let client: RPCClient
  private let saleID: String
  private let runID: String
  private let scattered: Bool
  private let end: ContinuousClock.Instant
  private let userPrefix: [UInt8]
  private let keyPrefix: [UInt8]
  /// Every call's metadata but its user: the service token.
  private let baseMetadata: Metadata
  private let counter = Atomic<Int>(0)
  private let running = Atomic<Int>(0)
  private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)

  init(
    client: RPCClient, saleID: String, runID: String, scattered: Bool, serviceToken: String,
    end: ContinuousClock.Instant
  ) {
    self.client = client
    self.saleID = saleID
    self.runID = runID
    self.scattered = scattered
    self.userPrefix = Array("u-\(runID)-".utf8)
    self.keyPrefix = Array("k-\(runID)-".utf8)
    var metadata = Metadata()
    metadata.add(CallerIdentity.serviceTokenHeader, serviceToken)
    self.baseMetadata = metadata
    self.end = end
  }

  /// Runs `concurrency` chains of calls; returns when every one has ended.
  func run(concurrency: Int) async {
    await withCheckedContinuation { continuation in
      finished.withLock { $0 = continuation }
      running.store(concurrency, ordering: .relaxed)
      for _ in 0..<concurrency { next() }
    }
  }

  /// The user and key of call `n`: numbered, or scattered by a bijection of
  /// `n` (splitmix64's finalizer), so that they stay distinct.
  private func identifiers(_ n: Int) -> (user: String, key: String) {
    guard scattered else { return ("u-\(runID)-\(n)", "k-\(runID)-\(n)") }
    let n = UInt64(n)
    return (
      Self.identifier(prefix: userPrefix, words: Self.scatter(n)),
      Self.identifier(prefix: keyPrefix, words: Self.scatter(n ^ 0x5555_5555_5555_5555), Self.scatter(n))
    )
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  private static func scatter(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// `prefix` followed by each word as 16 hex digits, written straight into
  /// the string (the load generator shares the machine with the server).
  private static func identifier(prefix: [UInt8], words: UInt64...) -> String {
    String(unsafeUninitializedCapacity: prefix.count + 16 * words.count) { buffer in
      _ = buffer.initialize(fromContentsOf: prefix)
      var at = prefix.count
      for word in words {
        for shift in stride(from: 60, through: 0, by: -4) {
          buffer[at] = hexDigits[Int((word >> UInt64(shift)) & 0xF)]
          at += 1
        }
      }
      return at
    }
  }

  private func next() {
    guard ContinuousClock.now < end else {
      if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
        finished.withLock { $0.take() }?.resume()
      }
      return
    }
    let n = counter.add(1, ordering: .relaxed).newValue
    let (user, key) = identifiers(n)
    var metadata = baseMetadata  // as CallerIdentity(userID: user).apply(to:serviceToken:) writes it
    metadata.add(CallerIdentity.userIDHeader, user)
    let request = FramedMessage(BookRequest(saleID: saleID, idempotencyKey: key))
    let began = ContinuousClock.now
    client.unary(Booking.Method.book, request: request, metadata: metadata, timeout: .seconds(30)) { result in
      let outcome: String
      switch result {
      case .success(let response) where response.message != nil && !response.hadMoreMessages:
        outcome = "HELD"
      case .success:
        outcome = "BAD_RESPONSE"
      case .failure(let error):
        outcome = LoadCommand.reason(error)
      }
      let latency = ContinuousClock.now - began
      self.stats.withLock { $0.record(latency: latency, outcome: outcome) }
      self.next()
    }
  }
}

/// Latencies and outcomes of a run.
struct LoadStats {
  var latencies: [Int64] = []  // microseconds
  var outcomes: [String: Int] = [:]

  mutating func record(latency: Duration, outcome: String) {
    let (seconds, attoseconds) = latency.components
    latencies.append(seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
    outcomes[outcome, default: 0] += 1
  }

  mutating func merge(_ other: LoadStats) {
    latencies += other.latencies
    for (key, count) in other.outcomes { outcomes[key, default: 0] += count }
  }

  func report(elapsed: Duration, saleID: String, concurrency: Int, connections: Int) {
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let sorted = latencies.sorted()
    func percentile(_ p: Double) -> Double {
      sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
    }
    let calls = sorted.count
    let held = outcomes["HELD"] ?? 0
    printNow(
      String(
        format: "%d calls in %.2f s: %.0f calls/s, %.0f holds/s; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f",
        calls, seconds, Double(calls) / seconds, Double(held) / seconds, percentile(0.5), percentile(0.9),
        percentile(0.99), percentile(1.0)))
    printNow("outcomes: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    let outcomesJSON = outcomes.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
    printNow(
      String(
        format:
          "{\"sale\":\"%@\",\"calls\":%d,\"seconds\":%.3f,\"calls_per_s\":%.1f,\"holds_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"concurrency\":%d,\"connections\":%d,\"outcomes\":{%@}}",
        saleID, calls, seconds, Double(calls) / seconds, Double(held) / seconds, percentile(0.5), percentile(0.99),
        concurrency, connections, outcomesJSON))
  }
}
