package engine

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds of [LoadCSV], so a wrong file (a multi-gigabyte tick dump, a binary)
// fails with a message instead of exhausting memory.
const (
	// MaxCSVBytes is the largest CSV file LoadCSV reads: 256 MiB, about five
	// million rows of typical OHLCV text.
	MaxCSVBytes = 256 << 20
	// MaxCSVBars is the most bars LoadCSV returns. A million bars encode to a
	// 48 MB blob ([EncodeBars]), which fits banio's default 64 MiB frame; more
	// would not reach the workers without raising banio.WithMaxFrameSize.
	MaxCSVBars = 1_000_000
)

// ErrCSVTooLarge is returned (wrapped) when input exceeds [MaxCSVBytes] or
// [MaxCSVBars].
var ErrCSVTooLarge = errors.New("csv: too large")

// LoadCSV reads bars, oldest first, from CSV text. The accepted formats:
//
//   - Delimiter: comma, semicolon or tab, detected from the first line (the
//     one that occurs most often there; comma on a tie). Fields may be quoted.
//   - Header: optional. The first row is a header when none of its fields is a
//     timestamp or a number. With a header, columns are found by name in any
//     order, case-insensitively; other columns (such as "Adj Close") are
//     ignored. Names: time = timestamp, time, date, datetime, ts, open_time,
//     "open time", unix; open = open, o; high = high, h; low = low, l;
//     close = close, c; volume = volume, vol, v (optional: 0 when absent).
//     Without a header the columns are timestamp,open,high,low,close[,volume]
//     in that order, every row with the same count.
//   - Timestamp: unix seconds, milliseconds, microseconds or nanoseconds (an
//     integer; the unit follows from its magnitude, see [ParseTimestamp]),
//     RFC 3339 ("2020-01-02T15:04:05Z", offsets and fractions allowed),
//     "2020-01-02 15:04:05", "2020-01-02T15:04:05" and "2020-01-02 15:04"
//     (UTC), or a date alone, "2020-01-02" (UTC midnight, for daily bars).
//     The timestamp is the bar's opening time.
//   - Numbers: decimal with a point ("1234.5", "1.2e3"); a decimal comma is
//     refused with a hint.
//   - Lines: LF or CRLF; blank lines and lines starting with # are skipped; a
//     UTF-8 byte-order mark is ignored.
//
// Every bar must pass [Bar.Validate] and timestamps must strictly increase.
// Errors name the 1-based line and the field at fault, so a bad row can be
// found and fixed; nothing is returned with an error. Input beyond
// [MaxCSVBytes] or [MaxCSVBars] fails with [ErrCSVTooLarge].
func LoadCSV(r io.Reader) ([]Bar, error) {
	return loadCSV(r, MaxCSVBytes, MaxCSVBars)
}

// loadCSV is LoadCSV with its bounds as arguments, so tests can reach them.
func loadCSV(r io.Reader, maxBytes int64, maxBars int) ([]Bar, error) {
	br := bufio.NewReaderSize(&limitedReader{r: r, left: maxBytes}, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	delim, err := detectDelimiter(br, maxBytes)
	if err != nil {
		return nil, err
	}
	reader := csv.NewReader(br)
	reader.Comma = delim
	reader.Comment = '#'
	reader.FieldsPerRecord = -1 // counted below to give a clearer message
	reader.TrimLeadingSpace = true
	reader.ReuseRecord = true

	var (
		bars []Bar
		cols *columns
	)
	for {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrCSVTooLarge) {
			return nil, fmt.Errorf("%w: the file exceeds %d bytes; backtest a shorter span or coarser bars", ErrCSVTooLarge, maxBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := reader.FieldPos(0)
		if len(record) == 1 && strings.TrimSpace(record[0]) == "" {
			continue // a line of spaces
		}
		if cols == nil {
			if cols, err = columnsOf(record); err != nil {
				return nil, fmt.Errorf("csv line %d: %w", line, err)
			}
			if cols.header {
				continue
			}
		}
		bar, err := cols.parse(record, delim)
		if err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		if n := len(bars); n > 0 && bar.Time <= bars[n-1].Time {
			return nil, fmt.Errorf("csv line %d: %w", line, orderError(bar.Time, bars[n-1].Time, n == 1))
		}
		if len(bars) == maxBars {
			return nil, fmt.Errorf("%w: more than %d bars (line %d); backtest a shorter span or coarser bars", ErrCSVTooLarge, maxBars, line)
		}
		bars = append(bars, bar)
	}
	if len(bars) == 0 {
		return nil, errors.New("csv: no data rows")
	}
	return bars, nil
}

// orderError explains a timestamp that does not increase; on the second bar it
// is most likely a file sorted newest first.
func orderError(t, previous int64, second bool) error {
	switch {
	case t == previous:
		return fmt.Errorf("timestamp %d repeats the previous row's: each bar needs its own time (remove the duplicate)", t)
	case second:
		return fmt.Errorf("timestamp %d is before the previous row's %d: rows must be oldest first (this file looks newest first: sort it by time)", t, previous)
	default:
		return fmt.Errorf("timestamp %d does not increase (previous %d): rows must be sorted oldest first", t, previous)
	}
}

// detectDelimiter picks the delimiter of the first non-blank line: whichever of
// comma, semicolon and tab it holds most often, comma on a tie.
func detectDelimiter(br *bufio.Reader, maxBytes int64) (rune, error) {
	peek, err := br.Peek(br.Size())
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, ErrCSVTooLarge) {
			return 0, fmt.Errorf("%w: the file exceeds %d bytes", ErrCSVTooLarge, maxBytes)
		}
		return 0, fmt.Errorf("csv: %w", err)
	}
	for line := range bytes.Lines(peek) {
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		best, count := ',', bytes.Count(line, []byte{','})
		for _, d := range []rune{';', '\t'} {
			if n := bytes.Count(line, []byte{byte(d)}); n > count {
				best, count = d, n
			}
		}
		return best, nil
	}
	return ',', nil
}

// parseNumber parses one price or volume field.
func parseNumber(name, field string, delim rune) (float64, error) {
	field = strings.TrimSpace(field)
	v, err := strconv.ParseFloat(field, 64)
	if err == nil {
		return v, nil
	}
	if delim != ',' && strings.Contains(field, ",") {
		return 0, fmt.Errorf("%s: cannot parse %q as a number: use a decimal point, not a comma", name, field)
	}
	return 0, fmt.Errorf("%s: cannot parse %q as a number", name, field)
}

// limitedReader reads at most left bytes of r, then fails with ErrCSVTooLarge
// (where io.LimitReader would end quietly, and a truncated file would load).
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a file of exactly the limit from a longer one.
		var one [1]byte
		if n, _ := io.ReadFull(l.r, one[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, ErrCSVTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
