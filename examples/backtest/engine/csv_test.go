package engine

import (
	"strconv"
	"strings"
	"testing"
)

func TestLoadCSVFormats(t *testing.T) {
	want := []Bar{
		{Time: 1577836800, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 10},
		{Time: 1577840400, Open: 1.5, High: 1.75, Low: 1.25, Close: 1.5, Volume: 0},
	}
	for name, input := range map[string]string{
		"seconds with header": "timestamp,open,high,low,close,volume\n" +
			"1577836800,1,2,0.5,1.5,10\n1577840400,1.5,1.75,1.25,1.5,0\n",
		"milliseconds, no header": "1577836800000,1,2,0.5,1.5,10\n1577840400000,1.5,1.75,1.25,1.5,0\n",
		"RFC 3339, CRLF, spaces, blank lines": "time, o, h, l, c, v\r\n\r\n" +
			"2020-01-01T00:00:00Z, 1, 2, 0.5, 1.5, 10\r\n2020-01-01T02:00:00+01:00,1.5,1.75,1.25,1.5,0\r\n\r\n",
		"quoted fields, no trailing newline": `"1577836800","1","2","0.5","1.5","10"` + "\n1577840400,1.5,1.75,1.25,1.5,0",
	} {
		got, err := LoadCSV(strings.NewReader(input))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

func TestLoadCSVMillisecondsAreFloored(t *testing.T) {
	bars, err := LoadCSV(strings.NewReader("1577836800999,1,1,1,1,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if bars[0].Time != 1577836800 {
		t.Errorf("time = %d, want 1577836800", bars[0].Time)
	}
}

func TestLoadCSVRejectsBadRowsWithLineNumbers(t *testing.T) {
	const header = "timestamp,open,high,low,close,volume\n"
	const good = "1577836800,1,2,0.5,1.5,10\n"
	for _, tc := range []struct {
		name, input, wantErr string
	}{
		{"empty", "", "no data rows"},
		{"header only", header, "no data rows"},
		{"too few fields", header + good + "1577840400,1,2,0.5,1.5\n", "line 3: want 6 fields"},
		{"too many fields", good + "1577840400,1,2,0.5,1.5,1,9\n", "line 2: want 6 fields"},
		{"bad number", header + "1577836800,1,2,x,1.5,10\n", `line 2: low: cannot parse "x"`},
		{"bad timestamp", good + "yesterday,1,2,0.5,1.5,10\n", "line 2: timestamp"},
		{"malformed first row is not a header", "2020-13-45,1,2,0.5,1.5,10\n", "line 1: timestamp"},
		{"high below low", header + "1577836800,1,0.5,2,1.5,10\n", "line 2: low 2 is above high 0.5"},
		{"close above high", good + "1577840400,1,2,0.5,3,10\n", "line 2: close 3 is outside"},
		{"zero price", good + "1577840400,0,2,0,1,10\n", "line 2: open must be positive"},
		{"negative volume", good + "1577840400,1,2,0.5,1.5,-1\n", "line 2: volume must not be negative"},
		{"NaN", good + "1577840400,NaN,2,0.5,1.5,1\n", "line 2: open is not a finite number"},
		{"repeated timestamp", header + good + good, "line 3: timestamp 1577836800 does not increase"},
		{"decreasing timestamp", good + "1577833200,1,2,0.5,1.5,10\n", "line 2: timestamp 1577833200 does not increase"},
		{"bare quote", good + "15778\"40400,1,2,0.5,1.5,10\n", "line 2"},
	} {
		bars, err := LoadCSV(strings.NewReader(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: LoadCSV error = %v, want it to contain %q", tc.name, err, tc.wantErr)
		}
		if bars != nil {
			t.Errorf("%s: got bars %v alongside the error", tc.name, bars)
		}
	}
}

func TestLoadCSVRoundTripsSyntheticData(t *testing.T) {
	bars := Synthetic(100, 3)
	var sb strings.Builder
	sb.WriteString("timestamp,open,high,low,close,volume\n")
	for _, b := range bars {
		sb.WriteString(strings.Join([]string{
			formatInt(b.Time), formatFloat(b.Open), formatFloat(b.High),
			formatFloat(b.Low), formatFloat(b.Close), formatFloat(b.Volume),
		}, ",") + "\n")
	}
	got, err := LoadCSV(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range bars {
		if got[i] != bars[i] {
			t.Fatalf("bar %d: got %+v, want %+v", i, got[i], bars[i])
		}
	}
}

// formatInt renders an integer for a CSV fixture.
func formatInt(v int64) string { return strconv.FormatInt(v, 10) }

// formatFloat renders the shortest decimal that parses back to exactly v.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
