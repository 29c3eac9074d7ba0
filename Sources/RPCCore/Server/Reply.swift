/// The answer of a unary handler: ready now, or later.
///
/// A handler runs on the connection's event loop. When it knows the answer at
/// once (a cached value, a validation error, "sold out" from memory) it returns
/// ``ok(_:)`` or ``failure(_:)`` and the response is written without a task or
/// a thread hop. When it must wait for I/O it returns ``later(_:)`` (an `async`
/// closure run as a task) or ``promise(_:)`` (a completion called from any
/// thread, e.g. by a batch writer), so the cost of suspension is paid only by
/// the calls that suspend.
///
/// ```swift
/// func book(_ request: BookRequest, context: ServerContext) -> Reply<BookResponse> {
///   if inventory.isSoldOut(request.saleID) { return .failure(BookingError.soldOut) }
///   return .later { try await store.claim(request) }
/// }
/// ```
///
/// - Important: the handler body itself must not block: it runs on the event
///   loop that serves every other call of the connection.
public struct Reply<Message: Sendable>: Sendable {
  @usableFromInline package enum Storage: Sendable {
    case done(Result<Message, any Error>)
    /// A failure already typed as an ``RPCError`` (no cast on the way out).
    case failed(RPCError)
    case later(@Sendable () async throws -> Message)
    case promise(@Sendable (ReplyPromise<Message>) -> Void)
  }

  @usableFromInline package let storage: Storage

  @usableFromInline package init(storage: Storage) {
    self.storage = storage
  }

  /// The call succeeds with `message`.
  @inlinable
  public static func ok(_ message: Message) -> Reply {
    Reply(storage: .done(.success(message)))
  }

  /// The call fails with `error`: an ``RPCError`` or ``RPCErrorConvertible``
  /// keeps its status; any other error becomes ``StatusCode/internal``.
  @inlinable
  public static func failure(_ error: any Error) -> Reply {
    Reply(storage: .done(.failure(error)))
  }

  /// The call fails with `error`'s status, message and details.
  @inlinable
  public static func failure(_ error: RPCError) -> Reply {
    Reply(storage: .failed(error))
  }

  /// The answer is computed by `body`, run as a task. The task is cancelled
  /// when the call is (deadline, client reset, connection closed).
  @inlinable
  public static func later(_ body: @escaping @Sendable () async throws -> Message) -> Reply {
    Reply(storage: .later(body))
  }

  /// The answer is delivered through a ``ReplyPromise``, from any thread.
  /// `register` runs at once, on the event loop; it must hand the promise to
  /// whoever completes it and return. See ``ServerContext/onCancel(_:)``.
  @inlinable
  public static func promise(_ register: @escaping @Sendable (ReplyPromise<Message>) -> Void) -> Reply {
    Reply(storage: .promise(register))
  }

  /// The same answer with its message transformed by `transform`.
  @inlinable
  public func map<Other: Sendable>(_ transform: @escaping @Sendable (Message) -> Other) -> Reply<Other> {
    switch storage {
    case .done(let result):
      return Reply<Other>(storage: .done(result.map(transform)))
    case .failed(let error):
      return Reply<Other>(storage: .failed(error))
    case .later(let body):
      return Reply<Other>(storage: .later { transform(try await body()) })
    case .promise(let register):
      return Reply<Other>(
        storage: .promise { other in
          register(ReplyPromise { result in other.complete(result.map(transform)) })
        })
    }
  }
}

/// Completes a ``Reply/promise(_:)`` answer. The first completion wins; later
/// ones are ignored.
public struct ReplyPromise<Message: Sendable>: Sendable {
  private let completion: @Sendable (Result<Message, any Error>) -> Void

  /// A promise that hands its result to `completion`.
  public init(_ completion: @escaping @Sendable (Result<Message, any Error>) -> Void) {
    self.completion = completion
  }

  /// Completes the call with `result`.
  public func complete(_ result: Result<Message, any Error>) {
    completion(result)
  }

  /// Completes the call successfully.
  public func succeed(_ message: Message) {
    completion(.success(message))
  }

  /// Completes the call with an error.
  public func fail(_ error: any Error) {
    completion(.failure(error))
  }
}
