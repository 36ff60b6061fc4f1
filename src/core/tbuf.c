/* Per-thread scratch buffers; see tbuf.h. */
#include "core/tbuf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

static _Thread_local void *bufs[TBUF_COUNT];
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

/* At a thread's end: its buffers (the key's value is its bufs array). */
static void free_all(void *p)
{
	void **b = p;

	for (int i = 0; i < TBUF_COUNT; i++) {
		free(b[i]);
		b[i] = NULL;
	}
}

static void make_key(void)
{
	key_ok = pthread_key_create(&key, free_all) == 0;
}

void *tbuf(enum tbuf_id id, size_t size)
{
	void *p;

	if ((unsigned)id >= TBUF_COUNT)
		return NULL;
	if (bufs[id])
		return bufs[id];
	pthread_once(&key_once, make_key);
	if (!key_ok || pthread_setspecific(key, bufs) != 0)
		return NULL;
	p = malloc(size);
	bufs[id] = p;
	return p;
}
