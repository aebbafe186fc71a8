package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// csvFixtureBars are the three bars every file in testdata holds; only the
// times differ with the format (hourly, or daily for date-only files).
var csvFixtureBars = []Bar{
	{Time: 1577836800, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 10},
	{Time: 1577840400, Open: 1.5, High: 1.75, Low: 1.25, Close: 1.5, Volume: 0},
	{Time: 1577844000, Open: 1.5, High: 3, Low: 1.4, Close: 2.5, Volume: 7.25},
}

// TestLoadCSVFormats reads one file of each accepted format from testdata.
func TestLoadCSVFormats(t *testing.T) {
	hourly := []int64{1577836800, 1577840400, 1577844000}
	daily := []int64{1577836800, 1577923200, 1578009600}
	for _, tc := range []struct {
		file     string
		times    []int64
		noVolume bool
	}{
		{"seconds_header.csv", hourly, false},
		{"milliseconds_no_header.csv", hourly, false},
		{"microseconds_nanoseconds.csv", hourly, false}, // and a plain seconds row; fractions floored
		{"rfc3339_offsets.csv", hourly, false},          // Z, +01:00 and a fraction
		{"datetime_space_no_volume.csv", hourly, true},  // "2006-01-02 15:04:05", "… 15:04", "…T15:04:05"
		{"date_only_semicolon.csv", daily, false},
		{"tab_reordered.tsv", hourly, false}, // short names in another order, an extra column
		{"yahoo_daily.csv", daily, false},    // Adj Close ignored
		{"bom_crlf_comments_quotes.csv", hourly, false},
		{"five_columns_no_header.csv", hourly, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := loadCSVFile(t, filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(csvFixtureBars) {
				t.Fatalf("got %d bars, want %d: %+v", len(got), len(csvFixtureBars), got)
			}
			for i, want := range csvFixtureBars {
				want.Time = tc.times[i]
				if tc.noVolume {
					want.Volume = 0
				}
				if got[i] != want {
					t.Errorf("bar %d: got %+v, want %+v", i, got[i], want)
				}
			}
		})
	}
}

