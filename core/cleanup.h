/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scope-based cleanup, after the kernel's cleanup.h and systemd's macros.
 *
 * Declare and assign at the point of acquisition; hand ownership out with
 * take_ptr()/take_fd().  A function uses either these or a goto ladder,
 * never both.
 */
#ifndef DCDFS_CLEANUP_H
#define DCDFS_CLEANUP_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		(void) close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		(void) fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Return the pointer and clear the variable, so its cleanup does nothing. */
#define take_ptr(p)                                                            \
	({                                                                     \
		__typeof__(p) __p = (p);                                       \
		(p) = NULL;                                                    \
		__p;                                                           \
	})

#define take_fd(fd)                                                            \
	({                                                                     \
		int __fd = (fd);                                               \
		(fd) = -1;                                                     \
		__fd;                                                          \
	})

/* Mutex guards: guard(mutex)(&lock) holds the lock to the end of the scope. */
typedef pthread_mutex_t *guard_mutex_t;

static inline guard_mutex_t guard_mutex_lock(pthread_mutex_t *m)
{
	pthread_mutex_lock(m);
	return m;
}

static inline void guard_mutex_unlock(guard_mutex_t *m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}

#define __GUARD_CAT2(a, b) a##b
#define __GUARD_CAT(a, b) __GUARD_CAT2(a, b)
#define __GUARD_ID(p) __GUARD_CAT(p, __COUNTER__)

#define guard(type)                                                            \
	_cleanup_(guard_##type##_unlock)                                       \
		__attribute__((unused)) guard_##type##_t __GUARD_ID(_g_) =     \
			guard_##type##_lock

#define __scoped_guard(type, v, m)                                             \
	for (_cleanup_(guard_##type##_unlock) guard_##type##_t v =             \
		     guard_##type##_lock(m);                                   \
	     v; guard_##type##_unlock(&v), v = NULL)
#define scoped_guard(type, m) __scoped_guard(type, __GUARD_ID(_sg_), m)

#endif /* DCDFS_CLEANUP_H */
