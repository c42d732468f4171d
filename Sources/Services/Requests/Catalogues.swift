public import Domain
import Foundation
import Store
import Synchronization

/// The catalogue versions of campaigns, decoded once each (a version never changes), and cut
/// to clause 6 as they load: a route whose senders the clause does not list for its receiver
/// loses them, whatever the stored definition says.
public final class Catalogues: Sendable {
    private let loaded = Mutex<[String: Catalogue]>([:])

    public init() {}

    /// Decodes a stored definition and intersects it with clause 6.
    public static func decode(_ json: String) throws -> Catalogue {
        var catalogue = try Catalogue(json: json)
        for i in catalogue.rules.indices {
            catalogue.rules[i].routes = catalogue.rules[i].routes.compactMap { route in
                guard let level = route.receiver.commissionLevel else { return nil }
                var r = route
                r.senders = route.senders.filter { Clause6.allows($0, to: level) }
                return r.senders.isEmpty ? nil : r
            }
        }
        return catalogue
    }

    /// The campaign's catalogue in its current version.
    func catalogue(for campaign: CampaignRecord, database: Database, timeout: Duration) async throws(StoreError) -> Catalogue {
        let key = "\(campaign.id)#\(campaign.catalogueVersion)"
        if let c = loaded.withLock({ $0[key] }) { return c }
        guard let json = try await database.read(CampaignStore().catalogue(campaignId: campaign.id, version: campaign.catalogueVersion), timeout: timeout) else {
            throw StoreError(.decoding, reason: "campaign \(campaign.id) has no catalogue version \(campaign.catalogueVersion)")
        }
        let catalogue: Catalogue
        do { catalogue = try Self.decode(json) } catch {
            throw StoreError(.decoding, reason: "catalogue \(key) does not decode")
        }
        loaded.withLock { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[key] = catalogue
        }
        return catalogue
    }
}
