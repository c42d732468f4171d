/// One statement with its bound parameters and the way its rows are read. The same value runs
/// on a blocking `Connection` (`run`) or on an event loop without holding a thread
/// (`Database.read(_:on:timeout:)`, for reads).
public struct Query<Value: Sendable>: Sendable {
    /// The SQL, with `$1`, `$2`, … for the parameters; never built from values.
    public let sql: String
    /// The parameters as text; nil is NULL.
    public let params: [String?]
    let decode: @Sendable (Rows) throws(StoreError) -> Value

    public init(_ sql: String, _ params: [String?] = [], decode: @escaping @Sendable (Rows) throws(StoreError) -> Value) {
        self.sql = sql
        self.params = params
        self.decode = decode
    }

    /// The same statement, its result transformed by `transform`.
    public func map<T>(_ transform: @escaping @Sendable (Value) throws(StoreError) -> T) -> Query<T> {
        let decode = self.decode
        return Query<T>(sql, params) { (rows) throws(StoreError) in try transform(try decode(rows)) }
    }
}

extension Connection {
    /// Runs `query` and reads its rows.
    public func run<Value>(_ query: Query<Value>) throws(StoreError) -> Value {
        try query.decode(try self.query(query.sql, query.params))
    }
}
