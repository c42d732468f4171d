public import Logging
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One JSON object a line on standard error, for log shippers (`--log-format json`):
/// {"ts":"2026-12-01T10:00:00.123Z","level":"info","logger":"…","message":"…", …metadata}.
/// Metadata values are strings (nested values flattened to their description); keys never
/// shadow the fixed four.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [("ts", Self.timestamp()), ("level", event.level.rawValue), ("logger", label), ("message", "\(event.message)")]
        var merged = metadata
        if let extra = metadataProvider?.get() { merged.merge(extra) { a, _ in a } }
        if let extra = event.metadata { merged.merge(extra) { _, b in b } }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) where !["ts", "level", "logger", "message"].contains(k) {
            fields.append((k, "\(v)"))
        }
        var line = "{"
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { line += "," }
            line += Self.quoted(k) + ":" + Self.quoted(v)
        }
        line += "}\n"
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// A JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        var seconds = time_t(t.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(t.tv_nsec / 1_000_000))
    }
}
