/*
 * Intrusive lists, for the structures that link their elements through
 * fields of their own (connections, handlers, sessions, waiters,
 * forwards): the operations written the same way everywhere, as
 * macros over the names of the fields, so each structure keeps its own
 * field names and element type. None allocates or frees.
 */
#ifndef RD_UTIL_LIST_H
#define RD_UTIL_LIST_H

#include <stddef.h>

/* Unlink element `n` from the doubly linked list whose first element is
 * `head`, where each element's fields `prev` and `next` point at its
 * neighbours (NULL at the ends). `n`'s own fields are left as they were;
 * a list that also keeps its last element updates that itself (it is
 * `n`->prev when `n`->next is NULL). Precondition: `n` is in the list. */
#define RD_LIST_UNLINK(head, n, prev, next)                                              \
	do {                                                                             \
		if ((n)->prev != NULL)                                                   \
			(n)->prev->next = (n)->next;                                     \
		else                                                                     \
			(head) = (n)->next;                                              \
		if ((n)->next != NULL)                                                   \
			(n)->next->prev = (n)->prev;                                     \
	} while (0)

/* Append element `n` to the queue that runs from `head` to `tail`
 * through each element's field `next` (both NULL when empty); `n`->next
 * becomes NULL. A doubly linked queue sets `n`'s back link itself. */
#define RD_QUEUE_PUSH(head, tail, n, next)                                               \
	do {                                                                             \
		(n)->next = NULL;                                                        \
		if ((tail) != NULL)                                                      \
			(tail)->next = (n);                                              \
		else                                                                     \
			(head) = (n);                                                    \
		(tail) = (n);                                                            \
	} while (0)

/* Remove element `n` of type `type` from the queue that runs from `head`
 * to `tail` through each element's field `next`, walking it whole so that
 * `tail` is the last element left (NULL when none is). Removing an
 * element that is not in the queue changes nothing. */
#define RD_QUEUE_REMOVE(type, head, tail, n, next)                                       \
	do {                                                                             \
		type **rd__pp = &(head);                                                 \
		(tail) = NULL;                                                           \
		while (*rd__pp != NULL) {                                                \
			if (*rd__pp == (n)) {                                            \
				*rd__pp = (n)->next;                                     \
			} else {                                                         \
				(tail) = *rd__pp;                                        \
				rd__pp = &(*rd__pp)->next;                               \
			}                                                                \
		}                                                                        \
	} while (0)

#endif
