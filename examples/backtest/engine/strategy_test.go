package engine

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParamsValidate(t *testing.T) {
	valid := Params{Fast: 5, Slow: 20, Kind: KindSMA, FeeBps: 1, SlippageBps: 2}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid params rejected: %v", err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(*Params)
		wantErr string
	}{
		{"fast equals slow", func(p *Params) { p.Fast = 20 }, "below slow"},
		{"fast above slow", func(p *Params) { p.Fast = 30 }, "below slow"},
		{"zero fast", func(p *Params) { p.Fast = 0 }, "positive"},
		{"negative slow", func(p *Params) { p.Slow = -1 }, "positive"},
		{"unknown kind", func(p *Params) { p.Kind = "wma" }, "unknown kind"},
		{"empty kind", func(p *Params) { p.Kind = "" }, "unknown kind"},
		{"upper-case kind", func(p *Params) { p.Kind = "SMA" }, "unknown kind"},
		{"negative fee", func(p *Params) { p.FeeBps = -0.5 }, "fee"},
		{"NaN fee", func(p *Params) { p.FeeBps = math.NaN() }, "fee"},
		{"infinite slippage", func(p *Params) { p.SlippageBps = math.Inf(1) }, "slippage"},
		{"negative slippage", func(p *Params) { p.SlippageBps = -1 }, "slippage"},
		{"costs of 100%", func(p *Params) { p.FeeBps, p.SlippageBps = 6000, 4000 }, "below 10000"},
	} {
		p := valid
		tc.edit(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Validate() = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestParamsJSONUsesLowercaseTags(t *testing.T) {
	data, err := json.Marshal(Params{Fast: 3, Slow: 9, Kind: KindEMA, FeeBps: 1.5, SlippageBps: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"fast":3,"slow":9,"kind":"ema","fee_bps":1.5,"slippage_bps":0.5}`
	if string(data) != want {
		t.Errorf("JSON = %s, want %s", data, want)
	}
}
