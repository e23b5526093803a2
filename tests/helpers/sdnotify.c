// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sdnotify - stand in for systemd's notification socket
 *
 *   sdnotify SOCKET SECONDS
 *
 * Binds a datagram socket at SOCKET (a path), prints "listening", then
 * prints each line of each datagram it receives, as systemd would read
 * them (READY=1, MAINPID=N, ...), until one holds READY=1 or SECONDS pass.
 * Exits 0 once READY=1 came, 1 otherwise.  A test starts it, waits for
 * "listening", and runs a daemon with NOTIFY_SOCKET=SOCKET.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	struct pollfd pfd;
	int fd, ms;
	ssize_t n;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: sdnotify SOCKET SECONDS\n");
		return 2;
	}
	ms = atoi(argv[2]) * 1000;
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("sdnotify: cannot bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (poll(&pfd, 1, ms) == 1) {
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			break;
		buf[n] = '\0';
		fputs(buf, stdout);
		if (n && buf[n - 1] != '\n')
			putchar('\n');
		fflush(stdout);
		if (strstr(buf, "READY=1"))
			return 0;
	}
	return 1;
}
