/* Time sources: monotonic for timers and windows, wall clock for stamps. */
#ifndef RTC_CORE_CLOCK_H
#define RTC_CORE_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds. */
uint64_t clock_mono_ms(void);
/* Wall-clock seconds since the epoch. */
int64_t clock_wall_s(void);

#endif
