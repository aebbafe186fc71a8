package engine

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// millisecondThreshold separates unix seconds from unix milliseconds: a
// seconds value this large would lie in the year 5138, while milliseconds
// reach it already in 1973, so real data is never ambiguous.
const millisecondThreshold = 100_000_000_000

// csvColumns is the expected column order of [LoadCSV] input.
var csvColumns = [...]string{"timestamp", "open", "high", "low", "close", "volume"}

// LoadCSV reads bars from CSV with the columns
// timestamp,open,high,low,close,volume. A header line is optional: the
// first record is treated as a header when none of its fields is a
// timestamp or number, so a malformed first data row is still reported
// rather than silently skipped. Timestamps may be unix seconds, unix
// milliseconds (any integer of magnitude 10¹¹ or more; floored to whole
// seconds) or RFC 3339. Blank lines are skipped. Every bar must pass [Bar.Validate] and timestamps must strictly
// increase; errors carry the 1-based line number so bad rows can be found.
func LoadCSV(r io.Reader) ([]Bar, error) {
	reader := csv.NewReader(r)
	reader.FieldsPerRecord = -1 // counted below to give a clearer message
	reader.TrimLeadingSpace = true
	reader.ReuseRecord = true

	var bars []Bar
	first := true
	for {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := reader.FieldPos(0)
		if first {
			first = false
			if isHeader(record) {
				continue
			}
		}
		bar, err := parseBarRecord(record)
		if err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		if n := len(bars); n > 0 && bar.Time <= bars[n-1].Time {
			return nil, fmt.Errorf("csv line %d: timestamp %d does not increase (previous %d)", line, bar.Time, bars[n-1].Time)
		}
		bars = append(bars, bar)
	}
	if len(bars) == 0 {
		return nil, errors.New("csv: no data rows")
	}
	return bars, nil
}

// isHeader reports whether a record is a header line rather than data:
// it is when no field parses as a timestamp or a number.
func isHeader(record []string) bool {
	if len(record) == 0 {
		return false
	}
	if _, err := parseTimestamp(record[0]); err == nil {
		return false
	}
	for _, field := range record[1:] {
		if _, err := strconv.ParseFloat(strings.TrimSpace(field), 64); err == nil {
			return false
		}
	}
	return true
}

// parseBarRecord converts one CSV record into a validated bar.
func parseBarRecord(record []string) (Bar, error) {
	if len(record) != len(csvColumns) {
		return Bar{}, fmt.Errorf("want %d fields (%s), got %d", len(csvColumns), strings.Join(csvColumns[:], ","), len(record))
	}
	t, err := parseTimestamp(record[0])
	if err != nil {
		return Bar{}, fmt.Errorf("timestamp: %w", err)
	}
	var values [5]float64
	for i := range values {
		field := strings.TrimSpace(record[i+1])
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return Bar{}, fmt.Errorf("%s: cannot parse %q as a number", csvColumns[i+1], field)
		}
		values[i] = v
	}
	bar := Bar{Time: t, Open: values[0], High: values[1], Low: values[2], Close: values[3], Volume: values[4]}
	if err := bar.Validate(); err != nil {
		return Bar{}, err
	}
	return bar, nil
}

// parseTimestamp accepts unix seconds, unix milliseconds or RFC 3339 and
// returns unix seconds. Milliseconds are floored to whole seconds.
func parseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n >= millisecondThreshold || n <= -millisecondThreshold {
			return floorDiv(n, 1000), nil
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither unix seconds, unix milliseconds nor RFC 3339", s)
	}
	return t.Unix(), nil
}

// floorDiv divides rounding towards negative infinity, so pre-1970
// millisecond timestamps map to the second they fall in.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
