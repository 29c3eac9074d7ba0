#ifndef FLASHSALE_CSQLITE_SHIM_H
#define FLASHSALE_CSQLITE_SHIM_H

#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift
/// cannot import: sqlite copies the bound bytes when given this destructor.
static inline sqlite3_destructor_type flashsale_sqlite_transient(void) {
  return SQLITE_TRANSIENT;
}

#endif
