package circular

import (
	"slices"
	"testing"
)

// TestGrownKeepsOrder: a full buffer that wraps comes out in order, doubled within the
// bounds.
func TestGrownKeepsOrder(t *testing.T) {
	buf := []int{4, 5, 1, 2, 3} // head 2: 1 2 3 4 5
	got := Grown(buf, 2, 5, 8, 100)
	if len(got) != 10 || !slices.Equal(got[:5], []int{1, 2, 3, 4, 5}) {
		t.Fatalf("grown %v, want 1..5 first in a buffer of 10", got)
	}
	if got := Grown(buf, 2, 5, 8, 7); len(got) != 7 {
		t.Fatalf("len %d past the bound of 7", len(got))
	}
	if got := Grown([]int(nil), 0, 0, 64, 1000); len(got) != 64 {
		t.Fatalf("an empty buffer grew to %d, want the minimum 64", len(got))
	}
}
