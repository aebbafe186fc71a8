package engine

import "os"

// IsTerminal reports whether f looks like an interactive terminal, which
// decides between a redrawn progress line and plain log lines. It uses only
// the standard library: a terminal is a character device. That heuristic
// also matches /dev/null, where the extra carriage returns are harmless.
// It returns false for nil or unusable files.
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	info, err := f.Stat()
	if err != nil {
		return false
	}
	return info.Mode()&os.ModeCharDevice != 0
}
