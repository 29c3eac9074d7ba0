public import RPCCore

/// How an ``RPCServer`` listens, what it accepts, and how it treats idle and
/// misbehaving connections.
public struct RPCServerConfiguration: Sendable {
  /// The address to bind; `127.0.0.1` by default, `0.0.0.0` for every interface.
  public var host: String
  /// The TCP port; 0 picks a free one (see ``RPCServer/listeningPort``).
  public var port: Int
  /// The largest request message accepted; longer ones end the call with
  /// RESOURCE_EXHAUSTED. 4 MiB, as in grpc-go and grpc-java.
  public var maxReceiveMessageLength: Int
  /// SETTINGS_MAX_CONCURRENT_STREAMS: calls a client may run at once on one
  /// connection; nghttp2 refuses further streams with REFUSED_STREAM.
  public var maxConcurrentStreams: UInt32
  /// SETTINGS_INITIAL_WINDOW_SIZE: how much a client may send on one stream
  /// before the server has consumed it.
  public var initialStreamWindowSize: UInt32
  /// How much a client may send on one connection before the server has
  /// consumed it.
  public var connectionWindowSize: Int32
  /// Keepalive: server PINGs on idle connections, and its policy for client PINGs.
  public var keepalive: Keepalive
  /// How long in-flight calls may run after a graceful shutdown begins.
  public var shutdownGracePeriod: Duration
  /// Decides who each call comes from; `nil` makes every call anonymous.
  public var authenticator: (any CallAuthenticator)?

  /// Keepalive settings (gRPC's A8/A9 semantics, grpc-go's defaults).
  public struct Keepalive: Sendable {
    /// After this long without reading anything, the server sends a PING.
    public var time: Duration
    /// Without a PING ack within this, the connection is closed.
    public var timeout: Duration
    /// Client PINGs closer together than this count as strikes.
    public var minPingInterval: Duration
    /// Whether client PINGs are welcome while no call is in flight.
    public var permitWithoutCalls: Bool
    /// Strikes tolerated; the next one gets GOAWAY ENHANCE_YOUR_CALM.
    public var maxPingStrikes: Int

    /// grpc-go's defaults: ping after 2 hours idle, 20 s timeout, client pings
    /// at least 5 minutes apart, 2 strikes.
    public init(
      time: Duration = .seconds(7200),
      timeout: Duration = .seconds(20),
      minPingInterval: Duration = .seconds(300),
      permitWithoutCalls: Bool = false,
      maxPingStrikes: Int = 2
    ) {
      self.time = time
      self.timeout = timeout
      self.minPingInterval = minPingInterval
      self.permitWithoutCalls = permitWithoutCalls
      self.maxPingStrikes = maxPingStrikes
    }
  }

  /// A configuration with the defaults described on each property.
  public init(
    host: String = "127.0.0.1",
    port: Int = 0,
    maxReceiveMessageLength: Int = 4 * 1024 * 1024,
    maxConcurrentStreams: UInt32 = 256,
    initialStreamWindowSize: UInt32 = 1 << 20,
    connectionWindowSize: Int32 = 8 << 20,
    keepalive: Keepalive = Keepalive(),
    shutdownGracePeriod: Duration = .seconds(10),
    authenticator: (any CallAuthenticator)? = nil
  ) {
    self.host = host
    self.port = port
    self.maxReceiveMessageLength = maxReceiveMessageLength
    self.maxConcurrentStreams = maxConcurrentStreams
    self.initialStreamWindowSize = initialStreamWindowSize
    self.connectionWindowSize = connectionWindowSize
    self.keepalive = keepalive
    self.shutdownGracePeriod = shutdownGracePeriod
    self.authenticator = authenticator
  }
}
