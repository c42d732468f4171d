#ifndef ESAYLOV_CPROTOBUFC_SHIM_H
#define ESAYLOV_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
