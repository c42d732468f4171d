/// What a decision does with a request (decisions.proto, `DecisionOutcome`).
public enum DecisionOutcome: String, Sendable, Hashable, CaseIterable {
    case granted
    case partlyGranted
    case refused
    case returned
    case accepted
}

/// The rules of clauses 10–12 for drafting and approving decisions, free of the wire types.
public enum DecisionRules {
    /// One item's outcome as a draft proposes it.
    public struct Item: Sendable, Hashable {
        public var index: Int
        public var outcome: DecisionOutcome
        public var reason: String

        public init(index: Int, outcome: DecisionOutcome, reason: String) {
            self.index = index
            self.outcome = outcome
            self.reason = reason
        }
    }

    /// A draft as the rules look at it.
    public struct Draft: Sendable, Hashable {
        public var outcome: DecisionOutcome
        public var items: [Item]
        public var text: String
        public var correctionDays: Int

        public init(outcome: DecisionOutcome, items: [Item], text: String, correctionDays: Int) {
            self.outcome = outcome
            self.items = items
            self.text = text
            self.correctionDays = correctionDays
        }
    }

    public static let maxText = 20_000
    public static let correctionDays = 1...30

    /// Everything wrong with a draft for a request whose form has `itemCount` items (0 for a
    /// form without a list): per-item outcomes name items the form has, once each, granted or
    /// refused, refusals with reasons; PARTLY_GRANTED has both kinds; RETURNED has its
    /// correction period; REFUSED has its reasons in the text.
    public static func check(_ d: Draft, itemCount: Int) -> [DomainViolation] {
        var out: [DomainViolation] = []
        func fault(_ f: String, _ r: String) { out.append(DomainViolation(field: f, rule: r)) }
        if d.text.allSatisfy(\.isWhitespace) { fault("text", "is required: the decision's text, with its reasons") }
        if d.text.count > maxText { fault("text", "must be at most \(maxText) characters") }
        var seen: Set<Int> = []
        for (i, item) in d.items.enumerated() {
            let f = "item_outcomes[\(i)]"
            if !(0..<itemCount).contains(item.index) {
                fault("\(f).item_index", itemCount == 0 ? "the request's form has no items" : "must name an item of the form (0 to \(itemCount - 1))")
            } else if !seen.insert(item.index).inserted {
                fault("\(f).item_index", "each item has one outcome")
            }
            if item.outcome != .granted && item.outcome != .refused { fault("\(f).outcome", "an item is granted or refused") }
            if item.outcome == .refused && item.reason.allSatisfy(\.isWhitespace) { fault("\(f).reason", "is required for a refused item") }
            if item.reason.count > 2000 { fault("\(f).reason", "must be at most 2000 characters") }
        }
        switch d.outcome {
        case .partlyGranted:
            if itemCount == 0 { fault("outcome", "PARTLY_GRANTED needs a form with items") }
            if seen.count != itemCount && itemCount > 0 { fault("item_outcomes", "PARTLY_GRANTED gives every item of the form its outcome") }
            let kinds = Set(d.items.map(\.outcome))
            if !(kinds.contains(.granted) && kinds.contains(.refused)) {
                fault("item_outcomes", "PARTLY_GRANTED grants some items and refuses others")
            }
        case .returned:
            if !correctionDays.contains(d.correctionDays) { fault("correction_days", "is required for RETURNED: 1 to 30 days") }
        case .granted, .refused, .accepted:
            if d.correctionDays != 0 { fault("correction_days", "is only for RETURNED") }
            for (i, item) in d.items.enumerated() where item.outcome != (d.outcome == .refused ? .refused : .granted) && d.outcome != .accepted {
                fault("item_outcomes[\(i)].outcome", "must agree with the decision's outcome")
            }
        }
        return out
    }

    /// cl. 12: who drafts.
    public static func mayDraft(_ roles: [Role]) -> Bool { roles.contains(where: \.mayDraftDecisions) }

    /// cl. 11 and the campaign's setting: who approves a draft. Returns why not, or nil.
    public static func approvalRefusal(roles: [Role], approver: String, drafter: String, forbidDrafterApproving: Bool) -> String? {
        guard roles.contains(where: \.mayApproveDecisions) else {
            return "a decision is approved by the commission's chairperson or deputy chairperson (clause 11)"
        }
        if forbidDrafterApproving && approver == drafter {
            return "this campaign forbids the drafter of a decision to approve it"
        }
        return nil
    }

    /// Where a RETURNED decision leaves the sender: 24:00 Tashkent time of the approval day plus
    /// the correction period.
    public static func correctionDue(approvedAt: Double, days: Int) -> Double {
        Day(tashkentDayOf: approvedAt).adding(days: days).endEpoch
    }
}
