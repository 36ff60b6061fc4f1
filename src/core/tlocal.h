/*
 * One object per thread, made on the thread's first use and dropped when
 * the thread ends: the pthread key every such object needs, set up once.
 * Declare `static struct tlocal t = TLOCAL_INIT(make, drop);` and call
 * tlocal_get(&t). make returns a new object or NULL (out of memory);
 * drop frees one. For objects that keep a cleanup of their own (digest
 * contexts, BN_CTX, signing contexts); core/tbuf is the same for plain
 * buffers by id.
 */
#ifndef RTC_CORE_TLOCAL_H
#define RTC_CORE_TLOCAL_H

#include <pthread.h>
#include <stdbool.h>

struct tlocal {
	void *(*make)(void);
	void (*drop)(void *);
	pthread_key_t key;
	bool ready; /* atomically set once the key exists */
};

#define TLOCAL_INIT(make_fn, drop_fn)                                                              \
	{                                                                                          \
		.make = (make_fn), .drop = (drop_fn)                                               \
	}

/* The calling thread's object, made now if it has none; NULL when it cannot
 * be made (it is tried again at the next call). */
void *tlocal_get(struct tlocal *t);

#endif