// loadCSVFile opens and loads one fixture.
func loadCSVFile(t *testing.T, path string) ([]Bar, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return LoadCSV(f)
}

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]int64{
		"1577836800":                1577836800,
		"-1":                        -1,
		"99999999999":               99999999999, // the largest seconds value
		"100000000000":              100000000,   // the smallest milliseconds value
		"1577836800999":             1577836800,
		"-1500":                     -1500, // small negatives are seconds
		"-100000000001":             -100000001,
		"1577836800123456":          1577836800,
		"1577836800123456789":       1577836800,
		"2020-01-01T00:00:00Z":      1577836800,
		"2020-01-01T01:00:00+01:00": 1577836800,
		"2020-01-01T00:00:00.9Z":    1577836800,
		"2020-01-01 00:00:00+00:00": 1577836800,
		"2020-01-01 00:00:00":       1577836800,
		"2020-01-01T00:00:00":       1577836800,
		"2020-01-01 00:00":          1577836800,
		"2020-01-01":                1577836800,
		" 2020-01-01 ":              1577836800,
	} {
		got, err := ParseTimestamp(in)
		if err != nil || got != want {
			t.Errorf("ParseTimestamp(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2020-13-01", "2020/01/01", "1577836800.5", "01.01.2020"} {
		if _, err := ParseTimestamp(in); err == nil {
			t.Errorf("ParseTimestamp(%q) must fail", in)
		}
	}
}

// TestLoadCSVRejectsBadRowsWithLineNumbers reads each bad file of testdata/bad.
func TestLoadCSVRejectsBadRowsWithLineNumbers(t *testing.T) {
	cases := map[string]string{
		"empty.csv":                   "no data rows",
		"header_only.csv":             "no data rows",
		"too_few_fields.csv":          "line 3: want 6 fields like the header, got 5",
		"too_many_fields.csv":         "line 2: want 6 fields like the first row, got 7",
		"seven_columns_no_header.csv": "line 1: want 6 fields (timestamp,open,high,low,close,volume) or 5 (without volume), got 7; for other layouts add a header line",
		"bad_number.csv":              `line 2: low: cannot parse "x" as a number`,
		"decimal_comma.csv":           `line 2: open: cannot parse "1,5" as a number: use a decimal point, not a comma`,
		"bad_timestamp.csv":           `line 2: timestamp: "yesterday" is neither unix seconds`,
		"malformed_first_row.csv":     "line 1: timestamp",
		"high_below_low.csv":          "line 2: low 2 is above high 0.5",
		"close_above_high.csv":        "line 2: close 3 is outside",
		"zero_price.csv":              "line 2: open must be positive",
		"negative_volume.csv":         "line 2: volume must not be negative",
		"nan.csv":                     "line 2: open is not a finite number",
		"duplicate_timestamp.csv":     "line 3: timestamp 1577836800 repeats the previous row's",
		"newest_first.csv":            "line 2: timestamp 1577833200 is before the previous row's 1577836800: rows must be oldest first (this file looks newest first",
		"unsorted.csv":                "line 3: timestamp 1577840400 does not increase (previous 1577844000): rows must be sorted oldest first",
		"bare_quote.csv":              "line 2",
		"header_missing_close.csv":    `line 1: header "time,open,high,low,volume" has no close column; accepted names are`,
		"header_duplicate_column.csv": `line 1: header names the close column twice ("close" and "c")`,
	}
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*"))
	if err != nil || len(files) != len(cases) {
		t.Fatalf("testdata/bad holds %d files (%v), the table %d", len(files), err, len(cases))
	}
	for _, file := range files {
		want, ok := cases[filepath.Base(file)]
		if !ok {
			t.Errorf("%s has no expected error", file)
			continue
		}
		bars, err := loadCSVFile(t, file)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: LoadCSV error = %v, want it to contain %q", file, err, want)
		}
		if bars != nil {
			t.Errorf("%s: got bars %v alongside the error", file, bars)
		}
	}
}

// TestLoadCSVBounds checks both limits with small values, and that a file of
// exactly the byte limit still loads.
func TestLoadCSVBounds(t *testing.T) {
	text := "1577836800,1,2,0.5,1.5,10\n1577840400,1,2,0.5,1.5,10\n1577844000,1,2,0.5,1.5,10\n"
	if bars, err := loadCSV(strings.NewReader(text), int64(len(text)), 3); err != nil || len(bars) != 3 {
		t.Errorf("at the limits: %d bars, %v", len(bars), err)
	}
	_, err := loadCSV(strings.NewReader(text), int64(len(text))-1, 3)
	if !errors.Is(err, ErrCSVTooLarge) || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("one byte over: %v", err)
	}
	_, err = loadCSV(strings.NewReader(text), 20, 3) // fails while detecting the delimiter
	if !errors.Is(err, ErrCSVTooLarge) {
		t.Errorf("over the limit in the first line: %v", err)
	}
	_, err = loadCSV(strings.NewReader(text), int64(len(text)), 2)
	if !errors.Is(err, ErrCSVTooLarge) || !strings.Contains(err.Error(), "more than 2 bars (line 3)") {
		t.Errorf("one bar over: %v", err)
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

// FuzzLoadCSV: any input gives bars that pass ValidateBars within the bounds,
// or an error; never a panic.
func FuzzLoadCSV(f *testing.F) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "bad")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.*sv"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bars, err := loadCSV(bytes.NewReader(data), 1<<16, 100)
		if err != nil {
			if bars != nil {
				t.Errorf("bars %v with error %v", bars, err)
			}
			return
		}
		if len(bars) == 0 || len(bars) > 100 {
			t.Errorf("%d bars", len(bars))
		}
		if err := ValidateBars(bars); err != nil {
			t.Errorf("loaded bars fail validation: %v", err)
		}
	})
}
