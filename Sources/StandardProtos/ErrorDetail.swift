public import ProtoRuntime
public import RPCCore

/// One detail of a rich error: a message of `google/rpc/error_details.proto`
/// carried in a `google.rpc.Status`, as grpc-go and grpc-swift send it in the
/// `grpc-status-details-bin` trailer.
///
/// ```swift
/// throw RPCError(code: .resourceExhausted, message: "sold out",
///                details: [.errorInfo(.init(reason: "SOLD_OUT", domain: "flashsale.v1"))])
/// // the client:
/// if case .errorInfo(let info)? = error.details.first { info.reason }  // "SOLD_OUT"
/// ```
public enum ErrorDetail: Hashable, Sendable {
  case errorInfo(Google_Rpc_ErrorInfo)
  case retryInfo(Google_Rpc_RetryInfo)
  case quotaFailure(Google_Rpc_QuotaFailure)
  case preconditionFailure(Google_Rpc_PreconditionFailure)
  case badRequest(Google_Rpc_BadRequest)
  case resourceInfo(Google_Rpc_ResourceInfo)
  case requestInfo(Google_Rpc_RequestInfo)
  case debugInfo(Google_Rpc_DebugInfo)
  case help(Google_Rpc_Help)
  case localizedMessage(Google_Rpc_LocalizedMessage)
  /// A detail of another type, kept as it came.
  case other(Google_Protobuf_Any)

  /// The detail packed in an `Any`.
  public var any: Google_Protobuf_Any {
    switch self {
    case .errorInfo(let m): .packing(m)
    case .retryInfo(let m): .packing(m)
    case .quotaFailure(let m): .packing(m)
    case .preconditionFailure(let m): .packing(m)
    case .badRequest(let m): .packing(m)
    case .resourceInfo(let m): .packing(m)
    case .requestInfo(let m): .packing(m)
    case .debugInfo(let m): .packing(m)
    case .help(let m): .packing(m)
    case .localizedMessage(let m): .packing(m)
    case .other(let any): any
    }
  }

  /// The detail an `Any` holds (``other(_:)`` for unknown types or bad bytes).
  public init(_ any: Google_Protobuf_Any) {
    func unpack<M: ProtoMessage>(_ type: M.Type, _ make: (M) -> ErrorDetail) -> ErrorDetail {
      (try? any.unpack(as: M.self)).map(make) ?? .other(any)
    }
    switch any.typeName {
    case Google_Rpc_ErrorInfo.protoMessageName: self = unpack(Google_Rpc_ErrorInfo.self, ErrorDetail.errorInfo)
    case Google_Rpc_RetryInfo.protoMessageName: self = unpack(Google_Rpc_RetryInfo.self, ErrorDetail.retryInfo)
    case Google_Rpc_QuotaFailure.protoMessageName: self = unpack(Google_Rpc_QuotaFailure.self, ErrorDetail.quotaFailure)
    case Google_Rpc_PreconditionFailure.protoMessageName:
      self = unpack(Google_Rpc_PreconditionFailure.self, ErrorDetail.preconditionFailure)
    case Google_Rpc_BadRequest.protoMessageName: self = unpack(Google_Rpc_BadRequest.self, ErrorDetail.badRequest)
    case Google_Rpc_ResourceInfo.protoMessageName: self = unpack(Google_Rpc_ResourceInfo.self, ErrorDetail.resourceInfo)
    case Google_Rpc_RequestInfo.protoMessageName: self = unpack(Google_Rpc_RequestInfo.self, ErrorDetail.requestInfo)
    case Google_Rpc_DebugInfo.protoMessageName: self = unpack(Google_Rpc_DebugInfo.self, ErrorDetail.debugInfo)
    case Google_Rpc_Help.protoMessageName: self = unpack(Google_Rpc_Help.self, ErrorDetail.help)
    case Google_Rpc_LocalizedMessage.protoMessageName:
      self = unpack(Google_Rpc_LocalizedMessage.self, ErrorDetail.localizedMessage)
    default: self = .other(any)
    }
  }
}

extension Google_Protobuf_Any {
  /// The prefix of the type URLs this package writes.
  public static let typeURLPrefix = "type.googleapis.com/"

  /// `message` packed, with the type URL `type.googleapis.com/<full name>`.
  public static func packing<M: ProtoMessage>(_ message: M) -> Google_Protobuf_Any {
    Google_Protobuf_Any(typeURL: typeURLPrefix + M.protoMessageName, value: message.serializedBytes())
  }

  /// The full name of the packed type: what follows the last `/` of the URL.
  public var typeName: String {
    guard let slash = typeURL.lastIndex(of: "/") else { return typeURL }
    return String(typeURL[typeURL.index(after: slash)...])
  }

  /// The packed message, if it is an `M`.
  ///
  /// - Throws: ``ProtoDecodingError`` when the type matches but the bytes do not decode.
  public func unpack<M: ProtoMessage>(as type: M.Type) throws -> M? {
    guard typeName == M.protoMessageName else { return nil }
    return try M(serializedBytes: value)
  }
}

extension RPCError {
  /// An error with rich details, sent as a `google.rpc.Status` in
  /// `grpc-status-details-bin` (with the same code and message).
  public init(code: StatusCode, message: String, details: [ErrorDetail], metadata: Metadata = [:]) {
    let status = Google_Rpc_Status(code: Int32(code.rawValue), message: message, details: details.map(\.any))
    self.init(code: code, message: message, metadata: metadata, statusDetails: status.serializedBytes())
  }

  /// The details of the error's `google.rpc.Status`; empty when it has none or
  /// they do not decode.
  public var details: [ErrorDetail] {
    guard let bytes = statusDetails, let status = try? Google_Rpc_Status(serializedBytes: bytes) else { return [] }
    return status.details.map(ErrorDetail.init)
  }

  /// The first `ErrorInfo` detail: its `reason` is the stable, machine-readable
  /// cause (`SOLD_OUT`), so that callers never parse messages.
  public var errorInfo: Google_Rpc_ErrorInfo? {
    for detail in details {
      if case .errorInfo(let info) = detail { return info }
    }
    return nil
  }
}
