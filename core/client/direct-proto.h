/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The direct-mapping protocol between libdcdfs-map (the client) and the
 * dcdfs daemon (fs/direct.c).
 *
 * The daemon of a mount listens on the abstract unix socket
 * "dcdfs-direct-MAJ:MIN" (SOCK_SEQPACKET), named after the mount's device
 * number.  A client sends a MAP request with its open descriptor of the file
 * attached (SCM_RIGHTS): the descriptor is the credential, so only a process
 * holding the file open can map it, with its open mode.  The reply carries
 * the pieces of memory covering the range, DIRECT_MAX_FDS per message, each
 * message with their descriptors.  A grant pins the allocation until an UNMAP
 * for it, or until the connection closes (the process exited).
 */
#ifndef DCDFS_DIRECT_PROTO_H
#define DCDFS_DIRECT_PROTO_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define DIRECT_MAGIC 0x78646364u	/* "dcdx" */
#define DIRECT_VERSION 1
#define DIRECT_SOCKET_FMT "dcdfs-direct-%u:%u"
#define DIRECT_SOCKET_LEN 48
#define DIRECT_MAX_FDS 32
/* Grants one connection may hold. */
#define DIRECT_MAX_GRANTS 65536

enum direct_op {
	DIRECT_MAP = 1,
	DIRECT_UNMAP = 2,
};

/**
 * struct direct_req - a client's request
 * @op: enum direct_op
 * @grant: UNMAP: the grant to end
 * @offset: MAP: start of the range, a multiple of the page size
 * @length: MAP: its length, a multiple of the page size
 * @prot: MAP: PROT_READ, optionally with PROT_WRITE
 */
struct direct_req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t grant;
	uint64_t offset;
	uint64_t length;
	uint32_t prot;
	uint32_t reserved;
};

/**
 * struct direct_reply - the daemon's answer
 * @error: 0 or a negative errno
 * @grant: MAP: the grant's id on this connection
 * @nr_pieces: MAP: how many struct direct_piece follow
 */
struct direct_reply {
	uint32_t magic;
	int32_t error;
	uint64_t grant;
	uint32_t nr_pieces;
	uint32_t reserved;
};

/* One piece of the range: map @length bytes of its descriptor at @fd_offset. */
struct direct_piece {
	uint64_t file_offset;
	uint64_t fd_offset;
	uint64_t length;
};

/* Room for the control data of a message with DIRECT_MAX_FDS descriptors. */
#define DIRECT_CMSG_SPACE CMSG_SPACE(sizeof(int) * DIRECT_MAX_FDS)

/*
 * direct_attach_fds() - pass @nr descriptors (at most DIRECT_MAX_FDS) with
 * @msg, in @cbuf (DIRECT_CMSG_SPACE bytes, zeroed); nothing if @nr is 0.
 */
static inline void direct_attach_fds(struct msghdr *msg, char *cbuf,
				     const int *fds, size_t nr)
{
	struct cmsghdr *cm;

	if (!nr)
		return;
	msg->msg_control = cbuf;
	msg->msg_controllen = CMSG_SPACE(sizeof(int) * nr);
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nr);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nr);
}

#endif /* DCDFS_DIRECT_PROTO_H */
