package daemon

import (
	"flag"
	"io"
	"log/slog"
)

// Logging holds the -log-level and -log-format flags.
type Logging struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// Register adds -log-level and -log-format to fs.
func (l *Logging) Register(fs *flag.FlagSet) {
	fs.TextVar(&l.Level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	choiceVar(fs, &l.Format, "log-format", "log `format`: text or json", "text", "json")
}

// Logger returns a logger writing to w at the configured level and format.
func (l *Logging) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
