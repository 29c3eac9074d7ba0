import ArgumentParser
import CommandLineSupport
import FlashSaleAPI
import Foundation
import ProtoDescriptors
import ProtoJSON
import RPCCore
import RPCHTTP2
import StandardProtos

/// `flashsale-probe`: lists, describes and calls the services of any gRPC
/// server, with JSON in and out, learning the types by server reflection.
@main
struct ProbeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flashsale-probe",
    abstract: "List, describe and call any gRPC server's services with JSON (in the spirit of grpcurl).",
    discussion: """
      Verbs:
        list [SERVICE]       the services, or one service's methods
        describe SYMBOL      a service, method, message or enum
        call METHOD          call package.Service/Method (or package.Service.Method) with the JSON request \
      from -d '{...}', -d @file or standard input; server-streaming calls print each message as it \
      arrives; client-streaming and bidirectional calls read one JSON object per line
        health [SERVICE]     grpc.health.v1.Health/Check

      Types come from server reflection (grpc.reflection.v1, else v1alpha); for a server without \
      reflection, the flashsale contracts compiled into the probe are used.

      Exit status: 0 on success; 1 for a local error (bad JSON, unknown method, unreadable file); \
      64 for bad usage; for a call that ends with a non-OK status, 64 + the status code \
      (65 CANCELLED, 66 UNKNOWN, 67 INVALID_ARGUMENT, 68 DEADLINE_EXCEEDED, 69 NOT_FOUND, \
      70 ALREADY_EXISTS, 71 PERMISSION_DENIED, 72 RESOURCE_EXHAUSTED, 73 FAILED_PRECONDITION, \
      74 ABORTED, 75 OUT_OF_RANGE, 76 UNIMPLEMENTED, 77 INTERNAL, 78 UNAVAILABLE, 79 DATA_LOSS, \
      80 UNAUTHENTICATED). health exits 0 when SERVING, else 1. The status is printed with its name, \
      message and decoded google.rpc.Status details — on standard output as one JSON object with \
      --format json, so that scripts can read it.
      """)

  enum Format: String, ExpressibleByArgument, CaseIterable {
    case text, json
  }

  @Argument(help: "The server, host:port.")
  var address: String

  @Argument(help: "list, describe, call or health.")
  var verb: String

  @Argument(help: "The service, symbol or method the verb acts on.")
  var target: String?

  @Option(name: .customShort("d"), help: "The request as JSON, @FILE to read it from a file, or @- for standard input.")
  var data: String?

  @Option(name: [.customShort("H"), .customLong("header")], help: "Request metadata 'key: value' (repeatable).")
  var headers: [String] = []

  @Option(help: "The call's deadline, e.g. 500ms, 2s, 1m.")
  var deadline: String?

  @Option(help: "Output: text (indented JSON, readable errors) or json (one JSON object per line).")
  var format: Format = .text

  @Flag(name: .customShort("v"), help: "Show response headers and trailers (on standard error).")
  var verbose = false

  @Flag(help: "Print fields at their default values too.")
  var emitDefaults = false

  func validate() throws {
    guard RPCClientConfiguration.Target(address) != nil else {
      throw ValidationError("the address must be host:port, not \"\(address)\"")
    }
    guard ["list", "describe", "call", "health"].contains(verb) else {
      throw ValidationError("unknown verb \"\(verb)\": list, describe, call or health")
    }
    if ["describe", "call"].contains(verb), target == nil {
      throw ValidationError("\(verb) needs a \(verb == "call" ? "method" : "symbol")")
    }
    if deadline != nil, parsedDeadline == nil {
      throw ValidationError("--deadline must be a number followed by ms, s or m, e.g. 2s")
    }
    for header in headers where !header.contains(":") {
      throw ValidationError("-H must be 'key: value', not \"\(header)\"")
    }
  }

  var parsedDeadline: Duration? {
    guard let deadline else { return nil }
    for (suffix, scale) in [("ms", 1e-3), ("s", 1.0), ("m", 60.0)] where deadline.hasSuffix(suffix) {
      if let value = Double(deadline.dropLast(suffix.count)), value > 0 {
        return .nanoseconds(Int64(value * scale * 1e9))
      }
    }
    return nil
  }

  var metadata: Metadata {
    var metadata = Metadata()
    for header in headers {
      let colon = header.firstIndex(of: ":")!
      let key = header[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
      let value = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      metadata[key] = value
    }
    return metadata
  }

  func run() async throws {
    let client = RPCClient(
      configuration: RPCClientConfiguration(
        targets: [RPCClientConfiguration.Target(address)!], connectTimeout: parsedDeadline ?? .seconds(10)))
    defer { client.close() }
    let session = ProbeSession(
      channel: client, metadata: metadata, timeout: parsedDeadline, json: format == .json, verbose: verbose,
      printOptions: JSONPrintOptions(emitDefaults: emitDefaults))
    do {
      switch verb {
      case "list": try await session.list(target)
      case "describe": try await session.describe(target!)
      case "health": try await session.health(target ?? "")
      default: try await session.call(target!, data: try requestText())
      }
    } catch let error as RPCError {
      session.report(error)
      throw ExitCode(Int32(64 + error.code.rawValue))
    } catch let error as ProbeError {
      session.reportLocal(error.message)
      throw ExitCode(1)
    } catch let error as TranscodeError {
      session.reportLocal("bad request JSON: \(error)")
      throw ExitCode(1)
    } catch is ExitCodeError {
      throw ExitCode(1)
    }
  }

  /// The request text: -d, -d @file, -d @- or (no -d) standard input.
  private func requestText() throws -> String {
    guard let data else { return Self.readStandardInput() }
    if data == "@-" { return Self.readStandardInput() }
    if data.hasPrefix("@") {
      let path = String(data.dropFirst())
      guard let contents = FileManager.default.contents(atPath: path) else {
        throw ProbeError("cannot read \(path)")
      }
      return String(decoding: contents, as: UTF8.self)
    }
    return data
  }

  private static func readStandardInput() -> String {
    String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
  }
}

/// A local failure: the probe could not even make the call.
struct ProbeError: Error {
  var message: String
  init(_ message: String) { self.message = message }
}
