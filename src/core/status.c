/* status.c — status names and the library version. */
#include "qeil/qeil.h"

const char *qeil_status_str(qeil_status s)
{
    switch (s) {
    case QEIL_OK: return "ok";
    case QEIL_ERR_NOMEM: return "out of memory";
    case QEIL_ERR_IO: return "I/O error";
    case QEIL_ERR_FORMAT: return "malformed input";
    case QEIL_ERR_RANGE: return "value out of range";
    case QEIL_ERR_UNSUPPORTED: return "unsupported";
    case QEIL_ERR_INFEASIBLE: return "infeasible";
    case QEIL_ERR_INVALID: return "invalid argument";
    case QEIL_ERR_NOTFOUND: return "not found";
    case QEIL_ERR_INTERNAL: return "internal error";
    case QEIL_ERR_DEVICE: return "device failed";
    }
    return "unknown status";
}

const char *qeil_version(void) { return QEIL_VERSION_STRING; }
