import ProtoDescriptors
import ProtoJSON

/// How `describe` shows a symbol: as .proto-like text, or as JSON.
enum SchemaPrinter {
  static func describe(_ symbol: String, in pool: DescriptorPool, json: Bool) -> String? {
    let name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
    if let service = pool.services[name] {
      if json {
        return JSONValue.object([
          ("kind", .string("service")), ("name", .string(service.fullName)),
          ("methods", .array(service.methods.map { methodJSON($0, service: service.fullName) })),
        ]).serialized(pretty: true)
      }
      return "service \(service.fullName) {\n"
        + service.methods.map { "  " + methodText($0) + "\n" }.joined() + "}"
    }
    if let (service, method) = pool.method(name) {
      return json ? methodJSON(method, service: service.fullName).serialized(pretty: true) : methodText(method)
    }
    if let message = pool.messages[name] {
      if json {
        return JSONValue.object([
          ("kind", .string("message")), ("name", .string(message.fullName)),
          ("fields", .array(message.fields.map { field in
            .object([
              ("name", .string(field.name)), ("jsonName", .string(field.jsonName)),
              ("number", .number(String(field.number))), ("type", .string(typeText(field, pool: pool))),
              ("oneof", field.oneofIndex.map { .string(message.oneofs[$0]) } ?? .null),
            ])
          })),
        ]).serialized(pretty: true)
      }
      var text = "message \(message.fullName) {\n"
      var oneofsShown: Set<Int> = []
      for field in message.fields {
        if let oneof = field.oneofIndex {
          guard !oneofsShown.contains(oneof) else { continue }
          oneofsShown.insert(oneof)
          text += "  oneof \(message.oneofs[oneof]) {\n"
          for member in message.fields where member.oneofIndex == oneof {
            text += "    \(typeText(member, pool: pool)) \(member.name) = \(member.number);\n"
          }
          text += "  }\n"
        } else {
          text += "  \(typeText(field, pool: pool)) \(field.name) = \(field.number);\n"
        }
      }
      return text + "}"
    }
    if let descriptor = pool.enums[name] {
      if json {
        return JSONValue.object([
          ("kind", .string("enum")), ("name", .string(descriptor.fullName)),
          ("values", .array(descriptor.values.map { .object([("name", .string($0.name)), ("number", .number(String($0.number)))]) })),
        ]).serialized(pretty: true)
      }
      return "enum \(descriptor.fullName) {\n" + descriptor.values.map { "  \($0.name) = \($0.number);\n" }.joined() + "}"
    }
    return nil
  }

  static func methodText(_ method: MethodDescriptorInfo) -> String {
    "rpc \(method.name)(\(method.clientStreaming ? "stream " : "")\(method.inputType)) returns "
      + "(\(method.serverStreaming ? "stream " : "")\(method.outputType));"
  }

  static func methodJSON(_ method: MethodDescriptorInfo, service: String) -> JSONValue {
    .object([
      ("kind", .string("method")), ("name", .string(service + "." + method.name)),
      ("inputType", .string(method.inputType)), ("outputType", .string(method.outputType)),
      ("clientStreaming", .bool(method.clientStreaming)), ("serverStreaming", .bool(method.serverStreaming)),
    ])
  }

  static func typeText(_ field: FieldDescriptor, pool: DescriptorPool) -> String {
    if field.isRepeated, let entry = pool.messages[field.typeName ?? ""], entry.isMapEntry,
      let key = entry.fields.first(where: { $0.number == 1 }), let value = entry.fields.first(where: { $0.number == 2 })
    {
      return "map<\(typeText(key, pool: pool)), \(typeText(value, pool: pool))>"
    }
    let base: String
    switch field.kind {
    case .message, .group, .enumeration: base = field.typeName ?? "?"
    default: base = "\(field.kind)"
    }
    return (field.isRepeated ? "repeated " : "") + base
  }
}
