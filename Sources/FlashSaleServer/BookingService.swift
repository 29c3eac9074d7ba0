public import FlashSaleAPI
public import FlashSaleDomain
public import RPCCore

/// `flashsale.v1.Booking` over the sale core. Every call runs for the calling
/// user (the caller identity); a user sees and changes only their own
/// bookings. `Release` needs the admin or checkout role.
public struct BookingService: FlashSaleAPI.Booking.ServiceProtocol {
  private let core: SaleCore

  /// The role of the checkout service, which releases units in compensations.
  public static let checkoutRole = "checkout"

  public init(core: SaleCore) {
    self.core = core
  }

  public func book(_ request: BookRequest, context: ServerContext) -> Reply<BookResponse> {
    let user: String
    do {
      user = try context.requireUser()
    } catch {
      return .failure(error)
    }
    // Sold out (or not open), and the key never claimed: answered at once.
    if let refusal = core.immediateRefusal(saleID: SaleID(request.saleID), idempotencyKey: request.idempotencyKey) {
      return .failure(DomainErrorMapping.rpcError(refusal))
    }
    // The claim waits for its batch to commit; the event loop does not.
    return .promise { [core] promise in
      core.book(saleID: SaleID(request.saleID), userID: UserID(user), idempotencyKey: request.idempotencyKey) {
        result in
        switch result {
        case .success(let booked):
          let response = { (sale: FlashSaleDomain.Sale?) in
            BookResponse(
              booking: ProtoMapping.booking(booked.booking, sale: sale), unitsLeft: booked.unitsLeft,
              replayed: booked.replayed)
          }
          if let sale = core.availability.cachedSale(booked.booking.saleID) {
            promise.succeed(response(sale))
          } else {
            // A sale this process has not tracked yet: look it up once (it is tracked from then on).
            Task {
              _ = try? await core.availability.snapshot(booked.booking.saleID)
              promise.succeed(response(core.availability.cachedSale(booked.booking.saleID)))
            }
          }
        case .failure(let error):
          promise.fail(DomainErrorMapping.rpcError(error))
        }
      }
    }
  }

  public func confirm(_ request: ConfirmRequest, context: ServerContext) -> Reply<ConfirmResponse> {
    onBooking(context) { core, user in
      ConfirmResponse(
        booking: try await record(
          core.confirm(BookingID(request.bookingID), token: request.fencingToken, user: user), core))
    }
  }

  public func cancel(_ request: CancelRequest, context: ServerContext) -> Reply<CancelResponse> {
    onBooking(context) { core, user in
      CancelResponse(
        booking: try await record(
          core.cancel(BookingID(request.bookingID), token: request.fencingToken, user: user), core))
    }
  }

  public func getBooking(_ request: GetBookingRequest, context: ServerContext) -> Reply<BookingRecord> {
    onBooking(context) { core, user in
      try await record(core.booking(BookingID(request.bookingID), user: user), core)
    }
  }

  public func release(_ request: ReleaseRequest, context: ServerContext) -> Reply<ReleaseResponse> {
    do {
      try context.requireRole(anyOf: [CallerIdentity.adminRole, Self.checkoutRole])
    } catch {
      return .failure(error)
    }
    return .core { [core] in
      let token = request.fencingToken == 0 ? nil : request.fencingToken
      return ReleaseResponse(
        booking: try await record(
          core.release(BookingID(request.bookingID), token: token, reason: request.reason), core))
    }
  }

  /// Runs `body` for the calling user; an admin acts on any user's booking.
  private func onBooking<M: Sendable>(
    _ context: ServerContext, _ body: @escaping @Sendable (SaleCore, UserID?) async throws -> M
  ) -> Reply<M> {
    let user: String
    do {
      user = try context.requireUser()
    } catch {
      return .failure(error)
    }
    let isAdmin = context.caller?.roles.contains(CallerIdentity.adminRole) ?? false
    return .core { [core] in try await body(core, isAdmin ? nil : UserID(user)) }
  }
}

/// The booking as a record, with its sale's item and price (from memory when
/// this process tracks the sale, else read once).
private func record(_ booking: FlashSaleDomain.Booking, _ core: SaleCore) async throws -> BookingRecord {
  if let sale = core.availability.cachedSale(booking.saleID) {
    return ProtoMapping.booking(booking, sale: sale)
  }
  return ProtoMapping.booking(booking, sale: try? await core.sale(booking.saleID))
}
