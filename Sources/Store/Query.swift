import Foundation

/// One statement with its bound parameters and the way its rows are read. The same value runs
/// on a transaction's connection (`Connection.run`) or on an event loop without holding a thread
/// (`Database.read(_:timeout:)`, for reads).
public struct Query<Value: Sendable>: Sendable {
    /// The statement, its values bound as parameters.
    public let sql: SQL
    let decode: @Sendable (Rows) throws(StoreError) -> Value

    public init(_ sql: SQL, decode: @escaping @Sendable (Rows) throws(StoreError) -> Value) {
        self.sql = sql
        self.decode = decode
    }

    /// The same statement, its result transformed by `transform`.
    public func map<T>(_ transform: @escaping @Sendable (Value) throws(StoreError) -> T) -> Query<T> {
        let decode = self.decode
        return Query<T>(sql) { (rows) throws(StoreError) in try transform(try decode(rows)) }
    }
}

extension Connection {
    /// Runs `query` and reads its rows.
    public func run<Value>(_ query: Query<Value>) throws(StoreError) -> Value {
        try query.decode(try self.query(query.sql))
    }
}

/// Calls `body` with the C arrays libpq takes for the values of `binds` (values, lengths,
/// formats), valid for the call only. (Types go with the statement's preparation.)
func withParameters<R>(
    _ binds: [SQLValue],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    if binds.isEmpty { return body(nil, nil, nil) }
    var owned: [UnsafeMutableRawPointer?] = []
    owned.reserveCapacity(binds.count)
    var lengths: [Int32] = []
    var formats: [Int32] = []
    for b in binds {
        switch b.storage {
        case .null:
            owned.append(nil)
            lengths.append(0)
            formats.append(0)
        case .text(let s):
            owned.append(UnsafeMutableRawPointer(strdup(s)!))
            lengths.append(0)
            formats.append(0)
        case .binary(let bytes):
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            bytes.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) } }
            owned.append(p)
            lengths.append(Int32(bytes.count))
            formats.append(1)
        }
    }
    defer {
        for (p, b) in zip(owned, binds) {
            switch b.storage {
            case .text: free(p)
            case .binary: p?.deallocate()
            case .null: break
            }
        }
    }
    let values = owned.map { $0.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) } }
    return values.withUnsafeBufferPointer { v in
        lengths.withUnsafeBufferPointer { l in
            formats.withUnsafeBufferPointer { f in body(v.baseAddress, l.baseAddress, f.baseAddress) }
        }
    }
}
