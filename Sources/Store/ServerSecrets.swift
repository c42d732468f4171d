import Signatures

/// Keys of this deployment (page-token MAC, SMS-code MAC), kept in `server_secrets` so that
/// replicas and restarts share them.
public enum ServerSecrets {
    /// The secret `name`, made on first use from the CSPRNG (32 bytes, as hex); replicas
    /// starting together agree on the one that was stored first.
    public static func value(_ database: Database, name: String) throws(StoreError) -> [UInt8] {
        try database.withConnection { (c) throws(StoreError) -> [UInt8] in
            let fresh = Crypto.hex(Crypto.randomBytes(32))
            try c.query("INSERT INTO server_secrets (name, value) VALUES (\(name), \(fresh)) ON CONFLICT (name) DO NOTHING")
            let rows = try c.query("SELECT value FROM server_secrets WHERE name = \(name)")
            guard rows.count == 1 else { throw StoreError(.other, reason: "server secret \(name) is missing") }
            return Array(try rows.string(0, "value").utf8)
        }
    }
}
