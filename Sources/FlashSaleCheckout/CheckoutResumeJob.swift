public import Logging
public import ServiceLifecycle

/// Takes interrupted sagas to their end: at start-up, every checkout a crash
/// left unfinished; then, every `interval`, those paused because the store
/// or the payment provider could not be reached. It also wakes the readers
/// of the transaction stream, so that events committed by other processes
/// sharing the store reach them within `wakeInterval`.
public struct CheckoutResumeJob: Service {
  private let saga: CheckoutSaga
  private let interval: Duration
  private let wakeInterval: Duration
  private let logger: Logger

  public init(
    saga: CheckoutSaga, interval: Duration = .seconds(1), wakeInterval: Duration = .milliseconds(200),
    logger: Logger = Logger(label: "flashsale.checkout")
  ) {
    self.saga = saga
    self.interval = interval
    self.wakeInterval = wakeInterval
    self.logger = logger
  }

  public func run() async throws {
    try? await cancelWhenGracefulShutdown {
      let clock = ContinuousClock()
      var nextResume = clock.now
      while !Task.isCancelled {
        if clock.now >= nextResume {
          do {
            try await saga.resumeUnfinished()
          } catch {
            logger.error("resuming checkouts failed; retrying", metadata: ["error": "\(error)"])
          }
          nextResume = clock.now + interval
        }
        saga.eventsCommitted.signal()
        try await Task.sleep(for: wakeInterval)
      }
    }
  }
}
