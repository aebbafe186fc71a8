package engine

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"testing"
)

func TestWriteResultsCSV(t *testing.T) {
	bars := Synthetic(800, 9)
	results, _ := sweepForReport(t, bars)
	var buf bytes.Buffer
	if err := WriteResultsCSV(&buf, results); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(results)+1 || len(rows[0]) != len(ResultsCSVHeader) || rows[0][0] != "rank" {
		t.Fatalf("%d rows, header %q", len(rows), rows[0])
	}
	top := TopN(results, 1)[0]
	seenRanks := map[string]bool{}
	for i, row := range rows[1:] {
		r := results[i]
		sharpe, _ := strconv.ParseFloat(row[6], 64)
		ret, _ := strconv.ParseFloat(row[7], 64)
		if row[1] != r.Params.Kind || row[2] != strconv.Itoa(r.Params.Fast) || row[3] != strconv.Itoa(r.Params.Slow) ||
			sharpe != r.Sharpe || ret != r.TotalReturn || row[10] != strconv.Itoa(r.Trades) {
			t.Errorf("row %d %q does not hold result %+v exactly", i, row, r)
		}
		if r.Params == top.Params && row[0] != "1" {
			t.Errorf("the best set has rank %s", row[0])
		}
		seenRanks[row[0]] = true
	}
	if len(seenRanks) != len(results) {
		t.Errorf("ranks repeat: %d distinct of %d", len(seenRanks), len(results))
	}
}

func TestWriteResultsJSONL(t *testing.T) {
	bars := Synthetic(800, 9)
	results, best := sweepForReport(t, bars)
	results[0].Equity = best.Equity // never exported
	var buf bytes.Buffer
	if err := WriteResultsJSONL(&buf, results); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`"equity"`)) {
		t.Error("the export carries an equity curve")
	}
	sc := bufio.NewScanner(&buf)
	i := 0
	for ; sc.Scan(); i++ {
		var line struct {
			Rank int `json:"rank"`
			Result
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want := results[i]
		want.Equity = nil
		if !line.Result.Equal(want) || line.Rank < 1 || line.Rank > len(results) {
			t.Errorf("line %d: %+v, want %+v", i+1, line, want)
		}
	}
	if i != len(results) {
		t.Errorf("%d lines, want %d", i, len(results))
	}
}
