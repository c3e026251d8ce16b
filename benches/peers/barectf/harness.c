/* barectf side of the peer comparison (see run.sh): the workload of the issue with a
 * barectf-generated tracer. Compiled as one translation unit with the generated bctf.c.
 *
 *   harness EVENTS   prints "barectf <ns per event> <bytes per event>"
 *
 * Per 20 events: 9 kernel entries, 9 kernel exits (with the duration since the entry),
 * 2 interrupts, in the order a kernel produces them. The clock is a counter that moves by
 * 37 ticks per read (the same as tracemark's side). The back end is a 64 MiB ring of
 * 4 KiB packets that is overwritten when it wraps (a flight recorder, like tracemark's
 * overwrite mode). */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bctf.h"

#define RING_BYTES (64u << 20)
#define PACKET_BYTES 4096u

static uint64_t counter;
static uint8_t *ring;
static uint32_t next_packet;
static uint64_t bytes_written;
static struct bctf_default_ctx ctx;

static uint64_t clock_get(void *data)
{
	(void)data;
	counter += 37;
	return counter;
}

static int is_backend_full(void *data)
{
	(void)data;
	return 0; /* overwrite: never full */
}

static void open_packet(void *data)
{
	(void)data;
	bctf_packet_set_buf(&ctx, ring + (size_t)next_packet * PACKET_BYTES, PACKET_BYTES);
	next_packet = (next_packet + 1) % (RING_BYTES / PACKET_BYTES);
	bctf_default_open_packet(&ctx);
}

static void close_packet(void *data)
{
	(void)data;
	bctf_default_close_packet(&ctx);
	bytes_written += ctx.parent.content_size / 8;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	struct bctf_platform_callbacks cbs = {
		.default_clock_get_value = clock_get,
		.is_backend_full = is_backend_full,
		.open_packet = open_packet,
		.close_packet = close_packet,
	};
	ring = calloc(RING_BYTES, 1);
	if (!ring)
		return 1;
	/* Touch the ring once so page faults are not measured (tracemark's side does the same). */
	for (size_t i = 0; i < RING_BYTES; i += 4096)
		ring[i] = 1;
	bctf_init(&ctx, ring, PACKET_BYTES, cbs, NULL);
	open_packet(NULL);

	uint64_t rounds = events / 20;
	double start = now_ns();
	for (uint64_t n = 0; n < rounds; n++) {
		for (uint32_t i = 0; i < 9; i++) {
			uint32_t label = (uint32_t)(n * 7 + i) & 0xff;
			bctf_default_trace_kentry(&ctx, 0, 1 + (i & 7), 4, i & 1, label);
			uint64_t entered = counter;
			if (i == 2 || i == 6)
				bctf_default_trace_irq(&ctx, (uint16_t)(27 + (i >> 2)));
			/* The kernel measures its own duration, as tracemark does internally. */
			bctf_default_trace_kexit(&ctx, (uint32_t)(counter + 37 - entered));
		}
	}
	double elapsed = now_ns() - start;
	close_packet(NULL);
	printf("barectf %.3f %.2f\n", elapsed / (double)(rounds * 20),
	       (double)bytes_written / (double)(rounds * 20));
	return 0;
}
