package engine

import (
	"errors"
	"strings"
	"testing"
)

func TestWriteTableIsAligned(t *testing.T) {
	rs := []Result{
		{Params: Params{Fast: 12, Slow: 200, Kind: KindEMA}, Sharpe: 1.23456, TotalReturn: 1.5, CAGR: 0.5, MaxDrawdown: 0.25, Trades: 140, WinRate: 0.4},
		{Params: Params{Fast: 2, Slow: 10, Kind: KindSMA}, Sharpe: -0.5, TotalReturn: -0.1, Trades: 3, WinRate: 1},
	}
	var sb strings.Builder
	if err := WriteTable(&sb, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header + 2 rows:\n%s", len(lines), sb.String())
	}
	for _, line := range lines[1:] {
		if len(line) != len(lines[0]) {
			t.Errorf("line %q is %d wide, header %d", line, len(line), len(lines[0]))
		}
	}
	for _, want := range []string{"rank", "sharpe", "1.235", "150.00%", "25.00%", "140", "-0.500", "-10.00%", "100.00%"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(lines[1]), "1 ") || !strings.HasPrefix(strings.TrimSpace(lines[2]), "2 ") {
		t.Errorf("rows are not ranked 1, 2:\n%s", sb.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTableReportsWriteErrors(t *testing.T) {
	if err := WriteTable(failingWriter{}, nil); err == nil {
		t.Error("write error was swallowed")
	}
}
