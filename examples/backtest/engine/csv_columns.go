package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// The fields of a bar, in the order of a CSV without a header.
const (
	fieldTime = iota
	fieldOpen
	fieldHigh
	fieldLow
	fieldClose
	fieldVolume
	fieldCount
)

// fieldNames are the names the errors use, by field.
var fieldNames = [fieldCount]string{"timestamp", "open", "high", "low", "close", "volume"}

// headerNames maps each accepted header name (lower case, spaces and
// underscores as written) to its field.
var headerNames = map[string]int{
	"timestamp": fieldTime, "time": fieldTime, "date": fieldTime, "datetime": fieldTime,
	"date_time": fieldTime, "ts": fieldTime, "open_time": fieldTime, "open time": fieldTime, "unix": fieldTime,
	"open": fieldOpen, "o": fieldOpen,
	"high": fieldHigh, "h": fieldHigh,
	"low": fieldLow, "l": fieldLow,
	"close": fieldClose, "c": fieldClose,
	"volume": fieldVolume, "vol": fieldVolume, "v": fieldVolume,
}

// acceptedHeaderNames lists headerNames for error messages.
const acceptedHeaderNames = "time: timestamp, time, date, datetime, ts, open_time, unix; " +
	"open: open, o; high: high, h; low: low, l; close: close, c; volume (optional): volume, vol, v"

// columns says where each field of a bar sits in a record.
type columns struct {
	header bool            // the first record named the columns
	width  int             // fields every record has
	index  [fieldCount]int // record index of each field; -1: absent (volume only)
}

// columnsOf reads the layout from the first record: a header when no field of
// it is a timestamp or a number, else the positional order.
func columnsOf(first []string) (*columns, error) {
	if !isHeader(first) {
		if n := len(first); n != fieldCount && n != fieldCount-1 {
			return nil, fmt.Errorf("want 6 fields (timestamp,open,high,low,close,volume) or 5 (without volume), got %d; "+
				"for other layouts add a header line naming the columns (%s)", n, acceptedHeaderNames)
		}
		c := &columns{width: len(first)}
		for f := range c.index {
			c.index[f] = f
		}
		if len(first) == fieldCount-1 {
			c.index[fieldVolume] = -1
		}
		return c, nil
	}
	c := &columns{header: true, width: len(first)}
	for f := range c.index {
		c.index[f] = -1
	}
	for i, name := range first {
		f, ok := headerNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			continue // e.g. "Adj Close", "trades": not used
		}
		if c.index[f] >= 0 {
			return nil, fmt.Errorf("header names the %s column twice (%q and %q)", fieldNames[f], first[c.index[f]], name)
		}
		c.index[f] = i
	}
	for f := range fieldVolume {
		if c.index[f] < 0 {
			return nil, fmt.Errorf("header %q has no %s column; accepted names are %s", strings.Join(first, ","), fieldNames[f], acceptedHeaderNames)
		}
	}
	return c, nil
}

// isHeader reports whether a record is a header line rather than data:
// it is when no field parses as a timestamp or a number, so a malformed
// first data row is still reported rather than silently skipped.
func isHeader(record []string) bool {
	if len(record) == 0 {
		return false
	}
	for _, field := range record {
		if _, err := ParseTimestamp(field); err == nil {
			return false
		}
		if _, err := strconv.ParseFloat(strings.TrimSpace(field), 64); err == nil {
			return false
		}
	}
	return true
}

// parse converts one data record into a validated bar.
func (c *columns) parse(record []string, delim rune) (Bar, error) {
	if len(record) != c.width {
		what := "the first row"
		if c.header {
			what = "the header"
		}
		return Bar{}, fmt.Errorf("want %d fields like %s, got %d", c.width, what, len(record))
	}
	t, err := ParseTimestamp(record[c.index[fieldTime]])
	if err != nil {
		return Bar{}, fmt.Errorf("timestamp: %w", err)
	}
	var values [fieldCount]float64
	for f := fieldOpen; f < fieldCount; f++ {
		if c.index[f] < 0 {
			continue
		}
		if values[f], err = parseNumber(fieldNames[f], record[c.index[f]], delim); err != nil {
			return Bar{}, err
		}
	}
	bar := Bar{Time: t, Open: values[fieldOpen], High: values[fieldHigh], Low: values[fieldLow],
		Close: values[fieldClose], Volume: values[fieldVolume]}
	if err := bar.Validate(); err != nil {
		return Bar{}, err
	}
	return bar, nil
}
