import ESaylovAPI
import RPC
import Store

// Keyset paging of every list: a page of `limit` rows out of `limit + 1` fetched, and a MAC'd
// token of where it ended, tied to the list's filter.

/// A page of at most `limit` rows out of the `limit + 1` fetched, and the row the next page
/// starts after (nil on the last page).
func pageOf<Row>(_ rows: [Row], _ limit: Int) -> (rows: ArraySlice<Row>, last: Row?) {
    guard rows.count > limit else { return (rows[...], nil) }
    return (rows[..<limit], rows[limit - 1])
}

func pageInfo(_ token: String) -> Esaylov_V1_PageInfo {
    var p = Esaylov_V1_PageInfo()
    p.nextPageToken = token
    return p
}

extension PageTokens {
    /// Page size and the position after which the page starts.
    func page<Cursor>(
        _ request: Esaylov_V1_PageRequest?, filter: [String], fields: Int, _ make: ([String]) -> Cursor?
    ) throws(RPCError) -> (Int, Cursor?) {
        let size = Int(request?.pageSize ?? 0)
        guard (0...500).contains(size) else { throw invalid("page.page_size", "must be 0 (default 50) to 500") }
        let token = request?.pageToken ?? ""
        if token.utf8.count > FieldLimits.pageToken { throw invalid("page.page_token", "must be at most \(FieldLimits.pageToken) characters") }
        guard !token.isEmpty else { return (size == 0 ? 50 : size, nil) }
        guard let f = decode(token, filter: filter, fieldCount: fields), let cursor = make(f) else {
            throw invalid("page.page_token", "is not a token this list issued for this filter, or it expired (24 hours)")
        }
        return (size == 0 ? 50 : size, cursor)
    }
}
