/// Where a request is in its life (requests.proto, `RequestStatus`).
public enum RequestStatus: String, Sendable, Hashable, CaseIterable {
    case draft
    case submitted
    case underReview
    case decisionDrafted
    case decided
    case returned
    case withdrawn
}

/// Who acts on a request: its sender, or the receiving commission in one of its roles.
public enum RequestParty: String, Sendable, Hashable, CaseIterable {
    /// The sending organisation (its head or clerks) or the candidate or proxy.
    case sender
    /// Any member of the receiving commission (cl. 10).
    case commissionMember
    /// Its deputy chairperson or secretary (cl. 12).
    case drafter
    /// Its chairperson or deputy chairperson, with the EDS (cl. 11).
    case approver
}

/// What happens to a request.
public enum RequestAction: String, Sendable, Hashable, CaseIterable {
    case update
    case delete
    case submit
    case withdraw
    case startReview
    case draftDecision
    case returnDraft
    case approveDecision
    case returnForCorrection
}

/// The request's state machine: one table of transitions, each with who may take it. Events
/// return the next state or the refusal; nothing else moves a request (docs/requests.md).
public enum RequestLifecycle {
    public struct Transition: Hashable, Sendable {
        public let from: RequestStatus
        public let action: RequestAction
        public let by: RequestParty
        /// nil: the request is gone (a deleted draft).
        public let to: RequestStatus?
    }

    public static let table: [Transition] = [
        // The sender prepares a draft, changes or deletes it, and sends it (cl. 7, 8).
        Transition(from: .draft, action: .update, by: .sender, to: .draft),
        Transition(from: .draft, action: .delete, by: .sender, to: nil),
        Transition(from: .draft, action: .submit, by: .sender, to: .submitted),
        // Until a decision is approved the sender may withdraw it.
        Transition(from: .submitted, action: .withdraw, by: .sender, to: .withdrawn),
        Transition(from: .underReview, action: .withdraw, by: .sender, to: .withdrawn),
        Transition(from: .decisionDrafted, action: .withdraw, by: .sender, to: .withdrawn),
        // The commission reviews (cl. 10), drafts (cl. 12) and approves (cl. 11).
        Transition(from: .submitted, action: .startReview, by: .commissionMember, to: .underReview),
        Transition(from: .underReview, action: .draftDecision, by: .drafter, to: .decisionDrafted),
        Transition(from: .decisionDrafted, action: .draftDecision, by: .drafter, to: .decisionDrafted),
        Transition(from: .decisionDrafted, action: .returnDraft, by: .approver, to: .underReview),
        Transition(from: .decisionDrafted, action: .approveDecision, by: .approver, to: .decided),
        Transition(from: .decisionDrafted, action: .returnForCorrection, by: .approver, to: .returned),
    ]

    public enum Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        /// The action does not apply in this state (FAILED_PRECONDITION).
        case wrongState(RequestStatus, RequestAction)
        /// The action applies, but not by this party (PERMISSION_DENIED).
        case wrongParty(RequestAction, RequestParty)

        public var description: String {
            switch self {
            case .wrongState(let s, let a): "a request in state \(s.rawValue) cannot be \(a.pastTense)"
            case .wrongParty(let a, let p): "a request is \(a.pastTense) by \(RequestLifecycle.parties(for: a).map(\.rawValue).joined(separator: " or ")), not by the \(p.rawValue)"
            }
        }
    }

    /// The state after `action` by `party` from `state`.
    public static func apply(_ action: RequestAction, by party: RequestParty, from state: RequestStatus) -> Result<RequestStatus?, Refusal> {
        let candidates = table.filter { $0.from == state && $0.action == action }
        guard !candidates.isEmpty else { return .failure(.wrongState(state, action)) }
        guard let t = candidates.first(where: { $0.by == party }) else { return .failure(.wrongParty(action, party)) }
        return .success(t.to)
    }

    static func parties(for action: RequestAction) -> [RequestParty] {
        var out: [RequestParty] = []
        for t in table where t.action == action && !out.contains(t.by) { out.append(t.by) }
        return out
    }
}

extension RequestAction {
    var pastTense: String {
        switch self {
        case .update: "updated"
        case .delete: "deleted"
        case .submit: "submitted"
        case .withdraw: "withdrawn"
        case .startReview: "taken into review"
        case .draftDecision: "given a draft decision"
        case .returnDraft: "given back its draft"
        case .approveDecision: "decided"
        case .returnForCorrection: "returned for correction"
        }
    }
}

extension RequestStatus {
    /// The name the database stores.
    public var databaseName: String {
        switch self {
        case .draft: "draft"
        case .submitted: "submitted"
        case .underReview: "under_review"
        case .decisionDrafted: "decision_drafted"
        case .decided: "decided"
        case .returned: "returned"
        case .withdrawn: "withdrawn"
        }
    }

    public init?(databaseName: String) {
        guard let s = Self.allCases.first(where: { $0.databaseName == databaseName }) else { return nil }
        self = s
    }
}
