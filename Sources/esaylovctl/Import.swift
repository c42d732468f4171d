import Domain
import Store

/// Splits CSV text (RFC 4180: quoted fields may hold commas, newlines and doubled quotes).
func parseCSV(_ text: String) throws(Failure) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var quoted = false
    var chars = Array(text.unicodeScalars)[...]
    while let c = chars.popFirst() {
        if quoted {
            if c == "\"" {
                if chars.first == "\"" { chars.removeFirst(); field.unicodeScalars.append("\"") } else { quoted = false }
            } else {
                field.unicodeScalars.append(c)
            }
        } else if c == "\"" && field.isEmpty {
            quoted = true
        } else if c == "," {
            row.append(field)
            field = ""
        } else if c == "\n" || c == "\r" {
            if c == "\r", chars.first == "\n" { chars.removeFirst() }
            row.append(field)
            field = ""
            if row != [""] { rows.append(row) }
            row = []
        } else {
            field.unicodeScalars.append(c)
        }
    }
    if quoted { throw fail("the CSV ends inside a quoted field") }
    if !field.isEmpty || !row.isEmpty {
        row.append(field)
        rows.append(row)
    }
    return rows
}

/// One organisation to import, validated.
struct ImportRow {
    let line: Int
    let id: String
    let kind: OrganisationKind
    let nameUz, nameEn: String
    let tin: String?
    let territory: String
    let parent: String?
}

let importColumns = ["id", "kind", "name_uz", "name_en", "tin", "territory", "parent"]

/// Reads and validates every row before anything is written.
func importRows(_ text: String) throws(Failure) -> [ImportRow] {
    let rows = try parseCSV(text)
    guard let header = rows.first, header == importColumns else {
        throw fail("line 1: the header must be \(importColumns.joined(separator: ","))")
    }
    var out: [ImportRow] = []
    for (i, r) in rows.dropFirst().enumerated() {
        let line = i + 2
        guard r.count == importColumns.count else { throw fail("line \(line): \(r.count) fields, expected \(importColumns.count)") }
        func col(_ name: String) -> String { r[importColumns.firstIndex(of: name)!].trimmingASCIISpace }
        guard !col("id").isEmpty else { throw fail("line \(line), id: is required") }
        guard let kind = OrganisationKind(databaseName: col("kind")) else { throw fail("line \(line), kind: unknown kind \(col("kind"))") }
        guard !col("name_uz").isEmpty, !col("name_en").isEmpty else { throw fail("line \(line), name_uz/name_en: are required") }
        let territory: String
        let tin: String?
        do {
            territory = try SOATO(col("territory"), field: "territory").value
            tin = col("tin").isEmpty ? nil : try TIN(col("tin"), field: "tin").value
        } catch {
            throw fail("line \(line), \(error.field): \(error.rule)")
        }
        out.append(ImportRow(
            line: line, id: col("id"), kind: kind, nameUz: col("name_uz"), nameEn: col("name_en"), tin: tin, territory: territory,
            parent: col("parent").isEmpty ? nil : col("parent")))
    }
    return out
}

extension String {
    var trimmingASCIISpace: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
