public import FlashSaleAPI
public import FlashSaleDomain
public import RPCCore

/// `flashsale.v1.Inventory` over the sale core: sales and their live counts.
/// Creating, pausing, resuming and closing a sale need the admin role; reads
/// are open to every caller.
public struct InventoryService: Inventory.ServiceProtocol {
  private let core: SaleCore

  /// The longest page `ListSales` returns.
  public static let maximumPageSize = 500

  public init(core: SaleCore) {
    self.core = core
  }

  public func createSale(_ request: CreateSaleRequest, context: ServerContext) -> Reply<FlashSaleAPI.Sale> {
    do {
      try context.requireRole(CallerIdentity.adminRole)
    } catch {
      return .failure(error)
    }
    return .core { [core] in
      let definition = try ProtoMapping.definition(request)
      let key = request.idempotencyKey.isEmpty ? nil : request.idempotencyKey
      let sale = try await core.createSale(definition, idempotencyKey: key)
      return ProtoMapping.sale(sale, now: core.clock.now())
    }
  }

  public func getSale(_ request: GetSaleRequest, context: ServerContext) -> Reply<FlashSaleAPI.Sale> {
    .core { [core] in
      ProtoMapping.sale(try await core.sale(SaleID(request.saleID)), now: core.clock.now())
    }
  }

  public func listSales(_ request: ListSalesRequest, context: ServerContext) -> Reply<ListSalesResponse> {
    .core { [core] in
      guard request.pageSize >= 0 else {
        throw DomainError(.invalidArgument, "page_size: must not be negative", field: "page_size")
      }
      let size = request.pageSize == 0 ? 50 : min(Int(request.pageSize), Self.maximumPageSize)
      let page = try await core.sales(pageSize: size, after: try ProtoMapping.cursor(pageToken: request.pageToken))
      let now = core.clock.now()
      return ListSalesResponse(
        sales: page.sales.map { ProtoMapping.sale($0, now: now) },
        nextPageToken: page.next.map(ProtoMapping.pageToken) ?? "")
    }
  }

  public func getAvailability(_ request: GetAvailabilityRequest, context: ServerContext) -> Reply<Availability> {
    // From memory: no task and no store round trip for a sale this process tracks.
    if let snapshot = core.availability.cachedSnapshot(SaleID(request.saleID)) {
      return .ok(ProtoMapping.availability(snapshot))
    }
    return .core { [core] in
      if request.saleID.isEmpty {
        throw DomainError(.invalidArgument, "sale_id: must not be empty", field: "sale_id")
      }
      return ProtoMapping.availability(try await core.availability.snapshot(SaleID(request.saleID)))
    }
  }

  /// Sends the current count, then each change, at most one message per
  /// 100 ms; a slow reader skips to the newest count.
  public func watchAvailability(
    _ request: WatchAvailabilityRequest, responses: ResponseWriter<Availability>, context: ServerContext
  ) async throws {
    let updates: AsyncStream<AvailabilitySnapshot>
    do {
      if request.saleID.isEmpty {
        throw DomainError(.invalidArgument, "sale_id: must not be empty", field: "sale_id")
      }
      updates = try await core.availability.updates(SaleID(request.saleID))
    } catch {
      throw DomainErrorMapping.rpcError(error)
    }
    for await snapshot in updates {
      try await responses.write(ProtoMapping.availability(snapshot))
      try await Task.sleep(for: .milliseconds(100))
    }
  }

  public func pauseSale(_ request: PauseSaleRequest, context: ServerContext) -> Reply<FlashSaleAPI.Sale> {
    admin(context) { core in try await core.setPaused(SaleID(request.saleID), true) }
  }

  public func resumeSale(_ request: ResumeSaleRequest, context: ServerContext) -> Reply<FlashSaleAPI.Sale> {
    admin(context) { core in try await core.setPaused(SaleID(request.saleID), false) }
  }

  public func closeSale(_ request: CloseSaleRequest, context: ServerContext) -> Reply<FlashSaleAPI.Sale> {
    admin(context) { core in try await core.close(SaleID(request.saleID)) }
  }

  private func admin(
    _ context: ServerContext, _ body: @escaping @Sendable (SaleCore) async throws -> FlashSaleDomain.Sale
  ) -> Reply<FlashSaleAPI.Sale> {
    do {
      try context.requireRole(CallerIdentity.adminRole)
    } catch {
      return .failure(error)
    }
    return .core { [core] in ProtoMapping.sale(try await body(core), now: core.clock.now()) }
  }
}
