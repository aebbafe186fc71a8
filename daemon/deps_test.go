package daemon_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The kits are split so that a worker binary links no master code and a master
// none of the worker runtime: package daemon, which both import, imports neither
// side; cmd/worker and daemon/workerd stay clear of dispatch, store and masterd.
func TestKitDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	const mod = "github.com/banfleet/banfleet/"
	cases := []struct {
		pkg       string
		forbidden []string
	}{
		{".", []string{"dispatch", "store", "worker", "daemon/workerd", "daemon/masterd"}},
		{"./workerd", []string{"dispatch", "store", "daemon/masterd"}},
		{"../cmd/worker", []string{"dispatch", "store", "daemon/masterd"}},
		{"./masterd", []string{"worker", "daemon/workerd"}},
	}
	for _, c := range cases {
		out, err := exec.Command(goTool, "list", "-deps", c.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.pkg, err)
		}
		deps := map[string]bool{}
		for dep := range strings.FieldsSeq(string(out)) {
			deps[dep] = true
		}
		if !deps[mod+"banio"] {
			t.Fatalf("go list -deps %s lists no banio: the check reads the wrong output", c.pkg)
		}
		for _, f := range c.forbidden {
			if deps[mod+f] {
				t.Errorf("%s depends on %s", c.pkg, mod+f)
			}
		}
	}
}
