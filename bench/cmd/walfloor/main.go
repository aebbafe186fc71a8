// Command walfloor measures what this machine's disk allows a write-ahead log: a loop
// that appends one frame and fdatasyncs it, as the bolt store's committer does per
// commit, with none of banfleet's code. It is the floor that a durable master's
// commit cycle is compared with in docs/benchmarks.md, and it is run by hand, never by
// tests:
//
//	GOMAXPROCS=2 go run ./cmd/walfloor -modes grow,rotate,zero,falloc -checkpoint 100ms
//
// Modes (how the log file is laid out; each window uses a new file in a temp dir on
// the same file system as os.TempDir):
//
//	grow    one file opened O_APPEND: every append grows it, so every fdatasync also
//	        commits the new size and block allocation (ext4: a journal commit)
//	rotate  grow, but a new file every -rotate (created and its directory synced by
//	        another goroutine, as each checkpoint starts a new segment)
//	zero    a file of -segment bytes written with zeros and fsynced before the window:
//	        appends overwrite allocated, written blocks, so fdatasync writes data only
//	falloc  a file of -segment bytes fallocate'd: its extents are allocated but
//	        unwritten, so the first write to each still converts it in the journal
//
// -checkpoint adds a second writer like the store's checkpointer: every interval it
// writes -ckbytes of 4 KiB pages at random offsets of a 32 MiB file and fdatasyncs,
// then one more page and fdatasyncs again (bbolt's data pages, then its meta page).
// -burn adds goroutines that keep every P busy, as the rest of a master does: the
// committer's goroutine then waits for a P after each fdatasync returns.
//
// Output, per mode: fdatasyncs per second, and the latency of append+fdatasync
// (mean, p50, p99), medians of -repeat windows run interleaved.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	modes := flag.String("modes", "grow,rotate,zero,falloc", "comma list of log layouts: grow, rotate, zero, falloc")
	frame := flag.Int("frame", 8<<10, "bytes appended per commit")
	segment := flag.Int64("segment", 64<<20, "preallocated file size (zero, falloc)")
	rotate := flag.Duration("rotate", 100*time.Millisecond, "new file interval (rotate)")
	ck := flag.Duration("checkpoint", 0, "concurrent checkpoint writer interval (0: none)")
	ckBytes := flag.Int("ckbytes", 256<<10, "bytes a checkpoint writes before its first sync")
	burn := flag.Int("burn", 0, "goroutines spinning on the CPU meanwhile")
	dur := flag.Duration("duration", 3*time.Second, "measured window")
	repeat := flag.Int("repeat", 3, "windows per mode, interleaved")
	flag.Parse()
	cfg := config{frame: *frame, segment: *segment, rotate: *rotate, ck: *ck, ckBytes: *ckBytes, burn: *burn, dur: *dur}
	list := strings.Split(*modes, ",")
	results := make(map[string][]result)
	for r := range *repeat {
		for _, m := range list {
			res, err := window(m, cfg)
			if err != nil {
				fmt.Fprintln(os.Stderr, "walfloor:", err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "repeat %d %-7s %8.0f syncs/s  mean %6.0f µs  p50 %6.0f µs  p99 %6.0f µs  (checkpoints %d)\n",
				r+1, m, res.rate, res.mean, res.p50, res.p99, res.cks)
			results[m] = append(results[m], res)
		}
	}
	fmt.Printf("frame %d B, checkpoint %v (%d KiB), burn %d, GOMAXPROCS %s, %v × %d, medians\n\n",
		cfg.frame, cfg.ck, cfg.ckBytes>>10, cfg.burn, os.Getenv("GOMAXPROCS"), cfg.dur, *repeat)
	fmt.Println("| mode | fdatasyncs/s | mean µs | p50 µs | p99 µs |")
	fmt.Println("|---|--:|--:|--:|--:|")
	for _, m := range list {
		rs := results[m]
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", m,
			median(rs, func(r result) float64 { return r.rate }), median(rs, func(r result) float64 { return r.mean }),
			median(rs, func(r result) float64 { return r.p50 }), median(rs, func(r result) float64 { return r.p99 }))
	}
}

type config struct {
	frame   int
	segment int64
	rotate  time.Duration
	ck      time.Duration
	ckBytes int
	burn    int
	dur     time.Duration
}

