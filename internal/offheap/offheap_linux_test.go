package offheap

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestMapAsksForHugePages checks the kernel's own record of the mapping: with
// transparent huge pages left to programs ("madvise"), only advised memory is eligible.
func TestMapAsksForHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !strings.Contains(string(mode), "[madvise]") {
		t.Skipf("transparent huge pages are not left to programs here (%q, %v)", strings.TrimSpace(string(mode)), err)
	}
	b, err := Map(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = Unmap(b) }()
	eligible, found := thpEligible(t, uintptr(unsafe.Pointer(&b[0])))
	if !found {
		t.Skip("no THPeligible line in /proc/self/smaps for the mapping")
	}
	if !eligible {
		t.Error("the mapping is not eligible for huge pages: Map did not advise them")
	}
}

// thpEligible reads the THPeligible field of the mapping that starts at addr.
func thpEligible(t *testing.T, addr uintptr) (eligible, found bool) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	start := fmt.Sprintf("%x-", addr)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") {
			in = strings.HasPrefix(line, start) // a mapping's header: "start-end perms …"
			continue
		}
		if in && strings.HasPrefix(line, "THPeligible:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "THPeligible:")) == "1", true
		}
	}
	return false, false
}
