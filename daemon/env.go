package daemon

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// EnvPrefix starts the name of every environment variable banfleet reads.
const EnvPrefix = "BANFLEET_"

// EnvName is the environment variable that sets flag name: "heartbeat-timeout"
// becomes "BANFLEET_HEARTBEAT_TIMEOUT".
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then sets each flag the command line left alone from
// its environment variable (EnvName), if lookupEnv finds one. So a flag wins over
// the environment, and the environment over the default. An environment variable
// that is set but empty counts as set: BANFLEET_HTTP= disables the status server
// just as -http= does. lookupEnv is os.LookupEnv in production; nil reads nothing.
//
// Errors name the flag or the variable at fault, and a duration without a unit
// ("-heartbeat 10") says that it needs one ("10s"). Arguments left after the flags
// are an error: banfleet's programs take none.
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	explainDurations(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	if lookupEnv == nil {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		name := EnvName(f.Name)
		val, ok := lookupEnv(name)
		if !ok {
			return
		}
		if e := fs.Set(f.Name, val); e != nil {
			err = fmt.Errorf("invalid value %q for environment variable %s: %w", val, name, e)
		}
	})
	return err
}

// SetUsage makes fs print a usage message that names each flag's environment
// variable next to its default.
func SetUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: %s\n\n", synopsis)
		WriteFlags(out, fs)
	}
}

// WriteFlags lists fs's flags with their defaults and environment variables.
func WriteFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(durationValue); ok && name == "value" {
			name = "duration" // what flag.UnquoteUsage says of an unwrapped one
		}
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "    \t%s\n", strings.ReplaceAll(usage, "\n", "\n    \t"))
		fmt.Fprintf(w, "    \t(default %q; env %s)\n", f.DefValue, EnvName(f.Name))
	})
}

// MapEnv is a lookupEnv over fixed pairs (name, value, name, value, …): an environment
// for tests, and for programs that embed another's configuration.
func MapEnv(pairs ...string) func(string) (string, bool) {
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
