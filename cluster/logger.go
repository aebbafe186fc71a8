package cluster

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// raftLogger gives raft (which logs through hclog) the node's slog.Logger: raft's
// warnings and errors, one slog record per line; its info lines (every election and
// configuration change) at Info, which a default slog level shows.
func raftLogger(log *slog.Logger) hclog.Logger {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Info, Output: slogWriter{log}, DisableTime: true,
	})
}

// slogWriter turns hclog's lines ("[WARN]  raft: message: key=value") into records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimSpace(p), []byte("\n")) {
		level := slog.LevelInfo
		switch {
		case bytes.Contains(line, []byte("[ERROR]")):
			level = slog.LevelError
		case bytes.Contains(line, []byte("[WARN]")):
			level = slog.LevelWarn
		case bytes.Contains(line, []byte("[DEBUG]")), bytes.Contains(line, []byte("[TRACE]")):
			level = slog.LevelDebug
		}
		w.log.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}
