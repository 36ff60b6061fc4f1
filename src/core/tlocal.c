/* core/tlocal.h: one object per thread, dropped at thread end. */
#include "core/tlocal.h"

static pthread_mutex_t setup_mu = PTHREAD_MUTEX_INITIALIZER;

void *tlocal_get(struct tlocal *t)
{
	void *p;

	if (!__atomic_load_n(&t->ready, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&setup_mu);
		if (!t->ready && pthread_key_create(&t->key, t->drop) == 0)
			__atomic_store_n(&t->ready, true, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&setup_mu);
		if (!__atomic_load_n(&t->ready, __ATOMIC_ACQUIRE))
			return NULL;
	}
	p = pthread_getspecific(t->key);
	if (!p && (p = t->make()) && pthread_setspecific(t->key, p) != 0) {
		t->drop(p);
		p = NULL;
	}
	return p;
}
