/// The schema of protobuf messages, enums and services, read from
/// `google.protobuf.FileDescriptorProto`s (what reflection serves and
/// `protoc --descriptor_set_out` writes). Only what JSON transcoding,
/// reflection and the probe need is kept.
public struct FileDescriptor: Hashable, Sendable {
  public var name: String
  public var package: String
  public var dependencies: [String]
  public var messages: [MessageDescriptor]
  public var enums: [EnumDescriptor]
  public var services: [ServiceDescriptor]
  /// The serialized FileDescriptorProto, as read.
  public var serialized: [UInt8]
}

public struct MessageDescriptor: Hashable, Sendable {
  /// `package.Outer.Inner`, without a leading dot.
  public var fullName: String
  public var fields: [FieldDescriptor]
  public var oneofs: [String]
  public var nestedMessages: [MessageDescriptor]
  public var nestedEnums: [EnumDescriptor]
  /// A map's synthetic entry message (fields `key` = 1, `value` = 2).
  public var isMapEntry: Bool

  public var name: String { fullName.split(separator: ".").last.map(String.init) ?? fullName }
}

public struct FieldDescriptor: Hashable, Sendable {
  /// `FieldDescriptorProto.Type` values.
  public enum Kind: Int, Hashable, Sendable {
    case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes, uint32,
      enumeration, sfixed32, sfixed64, sint32, sint64
  }

  public var name: String
  /// The lowerCamelCase name of the JSON mapping.
  public var jsonName: String
  public var number: Int
  public var kind: Kind
  public var isRepeated: Bool
  /// For message and enum fields: the full type name, without a leading dot.
  public var typeName: String?
  /// The oneof this field belongs to (index into ``MessageDescriptor/oneofs``),
  /// unless it is a proto3 `optional` (a synthetic oneof).
  public var oneofIndex: Int?
  /// proto3 `optional`, or proto2 `optional`: presence is tracked.
  public var hasPresence: Bool
}

public struct EnumDescriptor: Hashable, Sendable {
  public var fullName: String
  public var values: [(name: String, number: Int32)]

  public static func == (lhs: EnumDescriptor, rhs: EnumDescriptor) -> Bool {
    lhs.fullName == rhs.fullName && lhs.values.map(\.name) == rhs.values.map(\.name)
      && lhs.values.map(\.number) == rhs.values.map(\.number)
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(fullName)
  }

  public func name(of number: Int32) -> String? { values.first { $0.number == number }?.name }
  public func number(of name: String) -> Int32? { values.first { $0.name == name }?.number }
}

public struct ServiceDescriptor: Hashable, Sendable {
  public var fullName: String
  public var methods: [MethodDescriptorInfo]
}

public struct MethodDescriptorInfo: Hashable, Sendable {
  public var name: String
  public var inputType: String
  public var outputType: String
  public var clientStreaming: Bool
  public var serverStreaming: Bool
}

extension FileDescriptor {
  /// Parses a serialized `google.protobuf.FileDescriptorProto`.
  public init(serialized: [UInt8]) throws(WireFormatError) {
    var reader = WireReader(serialized)
    var name = "", package = "", syntax = "proto2"
    var dependencies: [String] = []
    var messageReaders: [WireReader] = [], enumReaders: [WireReader] = [], serviceReaders: [WireReader] = []
    while let field = try reader.nextField() {
      switch (field.number, field.type) {
      case (1, .lengthDelimited): name = try reader.string()
      case (2, .lengthDelimited): package = try reader.string()
      case (3, .lengthDelimited): dependencies.append(try reader.string())
      case (4, .lengthDelimited): messageReaders.append(try reader.message())
      case (5, .lengthDelimited): enumReaders.append(try reader.message())
      case (6, .lengthDelimited): serviceReaders.append(try reader.message())
      case (12, .lengthDelimited): syntax = try reader.string()
      default: try reader.skip(field.type, number: field.number)
      }
    }
    let scope = package.isEmpty ? "" : package + "."
    var messages: [MessageDescriptor] = []
    for var r in messageReaders { messages.append(try MessageDescriptor.parse(&r, scope: scope, proto3: syntax == "proto3")) }
    var enums: [EnumDescriptor] = []
    for var r in enumReaders { enums.append(try EnumDescriptor.parse(&r, scope: scope)) }
    var services: [ServiceDescriptor] = []
    for var r in serviceReaders { services.append(try ServiceDescriptor.parse(&r, scope: scope)) }
    self.init(
      name: name, package: package, dependencies: dependencies, messages: messages, enums: enums, services: services,
      serialized: serialized)
  }
}

