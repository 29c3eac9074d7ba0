#ifndef FLASHSALE_CSQLITE_SHIM_H
#define FLASHSALE_CSQLITE_SHIM_H

#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift
/// cannot import: sqlite copies the bound bytes when given this destructor.
static inline sqlite3_destructor_type flashsale_sqlite_transient(void) {
  return SQLITE_TRANSIENT;
}

/// Turns off SQLite's memory statistics (`sqlite3_config` is variadic, which
/// Swift cannot call). With them on, every allocation SQLite makes takes a
/// process-wide mutex to count it. Takes effect only before SQLite is
/// initialized (the first connection opened); returns SQLITE_MISUSE after.
static inline int flashsale_sqlite_disable_memory_statistics(void) {
  return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#endif
