public import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A command's flags from its command line and from the environment: every flag `--name` may
/// also be given as `ESAYLOV_NAME` (upper case, `-` as `_`; a flag without a value as `1` or
/// `true`), and the command line wins. `--help` documents every flag and says so. Invalid
/// configuration ends the process before anything starts, naming the flag (and the variable,
/// when the value came from one). The effective configuration is what the server logs at start.
public enum ServerConfiguration {
    /// One flag's effective value and where it came from.
    public struct Entry: Sendable, Hashable {
        public enum Source: String, Sendable { case flag, environment, defaultValue = "default" }
        public var name: String
        public var value: String
        public var source: Source
    }

    struct Option: Hashable {
        var name: String
        var takesValue: Bool
        var defaultValue: String?
    }

    /// The options of `C`, as its help lists them (so the list cannot drift from the flags).
    static func options<C: ParsableArguments>(of _: C.Type) -> [Option] {
        // Each option's block: its line, then the lines of its description (indented further).
        var blocks: [[Substring]] = []
        var inOptions = false
        for line in C.helpMessage(columns: 100_000).split(separator: "\n") {
            if line.hasPrefix("OPTIONS:") { inOptions = true; continue }
            guard inOptions else { continue }
            let text = line.drop(while: { $0 == " " })
            if text.hasPrefix("--") { blocks.append([text]) } else if !blocks.isEmpty, !text.isEmpty, line.hasPrefix("  ") { blocks[blocks.count - 1].append(text) }
        }
        var out: [Option] = []
        for block in blocks {
            let words = block[0].split(separator: " ", omittingEmptySubsequences: true)
            let name = String(words[0].dropFirst(2))
            guard name != "help" else { continue }
            let takesValue = words.count > 1 && words[1].hasPrefix("<")
            let all = block.joined(separator: " ")
            var defaultValue: String?
            if let r = all.range(of: "(default: ", options: .backwards), let end = all[r.upperBound...].firstIndex(of: ")") {
                defaultValue = String(all[r.upperBound..<end])
            }
            out.append(Option(name: name, takesValue: takesValue, defaultValue: defaultValue))
        }
        return out
    }

    public static func environmentName(_ flag: String) -> String {
        "ESAYLOV_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The arguments with the environment's values added for flags the command line lacks, and
    /// the effective configuration.
    static func merge(_ arguments: [String], options: [Option], environment: [String: String]) -> (arguments: [String], entries: [Entry]) {
        var merged = arguments
        var entries: [Entry] = []
        for option in options {
            let flag = "--" + option.name
            if let i = arguments.firstIndex(where: { $0 == flag || $0.hasPrefix(flag + "=") }) {
                let given = arguments[i]
                let value = given.hasPrefix(flag + "=") ? String(given.dropFirst(flag.count + 1))
                    : option.takesValue ? (i + 1 < arguments.count ? arguments[i + 1] : "") : "true"
                entries.append(Entry(name: option.name, value: value, source: .flag))
            } else if let value = environment[environmentName(option.name)] {
                if option.takesValue {
                    merged += [flag, value]
                    entries.append(Entry(name: option.name, value: value, source: .environment))
                } else if ["1", "true", "yes"].contains(value.lowercased()) {
                    merged.append(flag)
                    entries.append(Entry(name: option.name, value: "true", source: .environment))
                } else {
                    entries.append(Entry(name: option.name, value: "false", source: .environment))
                }
            } else {
                entries.append(Entry(name: option.name, value: option.defaultValue ?? (option.takesValue ? "" : "false"), source: .defaultValue))
            }
        }
        return (merged, entries)
    }

    /// Parses `C` from `arguments` and the process's environment; prints help and exits 0 on
    /// `--help`, prints the error naming the flag and exits 64 (EX_USAGE) on invalid configuration.
    public static func parse<C: ParsableArguments>(_ type: C.Type, name: String, arguments: [String]) -> (C, [Entry]) {
        let options = options(of: C.self)
        if arguments.contains("--help") || arguments.contains("-h") {
            let names = options.prefix(2).map { "--\($0.name) as \(environmentName($0.name))" }.joined(separator: ", ")
            ServerMain.writeLine(
                C.helpMessage(columns: 100)
                    + "\nEvery option may also come from the environment (\(names), …; a flag as 1 or true); the command line wins.",
                to: 1)
            exit(0)
        }
        var environment: [String: String] = [:]
        for option in options {
            let key = environmentName(option.name)
            if let p = getenv(key) { environment[key] = String(cString: p) }
        }
        let (merged, entries) = merge(arguments, options: options, environment: environment)
        do {
            return (try C.parse(merged), entries)
        } catch {
            var message = C.message(for: error)
            let fromEnvironment = entries.filter { $0.source == .environment }.map { environmentName($0.name) }
            if !fromEnvironment.isEmpty { message += " (set from the environment: \(fromEnvironment.joined(separator: ", ")))" }
            ServerMain.printError("\(name): \(message)\nRun \(name) --help for every option.")
            exit(64)
        }
    }

    /// A database URL with its password masked, for the log.
    public static func masked(url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", range: scheme.upperBound..<url.endIndex) else {
            return url.contains("password=") ? url.replacingOccurrences(of: #"password=[^& ]*"#, with: "password=***", options: .regularExpression) : url
        }
        let credentials = url[scheme.upperBound..<at.lowerBound]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
    }
}