extension MessageDescriptor {
  static func parse(_ reader: inout WireReader, scope: String, proto3: Bool) throws(WireFormatError) -> Self {
    var name = ""
    var fieldReaders: [WireReader] = [], nestedReaders: [WireReader] = [], enumReaders: [WireReader] = []
    var oneofs: [String] = []
    var isMapEntry = false
    while let field = try reader.nextField() {
      switch (field.number, field.type) {
      case (1, .lengthDelimited): name = try reader.string()
      case (2, .lengthDelimited): fieldReaders.append(try reader.message())
      case (3, .lengthDelimited): nestedReaders.append(try reader.message())
      case (4, .lengthDelimited): enumReaders.append(try reader.message())
      case (7, .lengthDelimited):
        var options = try reader.message()
        while let option = try options.nextField() {
          if option.number == 7, option.type == .varint { isMapEntry = try options.varint() != 0 } else {
            try options.skip(option.type, number: option.number)
          }
        }
      case (8, .lengthDelimited):
        var oneof = try reader.message()
        var oneofName = ""
        while let f = try oneof.nextField() {
          if f.number == 1, f.type == .lengthDelimited { oneofName = try oneof.string() } else {
            try oneof.skip(f.type, number: f.number)
          }
        }
        oneofs.append(oneofName)
      default: try reader.skip(field.type, number: field.number)
      }
    }
    let fullName = scope + name
    var fields: [FieldDescriptor] = []
    var syntheticOneofs: Set<Int> = []
    for var r in fieldReaders {
      let (field, synthetic) = try FieldDescriptor.parse(&r, proto3: proto3)
      if let synthetic { syntheticOneofs.insert(synthetic) }
      fields.append(field)
    }
    var nested: [MessageDescriptor] = []
    for var r in nestedReaders { nested.append(try parse(&r, scope: fullName + ".", proto3: proto3)) }
    var enums: [EnumDescriptor] = []
    for var r in enumReaders { enums.append(try EnumDescriptor.parse(&r, scope: fullName + ".")) }
    return MessageDescriptor(
      fullName: fullName, fields: fields, oneofs: oneofs, nestedMessages: nested, nestedEnums: enums,
      isMapEntry: isMapEntry)
  }
}

extension FieldDescriptor {
  /// The field, and the index of its synthetic oneof when it is a proto3 `optional`.
  static func parse(_ reader: inout WireReader, proto3: Bool) throws(WireFormatError) -> (Self, Int?) {
    var name = "", jsonName: String?, number = 0, label = 1, type = 0
    var typeName: String?
    var oneofIndex: Int?
    var proto3Optional = false
    while let field = try reader.nextField() {
      switch (field.number, field.type) {
      case (1, .lengthDelimited): name = try reader.string()
      case (3, .varint): number = Int(truncatingIfNeeded: try reader.varint())
      case (4, .varint): label = Int(truncatingIfNeeded: try reader.varint())
      case (5, .varint): type = Int(truncatingIfNeeded: try reader.varint())
      case (6, .lengthDelimited):
        let raw = try reader.string()
        typeName = raw.hasPrefix(".") ? String(raw.dropFirst()) : raw
      case (9, .varint): oneofIndex = Int(truncatingIfNeeded: try reader.varint())
      case (10, .lengthDelimited): jsonName = try reader.string()
      case (17, .varint): proto3Optional = try reader.varint() != 0
      default: try reader.skip(field.type, number: field.number)
      }
    }
    guard let kind = Kind(rawValue: type) else { throw WireFormatError("field \(name): unknown type \(type)") }
    let isRepeated = label == 3
    let hasPresence = proto3Optional || (!proto3 && label == 1) || (kind == .message && !isRepeated)
    let field = FieldDescriptor(
      name: name, jsonName: jsonName ?? Self.lowerCamelCase(name), number: number, kind: kind, isRepeated: isRepeated,
      typeName: typeName, oneofIndex: proto3Optional ? nil : oneofIndex, hasPresence: hasPresence)
    return (field, proto3Optional ? oneofIndex : nil)
  }

  /// protoc's JSON name: underscores dropped, the next letter upper-cased.
  public static func lowerCamelCase(_ name: String) -> String {
    var result = ""
    var upperNext = false
    for character in name {
      if character == "_" {
        upperNext = true
      } else if upperNext {
        result += character.uppercased()
        upperNext = false
      } else {
        result.append(character)
      }
    }
    return result
  }
}

extension EnumDescriptor {
  static func parse(_ reader: inout WireReader, scope: String) throws(WireFormatError) -> Self {
    var name = ""
    var values: [(String, Int32)] = []
    while let field = try reader.nextField() {
      switch (field.number, field.type) {
      case (1, .lengthDelimited): name = try reader.string()
      case (2, .lengthDelimited):
        var value = try reader.message()
        var valueName = "", number: Int32 = 0
        while let f = try value.nextField() {
          switch (f.number, f.type) {
          case (1, .lengthDelimited): valueName = try value.string()
          case (2, .varint): number = Int32(truncatingIfNeeded: try value.varint())
          default: try value.skip(f.type, number: f.number)
          }
        }
        values.append((valueName, number))
      default: try reader.skip(field.type, number: field.number)
      }
    }
    return EnumDescriptor(fullName: scope + name, values: values)
  }
}

extension ServiceDescriptor {
  static func parse(_ reader: inout WireReader, scope: String) throws(WireFormatError) -> Self {
    var name = ""
    var methods: [MethodDescriptorInfo] = []
    while let field = try reader.nextField() {
      switch (field.number, field.type) {
      case (1, .lengthDelimited): name = try reader.string()
      case (2, .lengthDelimited):
        var method = try reader.message()
        var info = MethodDescriptorInfo(name: "", inputType: "", outputType: "", clientStreaming: false, serverStreaming: false)
        while let f = try method.nextField() {
          switch (f.number, f.type) {
          case (1, .lengthDelimited): info.name = try method.string()
          case (2, .lengthDelimited): info.inputType = String(try method.string().drop { $0 == "." })
          case (3, .lengthDelimited): info.outputType = String(try method.string().drop { $0 == "." })
          case (5, .varint): info.clientStreaming = try method.varint() != 0
          case (6, .varint): info.serverStreaming = try method.varint() != 0
          default: try method.skip(f.type, number: f.number)
          }
        }
        methods.append(info)
      default: try reader.skip(field.type, number: field.number)
      }
    }
    return ServiceDescriptor(fullName: scope + name, methods: methods)
  }
}
