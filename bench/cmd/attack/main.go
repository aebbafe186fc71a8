// Command attack measures what a banfleet master process spends under attack:
// zip bombs, forged sizes, retained data, queue leaks, oversized results,
// connection floods, fake liveness, slow links, log floods, many job types and
// lock contention. Each attack gets a fresh cmd/master process (the binary given
// by -master-bin, so the same run can be made against an old and a new build);
// its heap figures come from the runtime's own GC trace, its RSS and CPU time
// from /proc. Everything is on loopback. It is run by hand, never by tests:
//
//	go build -o bench/master-old ./cmd/master           # in the repository root
//	cd bench && go run ./cmd/attack -master-bin ./master-old
//	go run ./cmd/attack -master-bin ./master-new -quick -only zlib-bomb,queue-leak
//
// The markdown table goes to stdout, progress to stderr; -json writes every
// figure. README.md in this directory describes each attack.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// scale says how big the attacks are: full (the figures) or quick (a smoke
// run of about a minute, every count cut down).
type scale struct{ quick bool }

func (s scale) name() string {
	if s.quick {
		return "quick"
	}
	return "full"
}

// n picks the count for this scale.
func (s scale) n(full, quick int) int {
	if s.quick {
		return quick
	}
	return full
}

// d picks the duration for this scale.
func (s scale) d(full, quick time.Duration) time.Duration {
	if s.quick {
		return quick
	}
	return full
}

// dur is the attack's hard time bound (the same at both scales: attacks end
// sooner on their own).
func (s scale) dur(budget time.Duration) time.Duration { return budget }

func main() {
	bin := flag.String("master-bin", "", "cmd/master binary to attack (required)")
	quick := flag.Bool("quick", false, "small counts and short windows (about a minute in all)")
	only := flag.String("only", "", "comma list of attacks to run (default all; see -list)")
	jsonOut := flag.String("json", "", "also write the report as JSON to this file")
	list := flag.Bool("list", false, "list the attacks and exit")
	maxRSS := flag.Int64("max-rss", 10<<30, "kill the master if its RSS passes this many bytes (a safety net)")
	flag.Parse()

	all := catalogue()
	if *list {
		for _, a := range all {
			fmt.Printf("%-18s %s\n", a.name, a.family)
		}
		return
	}
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "attack: -master-bin is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(2)
	}
	selected, skipped, err := selectAttacks(all, *only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(2)
	}
	known, err := masterFlags(abs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer running.killAll()

	sc := scale{quick: *quick}
	rep := &Report{
		Date:     time.Now(),
		Command:  commandLine(),
		Binary:   *bin,
		BinaryID: fileSHA256(abs),
		Machine:  machine(),
		Scale:    sc.name(),
		Skipped:  skipped,
		LoadAvg:  [2]string{loadAvg(), ""},
	}
	t0 := time.Now()
	for _, a := range selected {
		if ctx.Err() != nil {
			rep.Skipped = append(rep.Skipped, a.name+" (interrupted)")
			continue
		}
		fmt.Fprintf(os.Stderr, "attack %-18s ... ", a.name)
		res := execute(ctx, abs, known, a, sc, uint64(*maxRSS))
		fmt.Fprintf(os.Stderr, "%.1f s: %s\n", res.Seconds, firstNonEmpty(res.Error, res.Outcome))
		rep.Results = append(rep.Results, res)
	}
	rep.LoadAvg[1] = loadAvg()
	fmt.Fprintf(os.Stderr, "all attacks: %.0f s\n", time.Since(t0).Seconds())
	writeMarkdown(os.Stdout, rep)
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, rep); err != nil {
			fmt.Fprintln(os.Stderr, "attack:", err)
			os.Exit(1)
		}
	}
}

// selectAttacks keeps the attacks named in only (all when empty), in catalogue order.
func selectAttacks(all []attack, only string) (sel []attack, skipped []string, err error) {
	if only == "" {
		return all, nil, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for _, a := range all {
		if want[a.name] {
			sel = append(sel, a)
			delete(want, a.name)
		} else {
			skipped = append(skipped, a.name)
		}
	}
	if len(want) > 0 {
		var names []string
		for n := range want {
			names = append(names, n)
		}
		return nil, nil, fmt.Errorf("unknown attack(s) %s (see -list)", strings.Join(names, ", "))
	}
	return sel, skipped, nil
}

// masterFlags runs `bin -h` and returns the flag names it lists, so that attacks
// pass only flags this build knows.
func masterFlags(bin string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	known := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "-"); ok {
			known[strings.Fields(name)[0]] = true
		}
	}
	if !known["listen"] || !known["http"] {
		return nil, fmt.Errorf("%s -h lists no -listen/-http: not a banfleet master?", bin)
	}
	return known, nil
}

func commandLine() string {
	args := append([]string{"go run ./cmd/attack"}, os.Args[1:]...)
	return strings.Join(args, " ")
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "?"
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// machine describes this host: cores, CPU model, memory.
func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(v), &kb)
				mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
