/// A gRPC status code, as carried by the `grpc-status` trailer.
///
/// The seventeen codes of the gRPC specification (doc/statuscodes.md in the grpc
/// repository). A peer may send a number outside that range; it is kept as is
/// and treated as ``unknown`` by code that switches over the known ones.
public struct StatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The numeric value carried on the wire.
  public let rawValue: Int

  /// A code with the given numeric value, known or not.
  public init(rawValue: Int) {
    self.rawValue = rawValue
  }

  /// Not an error; returned on success.
  public static let ok = StatusCode(rawValue: 0)
  /// The operation was cancelled, typically by the caller.
  public static let cancelled = StatusCode(rawValue: 1)
  /// Unknown error, or an error from another error space.
  public static let unknown = StatusCode(rawValue: 2)
  /// The client specified an invalid argument.
  public static let invalidArgument = StatusCode(rawValue: 3)
  /// The deadline expired before the operation could complete.
  public static let deadlineExceeded = StatusCode(rawValue: 4)
  /// Some requested entity was not found.
  public static let notFound = StatusCode(rawValue: 5)
  /// The entity that a client attempted to create already exists.
  public static let alreadyExists = StatusCode(rawValue: 6)
  /// The caller does not have permission to execute the operation.
  public static let permissionDenied = StatusCode(rawValue: 7)
  /// Some resource has been exhausted (a quota, a size limit, the stock of a sale).
  public static let resourceExhausted = StatusCode(rawValue: 8)
  /// The system is not in a state required for the operation's execution.
  public static let failedPrecondition = StatusCode(rawValue: 9)
  /// The operation was aborted, typically because of a concurrency conflict.
  public static let aborted = StatusCode(rawValue: 10)
  /// The operation was attempted past the valid range.
  public static let outOfRange = StatusCode(rawValue: 11)
  /// The operation is not implemented or not supported.
  public static let unimplemented = StatusCode(rawValue: 12)
  /// An invariant expected by the underlying system was broken.
  public static let `internal` = StatusCode(rawValue: 13)
  /// The service is currently unavailable; retrying with backoff may succeed.
  public static let unavailable = StatusCode(rawValue: 14)
  /// Unrecoverable data loss or corruption.
  public static let dataLoss = StatusCode(rawValue: 15)
  /// The request does not have valid authentication credentials.
  public static let unauthenticated = StatusCode(rawValue: 16)

  /// The name of the code as the specification spells it, e.g. `DEADLINE_EXCEEDED`.
  public var name: String {
    switch rawValue {
    case 0: "OK"
    case 1: "CANCELLED"
    case 2: "UNKNOWN"
    case 3: "INVALID_ARGUMENT"
    case 4: "DEADLINE_EXCEEDED"
    case 5: "NOT_FOUND"
    case 6: "ALREADY_EXISTS"
    case 7: "PERMISSION_DENIED"
    case 8: "RESOURCE_EXHAUSTED"
    case 9: "FAILED_PRECONDITION"
    case 10: "ABORTED"
    case 11: "OUT_OF_RANGE"
    case 12: "UNIMPLEMENTED"
    case 13: "INTERNAL"
    case 14: "UNAVAILABLE"
    case 15: "DATA_LOSS"
    case 16: "UNAUTHENTICATED"
    default: "CODE_\(rawValue)"
    }
  }

  /// The code whose ``name`` is `name` (`"NOT_FOUND"`), or `nil`.
  public init?(name: String) {
    guard let code = (0...16).first(where: { StatusCode(rawValue: $0).name == name }) else {
      return nil
    }
    self.rawValue = code
  }

  public var description: String { name }

  /// The value of the `grpc-status` header: the code in decimal ASCII.
  var headerValue: String { String(rawValue) }
}
