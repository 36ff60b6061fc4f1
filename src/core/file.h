/*
 * Small file helpers shared by the bootstrap and the vault.
 */
#ifndef RTC_CORE_FILE_H
#define RTC_CORE_FILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Write data to path atomically: a temporary file in the same directory
 * (created 0600, so secrets are never readable by others, then chmod to
 * mode), fsync, rename over path, fsync the directory. A crash leaves the
 * old file or the new one, never a torn one. 0, or -1 with a message for a
 * person in err.
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
		      size_t errlen);

#endif
