package daemon

import (
	"flag"
	"fmt"
	"slices"
	"strings"
)

// choice is a string flag limited to a fixed set of values.
type choice struct {
	p       *string
	allowed []string
}

func (c choice) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

func (c choice) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("want %s, not %q", strings.Join(c.allowed, ", "), s)
	}
	*c.p = s
	return nil
}

// choiceVar defines a flag that accepts only the allowed values; the first is the
// default.
func choiceVar(fs *flag.FlagSet, p *string, name, usage string, allowed ...string) {
	*p = allowed[0]
	fs.Var(choice{p, allowed}, name, usage)
}
