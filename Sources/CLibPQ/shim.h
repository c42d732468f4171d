#ifndef ESAYLOV_CLIBPQ_SHIM_H
#define ESAYLOV_CLIBPQ_SHIM_H
#include <libpq-fe.h>
// The event loops' connections are watched with epoll (Store/SocketWatcher.swift).
#include <sys/epoll.h>
#endif
