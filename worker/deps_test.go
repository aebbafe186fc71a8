package worker_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The worker speaks to the master through package protocol, the vocabulary both sides
// share; it must not depend on package dispatch, the master itself.
func TestWorkerDoesNotDependOnDispatch(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if dep == "github.com/banfleet/banfleet/dispatch" {
			t.Fatalf("package worker depends on %s", dep)
		}
	}
}
