package dispatch_test

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// fastBackoff reconnects quickly in tests.
func fastBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(5*time.Millisecond), backoff.WithMaxInterval(50*time.Millisecond), backoff.WithMaxElapsedTime(0))
}
