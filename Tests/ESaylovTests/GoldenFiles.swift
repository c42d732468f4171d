import Foundation

/// Golden wire bytes written by `protoc --encode` (Scripts/generate.sh) from the text
/// protos beside them: an encoder independent of protobuf-c.
enum GoldenFiles {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/golden")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name + ".bin")))
    }
}
