/// Per-call settings of a client call.
public struct CallOptions: Sendable, Hashable {
  /// How long the caller waits for the whole call, retries included; sent to
  /// the server as `grpc-timeout`. `nil`: no deadline.
  public var timeout: Duration?
  /// How a failed call is retried; `nil` uses the channel's default policy.
  /// Only set it for idempotent methods: a retried call may run twice.
  public var retryPolicy: RetryPolicy?

  /// Options with the given timeout and retry policy.
  public init(timeout: Duration? = nil, retryPolicy: RetryPolicy? = nil) {
    self.timeout = timeout
    self.retryPolicy = retryPolicy
  }

  /// No deadline, the channel's retry policy.
  public static let defaults = CallOptions()
}

/// When and how often a failed call is tried again (gRPC's retry design, A6).
///
/// A call is retried only while no response has been received from the
/// server (once response headers arrive, the call is committed), only on the
/// listed status codes, with exponential backoff and full jitter, and never
/// past the call's deadline. A server may ask for a given delay with the
/// `grpc-retry-pushback-ms` trailer, or for no retry with a negative value.
///
/// Calls refused before any server processed them (HTTP/2 REFUSED_STREAM, or
/// a GOAWAY that did not cover them) are retried transparently whatever the
/// policy, because they cannot have had an effect.
public struct RetryPolicy: Sendable, Hashable {
  /// Attempts in all, the first included; at least 1.
  public var maxAttempts: Int
  /// The upper bound of the first backoff.
  public var initialBackoff: Duration
  /// The upper bound of any backoff.
  public var maxBackoff: Duration
  /// How much the bound grows after each attempt.
  public var backoffMultiplier: Double
  /// The status codes that are retried.
  public var retryableCodes: Set<StatusCode>

  /// A policy; see the properties.
  public init(
    maxAttempts: Int,
    initialBackoff: Duration = .milliseconds(100),
    maxBackoff: Duration = .seconds(2),
    backoffMultiplier: Double = 2,
    retryableCodes: Set<StatusCode> = [.unavailable]
  ) {
    self.maxAttempts = max(1, maxAttempts)
    self.initialBackoff = initialBackoff
    self.maxBackoff = maxBackoff
    self.backoffMultiplier = backoffMultiplier
    self.retryableCodes = retryableCodes
  }

  /// One attempt only.
  public static let none = RetryPolicy(maxAttempts: 1, retryableCodes: [])

  /// Up to 4 attempts on UNAVAILABLE: for idempotent calls.
  public static let idempotent = RetryPolicy(maxAttempts: 4)

  /// The upper bound of the backoff before attempt `attempt` (2, 3, …).
  public func backoffBound(beforeAttempt attempt: Int) -> Duration {
    var bound = Double(initialBackoff.components.seconds) + Double(initialBackoff.components.attoseconds) / 1e18
    let cap = Double(maxBackoff.components.seconds) + Double(maxBackoff.components.attoseconds) / 1e18
    if attempt > 2 {
      for _ in 0..<(attempt - 2) { bound *= backoffMultiplier }
    }
    return .nanoseconds(Int64(min(bound, cap) * 1e9))
  }
}
