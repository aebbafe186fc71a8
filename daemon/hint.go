package daemon

import (
	"errors"
	"fmt"

	"github.com/banfleet/banfleet/banio"
)

// AuthHint returns err with what to check added when it is a refused authentication
// (it wraps banio.ErrAuthFailed, or banio.ErrAuthRequired when no token was given):
// "check -token / BANFLEET_TOKEN", the flag and variable of every banfleet program.
// Other errors, and nil, come back unchanged. A program built on this package wraps
// the errors it reports with it, since banio, a library, cannot name the flags.
func AuthHint(err error) error {
	if !errors.Is(err, banio.ErrAuthFailed) {
		return err
	}
	return fmt.Errorf("%w: check -token / %s (every peer must give the master's token)", err, EnvName("token"))
}
