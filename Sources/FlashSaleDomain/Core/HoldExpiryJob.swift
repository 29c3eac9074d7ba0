public import Logging
import Metrics
public import ServiceLifecycle

/// The design's consolidation job: gives the units of holds past their
/// deadline back to stock.
///
/// Its first pass runs at start-up and releases the holds that expired while
/// no process was running; after that it looks every `interval`, so a hold
/// goes back within that interval (plus one transaction) of its deadline.
/// Several processes on one store may run it: the store expires each hold once.
public struct HoldExpiryJob: Service {
  private let store: any SaleStore
  private let clock: any WallClock
  private let interval: Duration
  private let batchLimit: Int
  private let logger: Logger
  private let onExpired: @Sendable ([Booking]) -> Void
  private let expired = Counter(label: "flashsale_bookings_total", dimensions: [("event", "expired")])
  private let lag = Timer(label: "flashsale_hold_expiry_lag_seconds", preferredDisplayUnit: .seconds)

  /// A job expiring holds of `store` every `interval`, at most `batchLimit`
  /// per transaction; `onExpired` sees what each transaction expired.
  public init(
    store: any SaleStore, clock: any WallClock, interval: Duration = .milliseconds(200), batchLimit: Int = 500,
    logger: Logger = Logger(label: "flashsale.hold-expiry"), onExpired: @escaping @Sendable ([Booking]) -> Void = { _ in }
  ) {
    self.store = store
    self.clock = clock
    self.interval = interval
    self.batchLimit = batchLimit
    self.logger = logger
    self.onExpired = onExpired
  }

  public func run() async throws {
    try? await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        do {
          let count = try await expireDue()
          if count > 0 { logger.debug("expired holds", metadata: ["count": "\(count)"]) }
        } catch {
          logger.error("hold expiry failed; retrying", metadata: ["error": "\(error)"])
        }
        try await Task.sleep(for: interval)
      }
    }
  }

  /// Expires every hold due now, a batch per transaction; returns how many.
  @discardableResult
  public func expireDue() async throws -> Int {
    var total = 0
    while true {
      let now = clock.now()
      let batch = try await store.expireHolds(now: now, limit: batchLimit)
      for booking in batch {
        lag.recordNanoseconds(max(0, (now - booking.holdExpiresAt).wholeNanoseconds))
      }
      expired.increment(by: batch.count)
      total += batch.count
      if !batch.isEmpty { onExpired(batch) }
      if batch.count < batchLimit { return total }
    }
  }
}
