// Command bench compares banfleet's transport with its peers (raw TCP,
// net/rpc, gRPC, NATS) on request/response throughput and latency over
// loopback, with closed-loop callers. Run it from this directory:
//
//	go run . -duration 2s -warmup 500ms -repeat 3 -json out.json
//
// See README.md for what each system measures and how to read the ratios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Quick-mode defaults, for smoke runs; explicit flags still win.
const (
	quickDuration = 150 * time.Millisecond
	quickWarmup   = 50 * time.Millisecond
	quickRepeat   = 1
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses args, runs the benchmark and writes the report; it returns the
// process exit code: 0 when every selected case ran, 1 when one failed or
// the run was interrupted, 2 for bad flags.
func run(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	systems := fs.String("systems", "all", "comma separated systems to run: "+strings.Join(entryNames(), ","))
	callers := fs.String("callers", "1,16,64", "comma separated numbers of concurrent closed-loop callers")
	sizes := fs.String("sizes", "64,65536", "comma separated payload sizes in bytes")
	duration := fs.Duration("duration", 3*time.Second, "measured window per repeat")
	warmup := fs.Duration("warmup", time.Second, "warm-up before each measured window")
	repeat := fs.Int("repeat", 3, "measured windows per system and case (median reported)")
	randomPayload := fs.Bool("random-payload", false, "random (incompressible) payloads instead of a short repeating pattern")
	jsonPath := fs.String("json", "", "also write the report with every raw repeat to this JSON file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run to this file")
	quick := fs.Bool("quick", false, fmt.Sprintf("smoke run: -duration %v -warmup %v -repeat %d unless given",
		quickDuration, quickWarmup, quickRepeat))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			*duration = quickDuration
		}
		if !set["warmup"] {
			*warmup = quickWarmup
		}
		if !set["repeat"] {
			*repeat = quickRepeat
		}
	}

	cfg := Config{Duration: *duration, Warmup: *warmup, Repeat: *repeat, RandomPayload: *randomPayload, Log: os.Stderr}
	var err error
	if cfg.Systems, err = selectSystems(*systems); err == nil {
		if cfg.Callers, err = parseInts("-callers", *callers); err == nil {
			cfg.Sizes, err = parseInts("-sizes", *sizes)
		}
	}
	if err == nil {
		err = cfg.validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}

	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}
	defer func() {
		if err := stopProfiles(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host := hostInfo()
	fmt.Fprintf(os.Stderr, "bench: GOMAXPROCS=%d, %s, %s\n", host.GOMAXPROCS, host.CPUModel, host.GoVersion)
	results, runErr := Run(ctx, cfg)
	rep := newReport(host, cfg, results)
	rep.Interrupted = runErr != nil
	writeMarkdown(os.Stdout, rep)

	code := 0
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", runErr)
		code = 1
	}
	for _, r := range results {
		if r.Error != "" {
			code = 1
		}
	}
	if *jsonPath != "" {
		if err := writeJSON(*jsonPath, rep); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			code = 1
		}
	}
	return code
}

// parseInts parses a comma separated list of positive integers.
func parseInts(flagName, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flagName, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New(flagName + ": empty list")
	}
	return out, nil
}
