import CommandLineSupport
import FlashSaleAPI
import Foundation
import ProtoDescriptors
import ProtoJSON
import RPCCore

/// One run of the probe against one server: finds the types, makes the
/// call, prints what comes back.
struct ProbeSession {
  let channel: any RPCChannel
  let metadata: Metadata
  let timeout: Duration?
  /// Print one JSON object per line (else indented JSON and readable errors).
  let json: Bool
  let verbose: Bool
  let printOptions: JSONPrintOptions

  private var reflection: ReflectionClient { ReflectionClient(channel: channel, metadata: metadata, timeout: timeout) }

  // MARK: Verbs

  func list(_ service: String?) async throws {
    guard let service else {
      let names: [String]
      do {
        names = try await reflection.services()
      } catch let error as RPCError where error.code == .unimplemented {
        note("the server has no reflection; listing the flashsale services compiled into the probe")
        names = FlashSaleDescriptors.pool.services.keys.sorted()
      }
      emit(names.sorted().map(JSONValue.string), text: names.sorted().joined(separator: "\n"))
      return
    }
    let pool = try await descriptors(for: [service])
    guard let descriptor = pool.services[service] else { throw ProbeError("the server has no service \(service)") }
    let methods = descriptor.methods.map { "\(descriptor.fullName).\($0.name)" }
    emit(methods.map(JSONValue.string), text: methods.joined(separator: "\n"))
  }

  func describe(_ symbol: String) async throws {
    let pool = try await descriptors(for: [symbol])
    guard let text = SchemaPrinter.describe(symbol, in: pool, json: json) else {
      throw ProbeError("the server describes no symbol \(symbol)")
    }
    printNow(json ? (try? JSONParser.parse(text).serialized()) ?? text : text)
  }

  func health(_ service: String) async throws {
    let request = try ProtoJSONTranscoder(pool: FlashSaleDescriptors.pool).encode(
      .object([("service", .string(service))]), as: "grpc.health.v1.HealthCheckRequest")
    let response = try await channel.unary(
      MethodDescriptor(service: "grpc.health.v1.Health", method: "Check", kind: .unary), request: RawMessage(request),
      metadata: metadata, options: CallOptions(timeout: timeout), responseType: RawMessage.self)
    let value = try ProtoJSONTranscoder(pool: FlashSaleDescriptors.pool).decode(
      response.message.bytes, as: "grpc.health.v1.HealthCheckResponse", options: JSONPrintOptions(emitDefaults: true))
    emit(value)
    guard case .object(let members) = value, members.first?.value == .string("SERVING") else { throw ExitCodeError() }
  }

  func call(_ target: String, data: String) async throws {
    let pool = try await descriptors(for: [Self.symbol(of: target)])
    guard let (service, method) = pool.method(target) else {
      throw ProbeError("the server has no method \(target) (use package.Service/Method)")
    }
    let transcoder = ProtoJSONTranscoder(pool: pool)
    let kind: RPCKind =
      switch (method.clientStreaming, method.serverStreaming) {
      case (false, false): .unary
      case (false, true): .serverStreaming
      case (true, false): .clientStreaming
      case (true, true): .bidirectionalStreaming
      }
    let descriptor = MethodDescriptor(service: service.fullName, method: method.name, kind: kind)
    let options = CallOptions(timeout: timeout)
    func encode(_ text: String) throws -> RawMessage {
      let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
      return RawMessage(try transcoder.encode(json: Array((trimmed.isEmpty ? "{}" : trimmed).utf8), as: method.inputType))
    }
    func show(_ message: RawMessage) throws {
      emit(try transcoder.decode(message.bytes, as: method.outputType, options: printOptions))
    }
    switch kind {
    case .unary:
      let response = try await channel.unary(
        descriptor, request: try encode(data), metadata: metadata, options: options, responseType: RawMessage.self)
      showMetadata("header", response.headers)
      try show(response.message)
      showMetadata("trailer", response.trailers)
    case .serverStreaming:
      let stream = try await channel.serverStreaming(
        descriptor, request: try encode(data), metadata: metadata, options: options, responseType: RawMessage.self)
      showMetadata("header", stream.headers)
      for try await message in stream { try show(message) }
      showMetadata("trailer", stream.trailers)
    case .clientStreaming:
      let requests = try Self.lines(data).map(encode)
      let response = try await channel.clientStreaming(
        descriptor, metadata: metadata, options: options, responseType: RawMessage.self
      ) { writer in
        for request in requests { try await writer.write(request) }
      }
      showMetadata("header", response.headers)
      try show(response.message)
      showMetadata("trailer", response.trailers)
    case .bidirectionalStreaming:
      let requests = try Self.lines(data).map(encode)
      let call = try await channel.bidirectionalStreaming(
        descriptor, metadata: metadata, options: options, requestType: RawMessage.self, responseType: RawMessage.self)
      let sender = Task {
        for request in requests { try await call.send(request) }
        try await call.finish()
      }
      for try await message in call.responses { try show(message) }
      try await sender.value
      showMetadata("trailer", call.trailers)
    }
  }

