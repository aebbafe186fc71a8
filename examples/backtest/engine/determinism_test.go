package engine

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"strings"
	"testing"
)

// determinismGrid is a small sweep covering both kinds, short and long
// periods and non-zero costs.
func determinismGrid() []Params {
	return Grid{
		Fast:  []int{2, 5, 13, 40},
		Slow:  []int{10, 30, 100, 200},
		Kinds: []string{KindSMA, KindEMA},
		// Odd costs exercise the fee arithmetic.
		FeeBps: 3.7, SlippageBps: 1.3,
	}.Params()
}

func TestRunIsDeterministic(t *testing.T) {
	bars := Synthetic(3000, 42)
	for _, p := range determinismGrid() {
		first, err := RunWithEquity(bars, p)
		if err != nil {
			t.Fatal(err)
		}
		second, err := RunWithEquity(Synthetic(3000, 42), p)
		if err != nil {
			t.Fatal(err)
		}
		if !first.Equal(second) {
			t.Fatalf("%v: two runs differ:\n%+v\n%+v", p, first, second)
		}
	}
}

func TestRunAllMatchesSequentialRuns(t *testing.T) {
	bars := Synthetic(3000, 42)
	params := determinismGrid()
	for _, workers := range []int{1, 3, 16, 0} {
		results, err := RunAll(bars, params, workers)
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != len(params) {
			t.Fatalf("workers=%d: %d results for %d params", workers, len(results), len(params))
		}
		for i, p := range params {
			want, err := Run(bars, p)
			if err != nil {
				t.Fatal(err)
			}
			if !results[i].Equal(want) {
				t.Fatalf("workers=%d: result %d differs from a sequential run", workers, i)
			}
		}
	}
}

func TestRunAllReportsFirstError(t *testing.T) {
	params := []Params{{Fast: 2, Slow: 5, Kind: KindSMA}, {Fast: 9, Slow: 5, Kind: KindSMA}, {Fast: 1, Slow: 2, Kind: "bad"}}
	if _, err := RunAll(Synthetic(100, 1), params, 3); err == nil || !strings.Contains(err.Error(), "fast period 9") {
		t.Errorf("RunAll error = %v, want the error of params[1]", err)
	}
}

func TestResultSurvivesJSONBitForBit(t *testing.T) {
	bars := Synthetic(2000, 9)
	for _, p := range determinismGrid() {
		res, err := RunWithEquity(bars, p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("%v: marshal: %v", p, err)
		}
		var back Result
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(res) {
			t.Fatalf("%v: JSON round trip changed the result", p)
		}
	}
}

func TestResultEqualIsBitwise(t *testing.T) {
	a := Result{Params: Params{Fast: 1, Slow: 2, Kind: KindSMA}, Sharpe: 1, Equity: []float64{1, 2}}
	b := a
	b.Equity = []float64{1, 2}
	if !a.Equal(b) {
		t.Fatal("identical results compare unequal")
	}
	b.Sharpe = math.Nextafter(1, 2)
	if a.Equal(b) {
		t.Error("results one ulp apart compare equal")
	}
	b = a
	b.Equity = []float64{1, math.Nextafter(2, 3)}
	if a.Equal(b) {
		t.Error("equity curves one ulp apart compare equal")
	}
	b = a
	b.TotalReturn = math.Copysign(0, -1)
	if a.Equal(b) {
		t.Error("0 and -0 compare equal")
	}
}

// TestGoldenHashes pins the exact bits of Synthetic and Run. The constants
// were produced on linux/amd64; the test must pass unchanged on every
// platform and with GOAMD64=v3 (where the compiler may use FMA), which is
// what proves results from heterogeneous workers can be compared with ==.
// If an intentional change to the engine alters them, update the
// constants and say so in the commit.
func TestGoldenHashes(t *testing.T) {
	bars := Synthetic(3000, 42)
	barsHash := fnv.New64a()
	barsHash.Write(EncodeBars(bars))
	const wantBarsHash = 0x194a1551c3087dc5
	if got := barsHash.Sum64(); got != wantBarsHash {
		t.Errorf("Synthetic(3000, 42) hash = %#x, want %#x", got, uint64(wantBarsHash))
	}

	results, err := RunAll(bars, determinismGrid(), 0)
	if err != nil {
		t.Fatal(err)
	}
	resultsHash := fnv.New64a()
	for _, r := range results {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		resultsHash.Write(data)
	}
	const wantResultsHash = 0x228fb74405d9a4a4
	if got := resultsHash.Sum64(); got != wantResultsHash {
		t.Errorf("results hash = %#x, want %#x", got, uint64(wantResultsHash))
	}
}
