package banio

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logLimiter keeps a misbehaving peer from flooding the log: the first event is logged,
// then at most one per interval, carrying how many were suppressed in between.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const logInterval = 10 * time.Second

func (l *logLimiter) log(lg *slog.Logger, level slog.Level, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < logInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	lg.Log(context.Background(), level, msg, args...)
}