  // MARK: Output

  /// Prints `value`: indented in text format, one line in JSON format.
  private func emit(_ value: JSONValue, text: String? = nil) {
    printNow(json ? value.serialized() : text ?? value.serialized(pretty: true))
  }

  private func emit(_ values: [JSONValue], text: String) {
    emit(.array(values), text: text)
  }

  private func note(_ message: String) {
    if verbose { FileHandle.standardError.write(Data("note: \(message)\n".utf8)) }
  }

  private func showMetadata(_ kind: String, _ metadata: Metadata) {
    guard verbose else { return }
    for entry in metadata {
      FileHandle.standardError.write(Data("< \(kind) \(entry.key): \(entry.value)\n".utf8))
    }
  }

  /// Prints a failed call: status name, message and decoded details.
  func report(_ error: RPCError) {
    var details: [JSONValue] = []
    if let bytes = error.statusDetails {
      // The details are Anys: decoded with every type the probe knows.
      let transcoder = ProtoJSONTranscoder(pool: FlashSaleDescriptors.pool)
      if let status = try? transcoder.decode(bytes, as: "google.rpc.Status"), case .object(let members) = status,
        case .array(let list)? = members.first(where: { $0.key == "details" })?.value
      {
        details = list
      } else {
        details = [.object([("undecodable", .string(Base64.encode(bytes, padded: true)))])]
      }
    }
    let value = JSONValue.object([
      ("code", .string(error.code.name)), ("codeNumber", .number(String(error.code.rawValue))),
      ("message", .string(error.message)), ("details", .array(details)),
    ])
    if json {
      printNow(value.serialized())
      return
    }
    var text = "ERROR: \(error.code.name) (\(error.code.rawValue))\n  message: \(error.message)\n"
    if !details.isEmpty {
      text += "  details:\n" + details.map { "    " + $0.serialized() + "\n" }.joined()
    }
    if verbose {
      for entry in error.metadata { text += "< trailer \(entry.key): \(entry.value)\n" }
    }
    FileHandle.standardError.write(Data(text.utf8))
  }

  func reportLocal(_ message: String) {
    if json {
      printNow(JSONValue.object([("error", .string(message))]).serialized())
    } else {
      FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }
  }

  // MARK: Descriptors

  /// The types declaring `symbols`, by reflection, over the probe's own
  /// (the flashsale contracts and google.rpc details); the probe's own only
  /// when the server has no reflection.
  private func descriptors(for symbols: [String]) async throws -> DescriptorPool {
    var pool = FlashSaleDescriptors.pool
    do {
      try await reflection.pool(containing: symbols, into: &pool)
    } catch let error as RPCError where error.code == .unimplemented {
      note("the server has no reflection; using the flashsale contracts compiled into the probe")
    } catch let error as RPCError where error.code == .notFound {
      throw ProbeError("the server knows no \(symbols.joined(separator: ", ")): \(error.message)")
    }
    return pool
  }

  /// The service part of a method name (`pkg.Service/Method` or `pkg.Service.Method`).
  static func symbol(of method: String) -> String {
    let trimmed = method.hasPrefix("/") ? String(method.dropFirst()) : method
    if let slash = trimmed.firstIndex(of: "/") { return String(trimmed[..<slash]) }
    if let dot = trimmed.lastIndex(of: ".") { return String(trimmed[..<dot]) }
    return trimmed
  }

  /// One JSON document per non-blank line.
  static func lines(_ text: String) -> [String] {
    text.split(whereSeparator: \.isNewline).map(String.init).filter {
      !$0.trimmingCharacters(in: .whitespaces).isEmpty
    }
  }
}

/// Exit 1 without a message (health: the service is not SERVING).
struct ExitCodeError: Error {}
