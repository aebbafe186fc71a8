package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Decompression attacks: payloads that cost the master far more to decode than
// they cost to send.

// harnessToken is the token of masters started with one.
const harnessToken = "attack-harness-token"

// zlibBomb: before authenticating, a raw peer sends frames whose zlib Data
// inflates past the 256 MiB limit, while an authenticated probe measures how the
// master serves others.
func zlibBomb() attack {
	return attack{
		name:   "zlib-bomb",
		family: "1. zlib bombs before auth",
		budget: 90 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{token: harnessToken} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			frames := sc.n(12, 2)
			zeros := 300 << 20 // > DefaultMaxInflatedSize (256 MiB)
			z := newZBuilder()
			z.run(0, zeros)
			bomb := frame("fleet.submit", z.finish(), false)
			r.sent("%d frames of %s before any hello, each zlib of %d MiB of zeros, one at a time; then a ping", frames, bytesHuman(int64(len(bomb))), zeros>>20)

			probe, err := newKVProbe(t.addr, t.token)
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			defer probe.close()
			base := &kvProbe{c: probe.c}
			bctx, bcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			base.loop(bctx, 5*time.Millisecond)
			bcancel()

			p, err := dialRaw(t.addr, loopbackSource(0, 1), 5*time.Second)
			if err != nil {
				return err
			}
			defer p.close()
			closed, closedAt := p.watchClose()
			pctx, pcancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); probe.loop(pctx, 20*time.Millisecond) }()

			// Stop and wait: after each bomb, wait until the master's CPU goes idle
			// (it has decoded the bomb) or the connection closes, so that a close can be
			// pinned to a frame.
			t0 := time.Now()
			written, closedAfter := 0, 0
			var writeErr error
			var perBomb []time.Duration
			for i := 0; i < frames && ctx.Err() == nil && closedAfter == 0; i++ {
				if writeErr = p.send(bomb, 30*time.Second); writeErr != nil {
					break
				}
				written++
				b0 := time.Now()
				if waitIdle(ctx, t, closed, 10*time.Second) {
					closedAfter = written
				}
				perBomb = append(perBomb, time.Since(b0))
			}
			if writeErr == nil && closedAfter == 0 {
				// A ping before auth: the old master closes the connection for it, which
				// shows the connection had stayed open through every bomb.
				writeErr = p.send(zframe("ping", []byte("1")), 10*time.Second)
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
				case <-ctx.Done():
				}
			}
			pcancel()
			wg.Wait()

			var closeText string
			select {
			case <-closed:
				if closedAfter > 0 {
					closeText = fmt.Sprintf("closed by the master after bomb %d (%.1f s after the first)", closedAfter, closedAt.Sub(t0).Seconds())
				} else {
					closeText = fmt.Sprintf("open through all %d bombs, closed by the ping that followed (%.1f s after the first bomb)", written, closedAt.Sub(t0).Seconds())
				}
			default:
				closeText = "still open"
			}
			if writeErr != nil {
				closeText += fmt.Sprintf("; write of frame %d failed: %s", written+1, shortErr(writeErr))
			}
			r.outcome("%d/%d bombs written, the master busy ~%s after each; connection %s; probe round trips before: %s; during: %s",
				written, frames, percentile(perBomb, 0.5).Round(10*time.Millisecond), closeText, base.lat.summary(), probe.lat.summary())
			r.note("bomb_frame_bytes", len(bomb))
			r.note("bombs_written", written)
			return nil
		},
	}
}

// s2Length: a peer that negotiated the fast codec sends tiny frames whose s2 block
// header claims ~250 MiB of decoded data, followed by junk.
func s2Length() attack {
	return attack{
		name:   "s2-length",
		family: "2. s2 claimed length",
		budget: 90 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			frames := sc.n(100, 20)
			claimed := 250 << 20
			data := binary.AppendUvarint([]byte{0x01}, uint64(claimed))
			data = append(data, 0xde, 0xad, 0xbe, 0xef)
			f := frame("x", data, false)
			r.sent("hello (s2), then %d frames of %d B whose s2 header claims %d MiB, then an onGetVal", frames, len(f), claimed>>20)

			p, err := dialRaw(t.addr, nil, 5*time.Second)
			if err != nil {
				return err
			}
			defer p.close()
			w, err := p.hello("", true, 5*time.Second)
			if err != nil {
				return fmt.Errorf("hello: %w", err)
			}
			if w.Codec != "s2" {
				r.note("codec", w.Codec)
			}
			t0 := time.Now()
			for i := 0; i < frames; i++ {
				if err := p.send(f, 30*time.Second); err != nil {
					r.outcome("write of frame %d failed after %.1f s: %v", i+1, time.Since(t0).Seconds(), shortErr(err))
					return nil
				}
			}
			_, others, err := p.roundTrip("done", sc.d(80*time.Second, 30*time.Second))
			took := time.Since(t0)
			if err != nil {
				r.outcome("no reply to the onGetVal after the frames (%.1f s): %v", took.Seconds(), shortErr(err))
				return nil
			}
			r.outcome("codec %q; the master answered the onGetVal after the %d frames in %.1f s (%.0f ms per frame); other frames from it: %d",
				w.Codec, frames, took.Seconds(), took.Seconds()*1000/float64(frames), len(others))
			return nil
		},
	}
}

// waitIdle waits until the master's CPU time stops growing (two 50 ms samples in a
// row with at most one clock tick) or closed closes; it reports whether closed did.
func waitIdle(ctx context.Context, t *target, closed <-chan struct{}, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	last, quiet := t.cpuSeconds(), 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-closed:
			return true
		case <-time.After(50 * time.Millisecond):
		}
		now := t.cpuSeconds()
		if now-last <= 1.0/clockTicks {
			quiet++
		} else {
			quiet = 0
		}
		last = now
		if quiet >= 2 {
			break
		}
	}
	select {
	case <-closed:
		return true
	default:
		return false
	}
}

// shortErr trims an error for a table cell: hashes, ids and wait keys elided.
func shortErr(err error) string {
	if err == nil {
		return ""
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() && !strings.Contains(err.Error(), "banio") {
		return "timeout"
	}
	s := noise.ReplaceAllString(err.Error(), "…")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// noise matches the parts of an error that differ between runs.
var noise = regexp.MustCompile(`[0-9a-f]{64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|127\.0\.0\.1:\d+`)
