internal import COpenSSL

/// RFC 3161 time-stamp tokens carried as an unsigned attribute of a CMS signer
/// (id-aa-timeStampToken, RFC 3161 appendix A) over the signature value: a trusted
/// time-stamping authority's statement that the signature existed at its time.
enum TimeStamps {
    static let attributeOID = "1.2.840.113549.1.9.16.2.14"

    /// nil when `si` carries no token; the token's time when it verifies against `store` (the
    /// TSA's certificate chaining to it, with the timeStamping key purpose) over this signature;
    /// the reason otherwise.
    static func time(of si: OpaquePointer, store: X509StoreHandle) -> Result<Double, SignatureFormatError>? {
        guard let obj = OBJ_txt2obj(attributeOID, 1) else { return nil }
        defer { ASN1_OBJECT_free(obj) }
        let index = CMS_unsigned_get_attr_by_OBJ(si, obj, -1)
        guard index >= 0 else { return nil }
        let fail = { (why: String) in Result<Double, SignatureFormatError>.failure(SignatureFormatError(reason: why)) }
        var length: Int32 = 0
        guard let attribute = CMS_unsigned_get_attr(si, index), let der = esaylov_attribute_sequence(attribute, &length) else {
            return fail("the time-stamp attribute holds no token")
        }
        var p: UnsafePointer<UInt8>? = der
        guard let token = d2i_PKCS7(nil, &p, Int(length)) else { return fail("the time-stamp token does not parse") }
        defer { PKCS7_free(token) }
        guard let signature = CMS_SignerInfo_get0_signature(si) else { return fail("the signer has no signature value") }
        let signed = Array(UnsafeBufferPointer(start: ASN1_STRING_get0_data(signature), count: Int(ASN1_STRING_length(signature))))
        guard let ctx = TS_VERIFY_CTX_new() else { return fail("out of memory") }
        defer { TS_VERIFY_CTX_free(ctx) }
        // The context owns what it is given: a reference to the store, a BIO of the data.
        X509_STORE_up_ref(store.raw)
        TS_VERIFY_CTX_set_store(ctx, store.raw)
        let data = BIO_new(BIO_s_mem())
        _ = signed.withUnsafeBytes { BIO_write(data, $0.baseAddress, Int32($0.count)) }
        TS_VERIFY_CTX_set_data(ctx, data)
        TS_VERIFY_CTX_set_flags(ctx, Int32(TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_DATA))
        guard TS_RESP_verify_token(ctx, token) == 1 else { return fail("the time-stamp token does not verify (\(openSSLReason()))") }
        guard let info = PKCS7_to_TS_TST_INFO(token) else { return fail("the time-stamp token holds no TSTInfo") }
        defer { TS_TST_INFO_free(info) }
        var tm = tm()
        guard let genTime = TS_TST_INFO_get_time(info), ASN1_TIME_to_tm(genTime, &tm) == 1 else { return fail("the time-stamp token has no time") }
        return .success(Double(timegm(&tm)))
    }

    /// A token from `tsa` over `data` (SHA-256), stating `time`: the development TSA of
    /// `esaylovctl sign --timestamp`.
    static func token(over data: [UInt8], tsa: SigningIdentity, at time: Double) throws(SigningError) -> [UInt8] {
        guard let request = TS_REQ_new(), let imprint = TS_MSG_IMPRINT_new(), let algorithm = X509_ALGOR_new() else {
            throw SigningError(reason: "out of memory")
        }
        defer {
            TS_REQ_free(request)
            TS_MSG_IMPRINT_free(imprint)
            X509_ALGOR_free(algorithm)
        }
        X509_ALGOR_set0(algorithm, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, nil)
        var digest = Crypto.sha256(data)
        TS_MSG_IMPRINT_set_algo(imprint, algorithm)
        TS_MSG_IMPRINT_set_msg(imprint, &digest, Int32(digest.count))
        TS_REQ_set_version(request, 1)
        TS_REQ_set_msg_imprint(request, imprint)
        TS_REQ_set_cert_req(request, 1)
        let requestBIO = MemoryBIO()
        guard i2d_TS_REQ_bio(requestBIO.raw, request) == 1 else { throw SigningError(reason: openSSLReason()) }
        guard let ctx = TS_RESP_CTX_new(), let policy = OBJ_txt2obj("1.3.6.1.4.1.4146.1.2", 1) else { throw SigningError(reason: "out of memory") }
        defer {
            TS_RESP_CTX_free(ctx)
            ASN1_OBJECT_free(policy)
        }
        guard TS_RESP_CTX_set_signer_cert(ctx, tsa.certificateHandle) == 1 else {
            throw SigningError(reason: "the TSA certificate must have the critical timeStamping key purpose (\(openSSLReason()))")
        }
        TS_RESP_CTX_set_signer_key(ctx, tsa.key.raw)
        TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256())
        TS_RESP_CTX_set_def_policy(ctx, policy)
        TS_RESP_CTX_add_md(ctx, EVP_sha256())
        // The callback reads the time through a pointer that must outlive the response's making.
        let when = UnsafeMutablePointer<Double>.allocate(capacity: 1)
        when.initialize(to: time)
        defer { when.deallocate() }
        TS_RESP_CTX_set_time_cb(ctx, { _, data, seconds, micros in
            let t = data!.assumingMemoryBound(to: Double.self).pointee
            seconds?.pointee = Int(t)
            micros?.pointee = 0
            return 1
        }, when)
        guard let response = TS_RESP_create_response(ctx, requestBIO.raw) else { throw SigningError(reason: "time-stamping failed: \(openSSLReason())") }
        defer { TS_RESP_free(response) }
        guard let status = TS_RESP_get_status_info(response), ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(status)) == 0,
            let token = TS_RESP_get_token(response)
        else { throw SigningError(reason: "the TSA refused: \(openSSLReason())") }
        let der = derEncoding { i2d_PKCS7(token, $0) }
        guard !der.isEmpty else { throw SigningError(reason: "cannot encode the time-stamp token") }
        return der
    }
}
