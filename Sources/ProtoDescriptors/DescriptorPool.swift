/// Every file, message, enum and service of a set of FileDescriptorProtos,
/// by name: what reflection serves and what the JSON transcoder and the
/// probe look types up in.
public struct DescriptorPool: Sendable {
  public private(set) var files: [String: FileDescriptor] = [:]
  public private(set) var messages: [String: MessageDescriptor] = [:]
  public private(set) var enums: [String: EnumDescriptor] = [:]
  public private(set) var services: [String: ServiceDescriptor] = [:]
  /// Which file declares each symbol (messages, enums, services, methods, by full name).
  public private(set) var fileOfSymbol: [String: String] = [:]

  public init() {}

  /// A pool of the files in a serialized `google.protobuf.FileDescriptorSet`.
  public init(fileDescriptorSet bytes: [UInt8]) throws(WireFormatError) {
    var reader = WireReader(bytes)
    while let field = try reader.nextField() {
      guard field.number == 1, field.type == .lengthDelimited else {
        try reader.skip(field.type, number: field.number)
        continue
      }
      try add(serializedFile: reader.bytesField())
    }
  }

  /// Adds one serialized FileDescriptorProto (a file already present is kept).
  public mutating func add(serializedFile bytes: [UInt8]) throws(WireFormatError) {
    let file = try FileDescriptor(serialized: bytes)
    guard files[file.name] == nil else { return }
    files[file.name] = file
    func addMessage(_ message: MessageDescriptor) {
      messages[message.fullName] = message
      fileOfSymbol[message.fullName] = file.name
      for nested in message.nestedMessages { addMessage(nested) }
      for nested in message.nestedEnums { addEnum(nested) }
    }
    func addEnum(_ descriptor: EnumDescriptor) {
      enums[descriptor.fullName] = descriptor
      fileOfSymbol[descriptor.fullName] = file.name
    }
    for message in file.messages { addMessage(message) }
    for descriptor in file.enums { addEnum(descriptor) }
    for service in file.services {
      services[service.fullName] = service
      fileOfSymbol[service.fullName] = file.name
      for method in service.methods { fileOfSymbol[service.fullName + "." + method.name] = file.name }
    }
  }

  /// `file` and every file it imports, transitively, the file first.
  public func withDependencies(_ file: String) -> [FileDescriptor] {
    var seen: Set<String> = []
    var ordered: [FileDescriptor] = []
    var pending = [file]
    while let name = pending.popLast() {
      guard !seen.contains(name), let descriptor = files[name] else { continue }
      seen.insert(name)
      ordered.append(descriptor)
      pending += descriptor.dependencies.reversed()
    }
    return ordered
  }

  /// The method `service/method` or `service.method`.
  public func method(_ path: String) -> (service: ServiceDescriptor, method: MethodDescriptorInfo)? {
    var trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
    if let slash = trimmed.lastIndex(of: "/") {
      trimmed.replaceSubrange(slash...slash, with: ".")
    }
    guard let dot = trimmed.lastIndex(of: ".") else { return nil }
    let serviceName = String(trimmed[..<dot])
    let methodName = String(trimmed[trimmed.index(after: dot)...])
    guard let service = services[serviceName], let method = service.methods.first(where: { $0.name == methodName })
    else { return nil }
    return (service, method)
  }
}
