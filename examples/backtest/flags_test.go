package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestGridFlagsDefault: no flag is the sweep the example always ran.
func TestGridFlagsDefault(t *testing.T) {
	c, err := parseConfig(nil, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Grid, engine.DefaultGrid()) || len(c.Grid.Params()) != 2638 {
		t.Errorf("default grid %+v, want engine.DefaultGrid()", c.Grid)
	}
}

func TestGridFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want engine.Grid
	}{
		{[]string{"-fast", "5:20:5", "-slow", "30:90:30"},
			engine.Grid{Fast: []int{5, 10, 15, 20}, Slow: []int{30, 60, 90}, Kinds: []string{"sma", "ema"}, FeeBps: 4, SlippageBps: 2}},
		{[]string{"-fast", "3:5", "-slow", "8,13, 21", "-kinds", "EMA", "-fee-bps", "1.5", "-slippage-bps", "0"},
			engine.Grid{Fast: []int{3, 4, 5}, Slow: []int{8, 13, 21}, Kinds: []string{"ema"}, FeeBps: 1.5, SlippageBps: 0}},
		{[]string{"-fast", "12", "-slow", "26", "-kinds", "ema,sma"},
			engine.Grid{Fast: []int{12}, Slow: []int{26}, Kinds: []string{"ema", "sma"}, FeeBps: 4, SlippageBps: 2}},
		{[]string{"-fast", "7:7"}, // a one-value range; -slow's default
			engine.Grid{Fast: []int{7}, Slow: engine.DefaultGrid().Slow, Kinds: []string{"sma", "ema"}, FeeBps: 4, SlippageBps: 2}},
	} {
		c, err := parseConfig(tc.args, env(), &bytes.Buffer{})
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(c.Grid, tc.want) {
			t.Errorf("%q: grid %+v, want %+v", tc.args, c.Grid, tc.want)
		}
	}
	// The environment sets them too, and a flag wins over it.
	c, err := parseConfig([]string{"-kinds", "sma"}, env("BANFLEET_FAST", "2:4", "BANFLEET_KINDS", "ema", "BANFLEET_FEE_BPS", "10"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Grid.Fast, []int{2, 3, 4}) || !reflect.DeepEqual(c.Grid.Kinds, []string{"sma"}) || c.Grid.FeeBps != 10 {
		t.Errorf("from the environment: %+v", c.Grid)
	}
}

func TestGridFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-fast", ""}, "empty: want FROM:TO[:STEP]"},
		{[]string{"-fast", "2:60:0"}, "the step must be at least 1"},
		{[]string{"-fast", "60:2"}, "FROM 60 is above TO 2"},
		{[]string{"-fast", "0:10"}, "periods must lie in 1..100000 bars"},
		{[]string{"-fast", "2:200000"}, "periods must lie in 1..100000"},
		{[]string{"-fast", "1:20000"}, "20000 periods, more than 10000; use a larger step"},
		{[]string{"-fast", "1:2:3:4"}, "want FROM:TO or FROM:TO:STEP"},
		{[]string{"-fast", "a:b"}, `"a" is not a whole number`},
		{[]string{"-slow", "10,x"}, `"x" is not a whole number`},
		{[]string{"-slow", "10,10"}, "period 10 is listed twice"},
		{[]string{"-slow", "-5"}, "period -5 is outside 1..100000"},
		{[]string{"-kinds", "wma"}, `unknown kind "wma"; want sma, ema or both`},
		{[]string{"-kinds", "sma,sma"}, "kind sma is listed twice"},
		{[]string{"-fee-bps", "-1"}, "-fee-bps must be a non-negative number"},
		{[]string{"-slippage-bps", "NaN"}, "-slippage-bps must be a non-negative number"},
		{[]string{"-fee-bps", "9000", "-slippage-bps", "1000"}, "must be below 10000"},
		{[]string{"-fast", "50:60", "-slow", "10:40:10"}, "no parameter set of -fast 50:60:1 and -slow 10:40:10 has a fast period below the slow one"},
		{[]string{"-fast", "1:10000", "-slow", "1:30"}, "more than 200000; use larger steps"},
	} {
		_, err := parseConfig(tc.args, env(), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

func TestExportPaths(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		env        []string
		csv, jsonl string
	}{
		{nil, nil, "backtest-report.csv", "backtest-report.jsonl"},
		{[]string{"-report", "out/r.html"}, nil, "out/r.csv", "out/r.jsonl"},
		{[]string{"-report", "plain"}, nil, "plain.csv", "plain.jsonl"},
		{[]string{"-report", ""}, nil, "", ""},
		{[]string{"-report", "", "-csv", "all.csv"}, nil, "all.csv", ""},
		{[]string{"-csv", "", "-jsonl", "x.jsonl"}, nil, "", "x.jsonl"},
		{nil, []string{"BANFLEET_JSONL", ""}, "backtest-report.csv", ""},
	} {
		c, err := parseConfig(tc.args, env(tc.env...), &bytes.Buffer{})
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if c.CSV != tc.csv || c.JSONL != tc.jsonl {
			t.Errorf("%q %q: -csv %q -jsonl %q, want %q %q", tc.args, tc.env, c.CSV, c.JSONL, tc.csv, tc.jsonl)
		}
	}
	for _, args := range [][]string{{"-report", "r.csv"}, {"-csv", "x", "-jsonl", "x"}, {"-csv", "backtest-report.html"}} {
		if _, err := parseConfig(args, env(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "give them different files") {
			t.Errorf("%q: error %v, want a refusal of one file for two outputs", args, err)
		}
	}
}

// TestRunOwnDataAndGrid runs the template as a quant would first: their bars,
// their grid, their costs; then checks every output.
func TestRunOwnDataAndGrid(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	reportFile := filepath.Join(dir, "mine.html")
	args := []string{"-data", filepath.Join("testdata", "bars.csv"), "-fast", "3:9:3", "-slow", "20,40", "-kinds", "ema",
		"-fee-bps", "1", "-slippage-bps", "0.5", "-report", reportFile, "-top", "3"}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, env(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"backtesting 6 parameter sets over 400 bars from testdata/bars.csv", "6 jobs (0 replayed",
		"results: " + filepath.Join(dir, "mine.csv"), "results: " + filepath.Join(dir, "mine.jsonl"), "report: " + reportFile} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	html, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"fast 3:9:3 (3), slow 20,40 (2), kinds ema, fee 1 bps, slippage 0.5 bps per side, 6 valid sets",
		"400 bars from testdata/bars.csv, 2020-01-01 00:00 UTC to 2020-01-17 15:00 UTC",
		"<th>Fleet</th><td>2 embedded workers</td>",
		`href="mine.csv"`, `href="mine.jsonl"`, `class="best-cell"`, `class="hold-path"`,
	} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	f, err := os.Open(filepath.Join(dir, "mine.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 7 || rows[1][1] != "ema" || rows[1][2] != "3" || rows[1][3] != "20" || rows[1][4] != "1" || rows[1][5] != "0.5" {
		t.Errorf("CSV export: %v, %q", err, rows)
	}
	jsonl, err := os.ReadFile(filepath.Join(dir, "mine.jsonl"))
	if err != nil || bytes.Count(jsonl, []byte("\n")) != 6 {
		t.Errorf("JSONL export: %v, %d lines", err, bytes.Count(jsonl, []byte("\n")))
	}
}

func TestRunBadData(t *testing.T) {
	var stdout, stderr bytes.Buffer
	bad := filepath.Join("testdata", "bad_bars.csv")
	if code := run(context.Background(), []string{"-data", bad, "-report", ""}, env(), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), bad+": csv line 4: low 2 is above high 0.5") {
		t.Errorf("bad data: exit %d, stderr:\n%s", code, &stderr)
	}
}
