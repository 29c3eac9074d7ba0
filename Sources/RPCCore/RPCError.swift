/// The error of a failed RPC: a status code, a message and optional details.
///
/// A handler throws it to end a call with that status; a client call throws it
/// when the call fails. Any other error a handler throws ends the call with
/// ``StatusCode/internal`` and a generic message, so that internals do not leak.
///
/// Rich error details (a serialized `google.rpc.Status`, sent in the
/// `grpc-status-details-bin` trailer as grpc-go and grpc-swift do) travel in
/// ``statusDetails``; the `StandardProtos` module builds and reads them
/// (`ErrorInfo`, `RetryInfo`, `QuotaFailure`, …).
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The status code; never ``StatusCode/ok``.
  public var code: StatusCode {
    get { storage.code }
    set { uniqueStorage().code = newValue }
  }
  /// A developer-facing message.
  public var message: String {
    get { storage.message }
    set {
      let storage = uniqueStorage()
      storage.message = newValue
      storage.encoded = nil  // the encoded form no longer matches
    }
  }
  /// Trailing metadata to send with (or received with) the status.
  public var metadata: Metadata {
    get { storage.metadata }
    set { uniqueStorage().metadata = newValue }
  }
  /// A serialized `google.rpc.Status` whose code and message match this error's.
  public var statusDetails: [UInt8]? {
    get { storage.statusDetails }
    set {
      let storage = uniqueStorage()
      storage.statusDetails = newValue
      storage.encoded = nil
    }
  }
  /// Why a call failed before it reached a server, when that is known.
  package var transportFailure: TransportFailure? {
    get { storage.transportFailure }
    set { uniqueStorage().transportFailure = newValue }
  }

  /// The fields, shared between copies until one changes (an error is copied
  /// at every hop from a handler to the wire: one retain instead of one per field).
  private var storage: Storage

  /// An error with a code and a message.
  ///
  /// - Parameters:
  ///   - code: The status code. ``StatusCode/ok`` is replaced by ``StatusCode/unknown``.
  ///   - message: A developer-facing message.
  ///   - metadata: Trailing metadata.
  ///   - statusDetails: A serialized `google.rpc.Status`, or `nil`.
  public init(
    code: StatusCode,
    message: String,
    metadata: Metadata = [:],
    statusDetails: [UInt8]? = nil
  ) {
    storage = Storage(code: code == .ok ? .unknown : code, message: message, metadata: metadata, statusDetails: statusDetails)
  }

  private mutating func uniqueStorage() -> Storage {
    if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    return storage
  }

  /// Mutated only through `uniqueStorage()`, when no other error shares it.
  private final class Storage: @unchecked Sendable {
    var code: StatusCode
    var message: String
    var metadata: Metadata
    var statusDetails: [UInt8]?
    var transportFailure: TransportFailure?
    var encoded: EncodedStatus?

    init(code: StatusCode, message: String, metadata: Metadata, statusDetails: [UInt8]?) {
      self.code = code
      self.message = message
      self.metadata = metadata
      self.statusDetails = statusDetails
    }

    func copy() -> Storage {
      let copy = Storage(code: code, message: message, metadata: metadata, statusDetails: statusDetails)
      copy.transportFailure = transportFailure
      copy.encoded = encoded
      return copy
    }
  }

  public var description: String {
    message.isEmpty ? code.name : "\(code.name): \(message)"
  }

  public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
    lhs.code == rhs.code && lhs.message == rhs.message && lhs.metadata == rhs.metadata
      && lhs.statusDetails == rhs.statusDetails
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(code)
    hasher.combine(message)
  }
}

extension RPCError {
  /// `grpc-message` (percent-encoded) and `grpc-status-details-bin` (base64)
  /// as a server sends them.
  package struct EncodedStatus: Sendable {
    package var message: String
    package var details: String?
    /// The same bytes in memory that is never freed (``encodingStatusPermanently()``).
    package var permanent: (message: PermanentBytes, details: PermanentBytes?)?
  }

  /// Bytes copied into memory that lives until the process exits, so that a
  /// transport may hand them to the peer without copying or retaining them.
  package struct PermanentBytes: @unchecked Sendable {
    /// Never deallocated, never written after `init`.
    package let bytes: UnsafeRawBufferPointer

    package init(_ string: String) {
      var string = string
      bytes = string.withUTF8 { utf8 in
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(utf8.count, 1), alignment: 1)
        memory.copyMemory(from: UnsafeRawBufferPointer(utf8))
        return UnsafeRawBufferPointer(rebasing: memory[0..<utf8.count])
      }
    }
  }

  /// This error with its wire form encoded now, for an error that a server
  /// sends again and again (a sold-out refusal): sending it then copies the
  /// encoded strings instead of encoding the message and details per call.
  public func encodingStatusOnce() -> RPCError {
    var copy = self
    copy.uniqueStorage().encoded = EncodedStatus(
      message: PercentEncoding.encode(message), details: statusDetails.map { Base64.encode($0, padded: false) })
    return copy
  }

  /// ``encodingStatusOnce()``, with the encoded bytes also kept in memory that
  /// is never freed, which a server sends without copying them. Each call
  /// leaves that memory allocated: for an error made once, in a `static let`.
  public func encodingStatusPermanently() -> RPCError {
    var copy = encodingStatusOnce()
    let storage = copy.uniqueStorage()
    if let encoded = storage.encoded {
      storage.encoded?.permanent = (PermanentBytes(encoded.message), encoded.details.map(PermanentBytes.init))
    }
    return copy
  }

  /// The encoded wire form, if it was made (setting the message or the
  /// details drops it).
  package var encodedStatus: EncodedStatus? { storage.encoded }

  /// The error a server sends when it has no handler for a method.
  public static func unimplemented(_ descriptor: MethodDescriptor) -> RPCError {
    RPCError(code: .unimplemented, message: "method \(descriptor.path) is not implemented")
  }

  /// Wraps any error as an RPC error: ``RPCError`` values pass through, a task
  /// cancellation becomes ``StatusCode/cancelled``, anything else
  /// ``StatusCode/internal`` without its description (which may hold internals).
  public init(wrapping error: any Error) {
    switch error {
    case let rpc as RPCError:
      self = rpc
    case is CancellationError:
      self.init(code: .cancelled, message: "the call was cancelled")
    case let convertible as any RPCErrorConvertible:
      self = convertible.rpcError
    default:
      self.init(code: .internal, message: "internal error")
    }
  }
}

/// An error type that knows the RPC status it stands for.
///
/// Domain errors conform to it so that handlers can throw them directly and the
/// caller still receives the right status code, message and details.
public protocol RPCErrorConvertible: Error {
  /// The status this error is sent as.
  var rpcError: RPCError { get }
}

/// Why a call could not be sent, as the client transport saw it.
package enum TransportFailure: Hashable, Sendable {
  /// The server refused the stream before processing it (REFUSED_STREAM, or a
  /// GOAWAY whose last stream id is below the call's): safe to retry anywhere.
  case refusedBeforeProcessing
  /// No connection could be made.
  case connectFailed
  /// The connection broke after the request may have been processed.
  case connectionLost
}
