import FlashSaleCheckout
import FlashSaleDomain
import RPCCore
import StandardProtos
import Synchronization

/// How the sale core's refusals travel as gRPC statuses: each ``DomainError``
/// reason has one status code (the table in the README), and the reason itself
/// goes in a `google.rpc.ErrorInfo` so that clients act on it without parsing
/// messages. Bad fields add a `BadRequest`; "sold out for now" adds a
/// `RetryInfo`.
enum DomainErrorMapping {
  static let domain = "flashsale.v1"

  /// The status code of each reason.
  static func code(for reason: DomainError.Reason) -> StatusCode {
    switch reason {
    case .soldOut, .soldOutForNow: .resourceExhausted
    case .limitReached, .checkoutExists: .alreadyExists
    case .saleNotFound, .bookingNotFound, .checkoutNotFound: .notFound
    case .invalidArgument, .idempotencyKeyReused: .invalidArgument
    case .saleNotStarted, .saleEnded, .salePaused, .holdExpired, .staleFencingToken, .bookingReleased,
      .bookingConfirmed:
      .failedPrecondition
    default: .failedPrecondition
    }
  }

  /// The RPC error for any error the sale core throws: refusals keep their
  /// reason; a ``StoreFault`` is INTERNAL; anything else is a storage outage
  /// (UNAVAILABLE), after which a retry with the same idempotency key is safe.
  static func rpcError(_ error: any Error) -> RPCError {
    switch error {
    case let rpc as RPCError:
      return rpc
    case is CancellationError:
      return RPCError(wrapping: error)
    case let domain as DomainError:
      return rpcError(domain)
    case let fault as StoreFault:
      return RPCError(
        code: .internal, message: fault.message,
        details: [.errorInfo(Google_Rpc_ErrorInfo(reason: "STORE_FAULT", domain: Self.domain))])
    default:
      return RPCError(
        code: .unavailable,
        message:
          "the store could not complete the request (nothing was applied, or the connection broke before the answer); a retry with the same idempotency key is safe",
        details: [
          .errorInfo(Google_Rpc_ErrorInfo(reason: "STORE_UNAVAILABLE", domain: Self.domain)),
          .retryInfo(Google_Rpc_RetryInfo(retryDelay: Google_Protobuf_Duration(.milliseconds(200)))),
        ])
    }
  }

  /// The refusals a sale gives every caller alike (sold out, not open), whose
  /// `google.rpc.Status` is serialized once each and kept (up to 1,024).
  private static let cachedReasons: Set<DomainError.Reason> = [
    .soldOut, .soldOutForNow, .saleNotStarted, .saleEnded, .salePaused,
  ]
  private static let cache = Mutex([DomainError: RPCError]())

  /// The refusals of a sold-out rush, mapped once and found without hashing
  /// their text (equal strings that share storage compare at once), with
  /// their wire form in permanent memory (nghttp2 sends it without a copy).
  private static let soldOutErrors = [DomainError.soldOutForNow, .soldOut].map {
    ($0, makeRPCError($0).encodingStatusPermanently())
  }

  /// The RPC error of a refusal.
  static func rpcError(_ domain: DomainError) -> RPCError {
    for (refusal, error) in soldOutErrors where refusal == domain { return error }
    guard cachedReasons.contains(domain.reason) else { return makeRPCError(domain) }
    if let cached = cache.withLock({ $0[domain] }) { return cached }
    let error = makeRPCError(domain).encodingStatusOnce()
    cache.withLock { cache in
      if cache.count >= 1024 { cache.removeAll(keepingCapacity: true) }
      cache[domain] = error
    }
    return error
  }

  private static func makeRPCError(_ domain: DomainError) -> RPCError {
    var details: [ErrorDetail] = [.errorInfo(Google_Rpc_ErrorInfo(reason: domain.reason.rawValue, domain: Self.domain))]
    if let field = domain.field {
      details.append(
        .badRequest(Google_Rpc_BadRequest(fieldViolations: [.init(field: field, description: domain.message)])))
    }
    if domain.reason == .soldOutForNow {
      details.append(.retryInfo(Google_Rpc_RetryInfo(retryDelay: Google_Protobuf_Duration(.seconds(5)))))
    }
    return RPCError(code: code(for: domain.reason), message: domain.message, details: details)
  }
}

extension Reply {
  /// The answer of an async sale-core call, with its errors mapped.
  static func core(_ body: @escaping @Sendable () async throws -> Message) -> Reply {
    .later {
      do {
        return try await body()
      } catch {
        throw DomainErrorMapping.rpcError(error)
      }
    }
  }
}
