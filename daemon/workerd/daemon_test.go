package workerd

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestDaemonFlagsAndTypes(t *testing.T) {
	d := New("myworker")
	var model string
	d.Flags(func(fs *flag.FlagSet) { fs.StringVar(&model, "model", "small", "which model to load") })
	d.Handle("a", nil)
	d.Handle("b", nil)
	d.Handle("a", nil) // replaces, keeps its place
	if got := d.Types(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Types = %q", got)
	}
	cfg, err := d.Parse([]string{"-concurrency", "3"}, env("BANFLEET_MODEL", "large"), io.Discard)
	if err != nil || model != "large" || cfg.Concurrency != 3 {
		t.Errorf("own flag from the environment: %q, concurrency %d, %v", model, cfg.Concurrency, err)
	}
	var stderr bytes.Buffer
	if code := d.Run(context.Background(), []string{"-h"}, env(), io.Discard, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "usage: myworker [flags]") || !strings.Contains(stderr.String(), "BANFLEET_MODEL") {
		t.Errorf("-h: exit %d:\n%s", code, &stderr)
	}
}

func TestServeWithoutHandlers(t *testing.T) {
	d := New("empty")
	cfg, err := d.Parse(nil, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Serve(context.Background(), cfg, io.Discard, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "Handle") {
		t.Errorf("Serve with no job type: %v, want an error that says to register handlers", err)
	}
}
