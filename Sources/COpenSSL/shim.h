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
#endif
