/* The reference for Scripts/bench.sh's signature bench: OpenSSL's own CMS_verify over one
 * detached CMS, with the same trust store (every *.pem of a directory: CA certificates and
 * CRLs, revocation checked for the whole chain), in a loop for a number of seconds on one
 * thread. Prints "cms_verify: N verifications in S s: R/s".
 *   cms_verify CMS.der CONTENT TRUST_DIR SECONDS */
#include <dirent.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: cms_verify CMS.der CONTENT TRUST_DIR SECONDS\n"); return 2; }
    BIO *in = BIO_new_file(argv[1], "rb");
    CMS_ContentInfo *cms = in ? d2i_CMS_bio(in, NULL) : NULL;
    if (!cms) { fprintf(stderr, "cms_verify: cannot read %s\n", argv[1]); return 1; }
    BIO *content_file = BIO_new_file(argv[2], "rb");
    char content[65536];
    int content_len = content_file ? BIO_read(content_file, content, sizeof content) : -1;
    if (content_len < 0) { fprintf(stderr, "cms_verify: cannot read %s\n", argv[2]); return 1; }
    X509_STORE *store = X509_STORE_new();
    DIR *dir = opendir(argv[3]);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".pem") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[3], e->d_name);
        BIO *b = BIO_new_file(path, "r");
        STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
        for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
            X509_INFO *info = sk_X509_INFO_value(infos, i);
            if (info->x509) X509_STORE_add_cert(store, info->x509);
            if (info->crl) X509_STORE_add_crl(store, info->crl);
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        BIO_free(b);
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    double seconds = atof(argv[4]), start = now(), end = start + seconds;
    long count = 0;
    while (now() < end) {
        for (int i = 0; i < 16; i++) {
            BIO *data = BIO_new_mem_buf(content, content_len);
            if (CMS_verify(cms, NULL, store, data, NULL, CMS_BINARY) != 1) {
                fprintf(stderr, "cms_verify: verification failed\n");
                ERR_print_errors_fp(stderr);
                return 1;
            }
            BIO_free(data);
            count++;
        }
    }
    double took = now() - start;
    printf("cms_verify: %ld verifications in %.1f s: %.0f/s\n", count, took, count / took);
    return 0;
}
