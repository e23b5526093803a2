// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * reaper - run a command that daemonizes, and report how its daemon ends
 *
 *   reaper CMD [ARG...]
 *
 * Becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so that what
 * CMD leaves running when it exits becomes reaper's child instead of
 * init's.  Prints "command exited N" when CMD exits, then "daemon exited N"
 * (or "daemon killed by SIGNAME") for each process it left behind, as each
 * ends; exits once none is left.  A test finds the daemon's pid with
 * "pgrep -P REAPER_PID" once the command has exited.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *who, int status)
{
	if (WIFEXITED(status))
		printf("%s exited %d\n", who, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf("%s killed by SIG%s\n", who,
		       sigabbrev_np(WTERMSIG(status)) ?: "?");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	pid_t cmd, pid;
	int status;

	if (argc < 2) {
		fprintf(stderr, "usage: reaper CMD [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("reaper: prctl");
		return 1;
	}
	cmd = fork();
	if (cmd < 0) {
		perror("reaper: fork");
		return 1;
	}
	if (cmd == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "reaper: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	while ((pid = wait(&status)) > 0)
		report(pid == cmd ? "command" : "daemon", status);
	return 0;
}
