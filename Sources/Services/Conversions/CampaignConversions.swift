// Campaigns, windows and the catalogue on the wire (requests.proto).
import Domain
import ESaylovAPI
import Store

extension Day {
    var wire: Esaylov_V1_CalendarDate {
        var d = Esaylov_V1_CalendarDate()
        d.year = Int32(year)
        d.month = Int32(month)
        d.day = Int32(day)
        return d
    }

    init?(_ wire: Esaylov_V1_CalendarDate?) {
        guard let w = wire else { return nil }
        self.init(year: Int(w.year), month: Int(w.month), day: Int(w.day))
    }
}

extension CampaignRecord {
    /// The days of a type's window in this campaign: nil ends are open.
    func days(of window: Window) -> (opens: Day?, closes: Day?) {
        (window.opens?.day(announced: announcedOn, election: electionDay), window.closes?.day(announced: announcedOn, election: electionDay))
    }

    func status(now: Double) -> Esaylov_V1_CampaignStatus {
        if closed { return .closed }
        return now < announcedOn.startEpoch ? .planned : .active
    }

    func wire(now: Double) -> Esaylov_V1_Campaign {
        var c = Esaylov_V1_Campaign()
        c.id = id
        c.name = name
        c.electionKinds = electionKinds.map(\.wire)
        c.announcedOn = announcedOn.wire
        c.electionDay = electionDay.wire
        c.status = status(now: now)
        var s = Esaylov_V1_CampaignSettings()
        s.maxAttachmentBytes = Int64(maxAttachmentBytes)
        s.maxAttachmentsPerRequest = Int32(maxAttachmentsPerRequest)
        s.maxRequestAttachmentBytes = Int64(maxRequestAttachmentBytes)
        s.forbidDrafterApproving = forbidDrafterApproving
        c.settings = s
        c.catalogueVersion = Int32(catalogueVersion)
        c.timeZone = "+05:00"
        return c
    }

    func wire(_ window: Window) -> Esaylov_V1_Window {
        var w = Esaylov_V1_Window()
        let (o, c) = days(of: window)
        if let m = window.opens { w.opens = m.wire }
        if let m = window.closes { w.closes = m.wire }
        if let o {
            w.opensOn = o.wire
            w.opensAt = timestamp(o.startEpoch)
        }
        if let c {
            w.closesOn = c.wire
            w.closesAt = timestamp(c.endEpoch)
        }
        return w
    }
}

extension DayMark {
    var wire: Esaylov_V1_DayOffset {
        var d = Esaylov_V1_DayOffset()
        switch anchor {
        case .announcement: d.anchor = .announcement
        case .electionDay: d.anchor = .electionDay
        case .fixedDate: d.anchor = .fixedDate
        }
        d.days = Int32(days)
        if let date { d.date = date.wire }
        return d
    }
}

extension TerritorialRelation {
    var wire: Esaylov_V1_TerritorialRelation {
        switch self {
        case .anyTerritory: .anyTerritory
        case .coveringTerritory: .coveringTerritory
        case .sameTerritory: .sameTerritory
        case .registeringCommission: .registeringCommission
        case .aboveRegisteringCommission: .aboveRegisteringCommission
        }
    }
}

extension Route {
    var wire: Esaylov_V1_Route {
        var r = Esaylov_V1_Route()
        for s in senders {
            switch s {
            case .organisation(let k): r.senderKinds.append(k.wire)
            case .candidate(let e): r.candidateSenders.append(e.wire)
            case .proxy(let e): r.proxySenders.append(e.wire)
            }
        }
        r.receiverKind = receiver.wire
        r.electionKinds = electionKinds.map(\.wire)
        r.relation = relation.wire
        r.signatureRequired = signatureRequired
        return r
    }
}

extension TypeRule {
    func wire(version: Int, campaign: CampaignRecord) -> Esaylov_V1_RequestTypeRule {
        var r = Esaylov_V1_RequestTypeRule()
        r.type = type.wire
        r.kind = type.kind.wire
        r.titleUz = titleUz
        r.titleEn = titleEn
        r.routes = routes.map { route in
            var w = route.wire
            w.kind = (route.kind ?? type.kind).wire
            return w
        }
        r.decisionDays = Int32(decisionDays)
        r.limits = limits.map { l in
            var w = Esaylov_V1_Limit()
            w.name = l.name
            w.value = Int64(l.value)
            w.description = l.description
            if let e = l.electionKind { w.electionKind = e.wire }
            return w
        }
        r.version = Int32(version)
        r.window = campaign.wire(window)
        return r
    }
}
