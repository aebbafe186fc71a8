package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2, 1000} {
		bars := Synthetic(n, int64(n))
		data := EncodeBars(bars)
		if want := barsHeaderSize + barRecordSize*n; len(data) != want {
			t.Errorf("n=%d: encoded %d bytes, want %d", n, len(data), want)
		}
		got, err := DecodeBars(data)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !slices.Equal(got, bars) {
			t.Fatalf("n=%d: round trip changed the bars", n)
		}
	}
}

func TestEncodeBarsLayout(t *testing.T) {
	bar := Bar{Time: 0x0102030405060708, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 3}
	data := EncodeBars([]Bar{bar})
	if string(data[:4]) != "BFBR" || data[4] != 1 {
		t.Fatalf("header = % x, want magic BFBR and version 1", data[:8])
	}
	if got := binary.LittleEndian.Uint64(data[8:16]); got != 1 {
		t.Errorf("count = %d, want 1", got)
	}
	record := data[barsHeaderSize:]
	if record[0] != 0x08 || record[7] != 0x01 {
		t.Errorf("time is not little-endian: % x", record[:8])
	}
	if got := math.Float64frombits(binary.LittleEndian.Uint64(record[32:40])); got != 1.5 {
		t.Errorf("close field = %v, want 1.5", got)
	}
}

func TestDecodeBarsRejectsGarbage(t *testing.T) {
	valid := EncodeBars(Synthetic(3, 1))
	edit := func(f func([]byte) []byte) []byte { return f(slices.Clone(valid)) }
	badBar := EncodeBars([]Bar{{Time: 1, Open: math.NaN(), High: 1, Low: 1, Close: 1}})
	unordered := Synthetic(2, 1)
	unordered[1].Time = unordered[0].Time
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"nil", nil, "too short"},
		{"short header", valid[:10], "too short"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"future version", edit(func(b []byte) []byte { b[4] = 2; return b }), "unsupported version 2"},
		{"reserved bytes", edit(func(b []byte) []byte { b[6] = 1; return b }), "reserved"},
		{"truncated record", valid[:len(valid)-1], "payload bytes"},
		{"trailing byte", append(slices.Clone(valid), 0), "payload bytes"},
		{"huge count", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:16], math.MaxUint64); return b }), "header says"},
		{"flipped payload bit", edit(func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }), "checksum mismatch"},
		{"invalid bar", badBar, "bar 0: open is not a finite number"},
		{"non-increasing time", EncodeBars(unordered), "bar 1: timestamp"},
	} {
		bars, err := DecodeBars(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: DecodeBars error = %v, want it to contain %q", tc.name, err, tc.wantErr)
		}
		if bars != nil {
			t.Errorf("%s: got bars alongside the error", tc.name)
		}
	}
}

// FuzzDecodeBars checks that DecodeBars never panics and only accepts
// canonical encodings: anything it accepts must re-encode to the same
// bytes. The seeds run under plain go test.
func FuzzDecodeBars(f *testing.F) {
	valid := EncodeBars(Synthetic(4, 2))
	f.Add(valid)
	f.Add(EncodeBars(nil))
	f.Add(valid[:len(valid)-7])
	f.Add([]byte("BFBR"))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 68))
	f.Fuzz(func(t *testing.T, data []byte) {
		bars, err := DecodeBars(data)
		if err != nil {
			if bars != nil {
				t.Fatalf("bars returned with error %v", err)
			}
			return
		}
		if again := EncodeBars(bars); !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical encoding of %d bars", len(bars))
		}
		if err := ValidateBars(bars); err != nil {
			t.Fatalf("accepted invalid bars: %v", err)
		}
	})
}
