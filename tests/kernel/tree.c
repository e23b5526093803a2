// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: the tree of nodes the file system serves
 *
 * Every node is in its parent's list of children and in emu->inos, a
 * tsearch(3) tree keyed on the inode number.  Inode numbers come from a
 * counter that starts at FUSE_ROOT_ID and are never reused, so lookups
 * need no generation numbers and forgets nothing.  All of it under
 * emu->lock.
 */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

static int ino_cmp(const void *a, const void *b)
{
	const struct node *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

struct node *node_new(struct emu *emu, struct node *parent, const char *name,
		      enum node_type type, mode_t perm)
{
	struct node *node = xmalloc(sizeof(*node));

	node->ino = emu->next_ino++;
	node->name = xstrdup(name);
	node->type = type;
	node->perm = perm;
	node->parent = parent;
	if (parent) {
		if (parent->last)
			parent->last->next = node;
		else
			parent->child = node;
		parent->last = node;
	}
	if (!tsearch(node, &emu->inos, ino_cmp)) {
		fprintf(stderr, EMU_NAME ": out of memory\n");
		abort();
	}
	return node;
}

struct node *node_dir(struct emu *emu, struct node *parent, const char *name)
{
	return node_new(emu, parent, name, NODE_DIR, 0755);
}

struct node *node_attr(struct emu *emu, struct node *parent, const char *name,
		       mode_t perm, const struct attr_ops *ops, void *obj)
{
	struct node *node = node_new(emu, parent, name, NODE_ATTR, perm);

	node->ops = ops;
	node->obj = obj;
	return node;
}

/* The directory at PATH (relative to the root), made where missing. */
struct node *node_path(struct emu *emu, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	struct node *dir = emu->root, *next;

	for (char *name = strtok_r(copy, "/", &save); name;
	     name = strtok_r(NULL, "/", &save)) {
		next = node_child(dir, name);
		dir = next ? next : node_dir(emu, dir, name);
	}
	free(copy);
	return dir;
}

struct node *node_find(struct emu *emu, uint64_t ino)
{
	struct node key = { .ino = ino };
	void *p = tfind(&key, &emu->inos, ino_cmp);

	return p ? *(struct node **)p : NULL;
}

struct node *node_child(const struct node *dir, const char *name)
{
	for (struct node *c = dir->child; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void node_unlink(struct node *node)
{
	struct node *parent = node->parent, *prev = NULL;

	if (!parent)
		return;
	for (struct node *c = parent->child; c != node; c = c->next)
		prev = c;
	if (prev)
		prev->next = node->next;
	else
		parent->child = node->next;
	if (parent->last == node)
		parent->last = prev;
}

static void node_free(struct emu *emu, struct node *node)
{
	while (node->child) {
		struct node *c = node->child;

		node->child = c->next;
		node_free(emu, c);
	}
	tdelete(node, &emu->inos, ino_cmp);
	free(node->name);
	free(node);
}

/* Remove NODE and everything under it; their inode numbers find nothing. */
void node_remove(struct emu *emu, struct node *node)
{
	if (!node)
		return;
	node_unlink(node);
	node_free(emu, node);
}

void tree_init(struct emu *emu)
{
	emu->next_ino = FUSE_ROOT_ID;
	emu->root = node_dir(emu, NULL, "");
}
