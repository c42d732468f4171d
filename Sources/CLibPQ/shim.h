#ifndef ESAYLOV_CLIBPQ_SHIM_H
#define ESAYLOV_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
