package offheap

import (
	"runtime"
	"strings"
	"testing"
)

func TestMapIsZeroedAndWritable(t *testing.T) {
	b, err := Map(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1<<20 {
		t.Fatalf("len %d, want %d", len(b), 1<<20)
	}
	for i := 0; i < len(b); i += 4096 {
		if b[i] != 0 {
			t.Fatalf("byte %d is %d, want 0", i, b[i])
		}
		b[i] = byte(i >> 12)
	}
	if b[5<<12] != 5 {
		t.Fatalf("wrote 5, read %d", b[5<<12])
	}
	if err := Unmap(b); err != nil {
		t.Fatal(err)
	}
}

func TestMapRefusesNothing(t *testing.T) {
	if _, err := Map(0); err == nil || !strings.Contains(err.Error(), "cannot map 0 bytes") {
		t.Fatalf("Map(0): %v, want a refusal", err)
	}
	if err := Unmap(nil); err != nil {
		t.Fatalf("Unmap(nil): %v", err)
	}
}

// TestMapIsNotOnTheHeap is why the package exists: mapped memory does not count towards
// the collector's heap, so it does not raise the heap goal.
func TestMapIsNotOnTheHeap(t *testing.T) {
	if !OffHeap {
		t.Skip("Map allocates on the heap on " + runtime.GOOS)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := Map(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := Unmap(b); err != nil {
			t.Error(err)
		}
	}()
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.ReadMemStats(&after)
	if after.HeapSys >= before.HeapSys+16<<20 {
		t.Fatalf("64 MiB mapped and touched shows in the heap: HeapSys %d before, %d after", before.HeapSys, after.HeapSys)
	}
}
