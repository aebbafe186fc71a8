package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// env is a fake environment.
var env = daemon.MapEnv

func TestParseConfig(t *testing.T) {
	c, err := parseConfig(nil, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Master != "" || c.Workers != defaultWorkers || c.Seed != defaultSeed || c.Bars != defaultBars ||
		c.Top != defaultTop || c.Report != defaultReport || c.InFlight != defaultInFlight || c.Quiet ||
		c.ReconnectBudget != dispatch.DefaultReconnectBudget {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseConfig([]string{"-workers", "3", "-token", "flag"}, env("BANFLEET_WORKERS", "5", "BANFLEET_TOKEN", "env", "BANFLEET_MASTER", "m:1"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 3 || c.Conn.Token != "flag" || c.Master != "m:1" {
		t.Errorf("flag > env > default: workers %d token %q master %q", c.Workers, c.Conn.Token, c.Master)
	}
	for _, args := range [][]string{{"-workers", "0"}, {"-inflight", "0"}, {"-reconnect-budget", "0"}, {"-top", "-1"}, {"-bars", "1"}, {"extra"}, {"-nope"}} {
		if _, err := parseConfig(args, env(), &bytes.Buffer{}); err == nil {
			t.Errorf("%q must be refused", args)
		}
	}
	if _, err := parseConfig(nil, env("BANFLEET_SEED", "x"), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "BANFLEET_SEED") {
		t.Errorf("a bad environment value must be refused by name, got %v", err)
	}
}

// TestRunEmbedded runs the program as `go run ./examples/backtest` would, on fewer bars.
func TestRunEmbedded(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	reportFile := filepath.Join(dir, "report.html")
	journal := filepath.Join(dir, "journal")
	var stdout, stderr bytes.Buffer
	args := []string{"-bars", "300", "-workers", "3", "-report", reportFile, "-journal", journal}
	if code := run(context.Background(), args, env(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"rank  kind", "2638 jobs (0 replayed", "jobs/s", "served by the master: 3 (3 workers)", "best: ", "report: " + reportFile,
		"results: " + filepath.Join(dir, "report.csv"), "results: " + filepath.Join(dir, "report.jsonl")} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "2638/2638 100.0%") {
		t.Errorf("stderr lacks the final progress line:\n%s", &stderr)
	}
	html, err := os.ReadFile(reportFile)
	if err != nil || !bytes.Contains(html, []byte("banfleet backtest report")) || !bytes.Contains(html, []byte("<svg")) {
		t.Fatalf("report: %v, %d bytes", err, len(html))
	}

	// Quiet, with the journal: everything is replayed, no progress, no table.
	stdout.Reset()
	stderr.Reset()
	args = append(args, "-quiet", "-report", "")
	if code := run(context.Background(), args, env(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if out := stdout.String(); !strings.Contains(out, "2638 jobs (2638 replayed") || strings.Contains(out, "rank") || strings.Contains(out, "report:") {
		t.Errorf("quiet rerun:\n%s", out)
	}
	if stderr.Len() != 0 {
		t.Errorf("quiet rerun wrote to stderr:\n%s", &stderr)
	}
}

func TestRunErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-workers", "x"}, env(), &stdout, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if code := run(context.Background(), []string{"-h"}, env(), &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "BANFLEET_MASTER") {
		t.Errorf("-h: exit %d, usage:\n%s", code, &stderr)
	}
	stderr.Reset()
	missing := filepath.Join(t.TempDir(), "missing.csv")
	if code := run(context.Background(), []string{"-data", missing}, env(), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "missing.csv") {
		t.Errorf("missing data file: exit %d, stderr:\n%s", code, &stderr)
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"-master", "127.0.0.1:1", "-aes-key", "zz"}, env(), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "aes-key") {
		t.Errorf("bad AES key: exit %d, stderr:\n%s", code, &stderr)
	}
	stderr.Reset()
	// Nothing listens on a port just released: the remote mode fails to connect.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if code := run(context.Background(), []string{"-master", addr}, env(), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "connect to master "+addr) {
		t.Errorf("unreachable master: exit %d, stderr:\n%s", code, &stderr)
	}
}
