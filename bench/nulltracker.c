/* bench/nulltracker.c (from issue 18; bench/compare builds it with cc -O2 and runs it as "nulltracker PORT").
 * The floor for a UDP tracker on this machine: a blocking single-threaded BEP 15 responder that does
 * no tracking at all. It answers connect with a fixed connection id and announce/scrape with valid
 * empty replies, so a validating load generator counts every answer. CPU per response measured
 * against it is what the kernel and one wake-up cost; a tracker cannot go below it. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put32(unsigned char *p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 26999;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
	unsigned char in[2048], out[2048];
	for (;;) {
		struct sockaddr_in from; socklen_t fl = sizeof from;
		ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
		if (n < 16) continue;
		uint32_t action; memcpy(&action, in + 8, 4); action = ntohl(action);
		size_t len = 0;
		memcpy(out + 4, in + 12, 4); /* transaction id */
		if (action == 0) { put32(out, 0); memcpy(out + 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8); len = 16; }
		else if (action == 1 && n >= 98) { put32(out, 1); put32(out + 8, 1800); put32(out + 12, 0); put32(out + 16, 1); len = 20; }
		else if (action == 2) { size_t h = (n - 16) / 20; put32(out, 2); memset(out + 8, 0, 12 * h); len = 8 + 12 * h; }
		else continue;
		sendto(fd, out, len, 0, (struct sockaddr *)&from, fl);
	}
}
