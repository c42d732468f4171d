#ifndef ESAYLOV_COPENSSL_SHIM_H
#define ESAYLOV_COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

// OpenSSL macros and variadic calls, as functions Swift can import.

static inline long esaylov_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }

static inline int esaylov_x509_store_ctx_set_app_data(X509_STORE_CTX *ctx, void *data) {
    return X509_STORE_CTX_set_app_data(ctx, data);
}
static inline void *esaylov_x509_store_ctx_get_app_data(X509_STORE_CTX *ctx) { return X509_STORE_CTX_get_app_data(ctx); }

static inline int esaylov_x509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *esaylov_x509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline void esaylov_x509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }

static inline int esaylov_signer_info_num(STACK_OF(CMS_SignerInfo) *sk) { return sk_CMS_SignerInfo_num(sk); }
static inline CMS_SignerInfo *esaylov_signer_info_value(STACK_OF(CMS_SignerInfo) *sk, int i) {
    return sk_CMS_SignerInfo_value(sk, i);
}

static inline int esaylov_x509_info_num(const STACK_OF(X509_INFO) *sk) { return sk_X509_INFO_num(sk); }
static inline X509_INFO *esaylov_x509_info_value(const STACK_OF(X509_INFO) *sk, int i) { return sk_X509_INFO_value(sk, i); }
static inline void esaylov_x509_info_pop_free(STACK_OF(X509_INFO) *sk) { sk_X509_INFO_pop_free(sk, X509_INFO_free); }

static inline X509 *esaylov_x509_info_cert(X509_INFO *info) { return info->x509; }
static inline X509_CRL *esaylov_x509_info_crl(X509_INFO *info) { return info->crl; }

/// An EC key on the named curve ("P-256"), or an Ed25519 key when `curve` is NULL.
static inline EVP_PKEY *esaylov_generate_key(const char *curve) {
    return curve ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}
static inline EVP_PKEY *esaylov_generate_rsa_key(size_t bits) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits); }

/// The DER bytes of an attribute value of type SEQUENCE (a time-stamp token), or NULL.
static inline const unsigned char *esaylov_attribute_sequence(X509_ATTRIBUTE *attr, int *length) {
    ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(attr, 0);
    if (t == NULL || t->type != V_ASN1_SEQUENCE || t->value.sequence == NULL) return NULL;
    *length = ASN1_STRING_length(t->value.sequence);
    return ASN1_STRING_get0_data(t->value.sequence);
}

static inline int esaylov_x509_crl_set_version(X509_CRL *crl, long version) { return X509_CRL_set_version(crl, version); }

// TLS: the server's protocol floor, and ALPN that takes "h2" or refuses the handshake.

static inline int esaylov_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
static inline long esaylov_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long esaylov_ssl_ctx_set_session_cache_size(SSL_CTX *ctx, long n) { return SSL_CTX_sess_set_cache_size(ctx, n); }
/// No TLS compression (CRIME), no renegotiation (RFC 9113 §9.2.1 forbids it), the server's
/// cipher order.
static inline void esaylov_ssl_ctx_set_server_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
}
/// An empty memory BIO reads as "retry" rather than end of file.
static inline long esaylov_bio_set_mem_eof_return(BIO *bio, int v) { return BIO_set_mem_eof_return(bio, v); }

/// Selects "h2" from the client's ALPN list; any other list ends the handshake with the
/// no_application_protocol alert.
static int esaylov_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                                  unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) break;
        if (n == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/// A ClientHello without the ALPN extension is refused with no_application_protocol too (the
/// ALPN callback is not called for it).
static int esaylov_client_hello_needs_alpn(SSL *ssl, int *alert, void *arg) {
    (void)arg;
    const unsigned char *ext;
    size_t len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) == 1) return SSL_CLIENT_HELLO_SUCCESS;
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
}

static inline void esaylov_ssl_ctx_require_h2(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, esaylov_alpn_select_h2, NULL);
    SSL_CTX_set_client_hello_cb(ctx, esaylov_client_hello_needs_alpn, NULL);
}

/// A client side that offers "h2" (tests and benchmarks of the server).
static inline int esaylov_ssl_ctx_offer_h2(SSL_CTX *ctx) {
    static const unsigned char h2[] = {2, 'h', '2'};
    return SSL_CTX_set_alpn_protos(ctx, h2, sizeof h2);
}
#endif
