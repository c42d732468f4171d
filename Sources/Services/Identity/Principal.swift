public import Domain
public import RPC
public import Store

/// What a session may do (`esaylov.v1.Permission`), from the regulation's rules.
public enum Permission: String, Sendable, Hashable, CaseIterable, Comparable {
    case readOwnRecord
    case sendRequests
    case signRequests
    case reviewRequests
    case draftDecisions
    case approveDecisions
    case readPersonalData
    case readAudit
    case verifyAudit
    case manageDirectory

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The signed-in caller, as the authentication interceptor found their session.
public struct Principal: Sendable, Hashable {
    public var session: SessionRecord

    public var personId: String { session.personId }
    public var organisationId: String? { session.organisationId }
    public var roles: [Role] { session.roles }

    /// The permissions of the session, each from a clause:
    /// - everyone reads their own record (cl. 13);
    /// - an organisation's head, and a commission's chairperson, send its requests with the EDS
    ///   (cl. 6, 8), unless cl. 6 gives the organisation no route; its clerks prepare and send
    ///   them, signed by the head;
    /// - candidates and proxies send requests without the EDS (cl. 7);
    /// - a commission's members review its requests and read the personal data in them (cl. 10,
    ///   13), its deputy chairperson and secretary draft decisions (cl. 12), its chairperson and
    ///   deputy chairperson approve them (cl. 11), and it reads its part of the audit trail;
    /// - operators manage the directory and read personal records; auditors read and verify the
    ///   whole audit trail (cl. 13).
    public var permissions: Set<Permission> {
        var out: Set<Permission> = [.readOwnRecord]
        if session.candidateId != nil || session.proxyId != nil { out.insert(.sendRequests) }
        guard let kind = session.organisationKind else { return out }
        for role in roles {
            if role.signsRequests(in: kind), kind.maySendRequests { out.formUnion([.sendRequests, .signRequests]) }
            switch role {
            case .chairperson, .deputyChairperson, .secretary, .member:
                out.formUnion([.reviewRequests, .readPersonalData, .readAudit])
                if role.mayDraftDecisions { out.insert(.draftDecisions) }
                if role.mayApproveDecisions { out.insert(.approveDecisions) }
            case .operator: out.formUnion([.manageDirectory, .readPersonalData])
            case .auditor: out.formUnion([.readAudit, .verifyAudit])
            // Clerks prepare and send drafts; the head's EDS signs them (cl. 8).
            case .clerk: if kind.maySendRequests { out.insert(.sendRequests) }
            case .head: break
            }
        }
        return out
    }

    /// The id the audit log records the caller by.
    public var auditActor: AuditActor { AuditActor(organisationId: organisationId ?? "", personId: personId) }

    /// Sees the whole audit trail (auditors), rather than its commission's part.
    public var seesWholeAuditTrail: Bool { roles.contains(.auditor) }
}

/// The caller's principal on the call's context (set by `AuthenticationInterceptor`).
public enum PrincipalKey: ServerContextKey {
    public typealias Value = Principal
}

extension ServerContext {
    /// The signed-in caller; UNAUTHENTICATED when the method's rule let the call in without one.
    public func principal() throws(RPCError) -> Principal {
        guard let p = self[PrincipalKey.self] else {
            throw RPCError(code: .unauthenticated, message: "this method needs a session: send authorization: Bearer <token>")
        }
        return p
    }
}
