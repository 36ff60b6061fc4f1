/*
 * Per-thread scratch buffers, allocated on a thread's first use and freed
 * when the thread ends. glibc zeroes a thread's whole static TLS block when
 * the thread starts, so a large _Thread_local array costs its size in
 * resident memory in every thread of the process, whether the thread ever
 * uses it or not (the workers, the UDP receivers, the blocking pool, the
 * write-behind...). A buffer from here costs memory only in the threads
 * that use it, and only for the pages they touch.
 */
#ifndef RTC_CORE_TBUF_H
#define RTC_CORE_TBUF_H

#include <stddef.h>

enum tbuf_id {
	TBUF_REG_CONTACTS, /* registrar: the request's Contacts */
	TBUF_REG_CHANGED,  /* registrar: bindings changed by one REGISTER */
	TBUF_PROXY_REQ,	   /* proxy: a forwarded request */
	TBUF_PROXY_RESP,   /* proxy: a forwarded response */
	TBUF_COUNT
};

/*
 * The calling thread's buffer id, of size bytes (uninitialised the first
 * time; each id must always be asked for with the same size). NULL if out
 * of memory.
 */
void *tbuf(enum tbuf_id id, size_t size);

#endif
