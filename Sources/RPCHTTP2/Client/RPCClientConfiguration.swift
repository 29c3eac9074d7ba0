public import RPCCore

/// Where an ``RPCClient`` connects and how it behaves when servers go away.
public struct RPCClientConfiguration: Sendable {
  /// A server address.
  public struct Target: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
      self.host = host
      self.port = port
    }

    /// Parses `host:port` (IPv6 hosts in brackets: `[::1]:50051`).
    public init?(_ text: String) {
      guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
        return nil
      }
      var host = String(text[..<colon])
      if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
      guard !host.isEmpty, (0...65535).contains(port) else { return nil }
      self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
  }

  /// Exponential backoff between connection attempts to one address (gRPC's
  /// connection-backoff.md): `initial`, then × `multiplier` up to `maximum`,
  /// each randomized by ± `jitter`.
  public struct Backoff: Sendable {
    public var initial: Duration
    public var multiplier: Double
    public var maximum: Duration
    public var jitter: Double

    public init(
      initial: Duration = .seconds(1), multiplier: Double = 1.6, maximum: Duration = .seconds(120),
      jitter: Double = 0.2
    ) {
      self.initial = initial
      self.multiplier = multiplier
      self.maximum = maximum
      self.jitter = jitter
    }

    /// The delay after `failures` consecutive failed attempts (1, 2, …).
    public func delay(afterFailures failures: Int) -> Duration {
      var seconds = Double(initial.nanosecondsValue) / 1e9
      let cap = Double(maximum.nanosecondsValue) / 1e9
      for _ in 1..<max(1, failures) { seconds = min(seconds * multiplier, cap) }
      let jittered = seconds * (1 + Double.random(in: -jitter...jitter))
      return .nanoseconds(Int64(max(0, min(jittered, cap)) * 1e9))
    }
  }

  /// The servers; calls are spread over them.
  public var targets: [Target]
  /// Connections kept to each target; calls are multiplexed over them.
  public var connectionsPerTarget: Int
  /// Backoff between attempts to reach a target that refused or failed.
  public var backoff: Backoff
  /// How long one connection attempt may take.
  public var connectTimeout: Duration
  /// The retry policy of calls whose options name none.
  public var defaultRetryPolicy: RetryPolicy
  /// The largest response message accepted (RESOURCE_EXHAUSTED beyond).
  public var maxReceiveMessageLength: Int
  /// Metadata added to every call (e.g. the internal service credential).
  public var defaultMetadata: Metadata
  /// With a value, PING idle connections that have calls in flight this
  /// often, and close them when no ack comes within ``keepaliveTimeout``.
  public var keepaliveTime: Duration?
  /// See ``keepaliveTime``.
  public var keepaliveTimeout: Duration

  /// A configuration; every argument but `targets` has a default.
  public init(
    targets: [Target],
    connectionsPerTarget: Int = 1,
    backoff: Backoff = Backoff(),
    connectTimeout: Duration = .seconds(20),
    defaultRetryPolicy: RetryPolicy = .none,
    maxReceiveMessageLength: Int = 4 * 1024 * 1024,
    defaultMetadata: Metadata = [:],
    keepaliveTime: Duration? = nil,
    keepaliveTimeout: Duration = .seconds(20)
  ) {
    self.targets = targets
    self.connectionsPerTarget = max(1, connectionsPerTarget)
    self.backoff = backoff
    self.connectTimeout = connectTimeout
    self.defaultRetryPolicy = defaultRetryPolicy
    self.maxReceiveMessageLength = maxReceiveMessageLength
    self.defaultMetadata = defaultMetadata
    self.keepaliveTime = keepaliveTime
    self.keepaliveTimeout = keepaliveTimeout
  }
}