type result struct {
	rate, mean, p50, p99 float64
	cks                  int64
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// window runs one measured window of mode and removes its files.
func window(mode string, cfg config) (result, error) {
	dir, err := os.MkdirTemp("", "walfloor-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	log, err := newLog(mode, dir, cfg)
	if err != nil {
		return result{}, err
	}
	defer log.close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var cks atomic.Int64
	var bgErr atomic.Value
	if cfg.ck > 0 {
		ckf, err := os.OpenFile(filepath.Join(dir, "checkpoint"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return result{}, err
		}
		defer ckf.Close()
		if err := ckf.Truncate(32 << 20); err != nil {
			return result{}, err
		}
		wg.Go(func() {
			if err := checkpointer(ckf, cfg, stop, &cks); err != nil {
				bgErr.Store(err)
			}
		})
	}
	if mode == "rotate" {
		wg.Go(func() {
			t := time.NewTicker(cfg.rotate)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if err := log.rotate(dir); err != nil {
					bgErr.Store(err)
					return
				}
			}
		})
	}
	for range cfg.burn {
		wg.Go(func() {
			x := 1
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 10000 {
					x = x*31 + i
				}
				_ = x
			}
		})
	}

	buf := make([]byte, cfg.frame)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < cfg.dur {
		t0 := time.Now()
		if err := log.append(buf); err != nil {
			close(stop)
			wg.Wait()
			return result{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err, _ := bgErr.Load().(error); err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return result{
		rate: float64(len(lat)) / elapsed.Seconds(),
		mean: us(sum / time.Duration(len(lat))),
		p50:  us(lat[len(lat)/2]),
		p99:  us(lat[len(lat)*99/100]),
		cks:  cks.Load(),
	}, nil
}

// logFile is the log under test: the file appends go to, and where the next one goes.
type logFile struct {
	mode string
	cfg  config
	mu   sync.Mutex // guards f and off against rotate
	f    *os.File
	off  int64
	n    int
}

func newLog(mode, dir string, cfg config) (*logFile, error) {
	l := &logFile{mode: mode, cfg: cfg}
	f, err := l.create(dir)
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

// create makes the next file of the log, laid out as the mode says, and syncs it and
// its directory.
func (l *logFile) create(dir string) (*os.File, error) {
	l.n++
	name := filepath.Join(dir, fmt.Sprintf("log.%04d", l.n))
	flags := os.O_CREATE | os.O_EXCL | os.O_WRONLY
	if l.mode == "grow" || l.mode == "rotate" {
		flags |= os.O_APPEND
	}
	f, err := os.OpenFile(name, flags, 0o600)
	if err != nil {
		return nil, err
	}
	switch l.mode {
	case "grow", "rotate":
	case "zero":
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < l.cfg.segment; off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros, off); err != nil {
				f.Close()
				return nil, err
			}
		}
	case "falloc":
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, l.cfg.segment); err != nil {
			f.Close()
			return nil, err
		}
	default:
		f.Close()
		return nil, fmt.Errorf("unknown mode %q", l.mode)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// rotate switches the log to a new file and removes the old one.
func (l *logFile) rotate(dir string) error {
	f, err := l.create(dir)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.off = f, 0
	l.mu.Unlock()
	name := old.Name()
	old.Close()
	return os.Remove(name)
}

// append writes b after the last append and fdatasyncs it.
func (l *logFile) append(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mode == "zero" || l.mode == "falloc" {
		if l.off+int64(len(b)) > l.cfg.segment {
			l.off = 0 // wrap: the figures are per sync, not per file
		}
		if _, err := l.f.WriteAt(b, l.off); err != nil {
			return err
		}
	} else if _, err := l.f.Write(b); err != nil {
		return err
	}
	l.off += int64(len(b))
	return fdatasync(l.f)
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Close()
}

// checkpointer writes like bbolt's commit every cfg.ck: pages, a sync, a meta page,
// a sync.
func checkpointer(f *os.File, cfg config, stop <-chan struct{}, n *atomic.Int64) error {
	page := make([]byte, 4096)
	t := time.NewTicker(cfg.ck)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		for range max(cfg.ckBytes/len(page), 1) {
			if _, err := f.WriteAt(page, int64(rand.IntN(32<<20/4096))*4096); err != nil {
				return err
			}
		}
		if err := fdatasync(f); err != nil {
			return err
		}
		if _, err := f.WriteAt(page, 0); err != nil {
			return err
		}
		if err := fdatasync(f); err != nil {
			return err
		}
		n.Add(1)
	}
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
