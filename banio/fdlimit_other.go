//go:build !unix

package banio

// fdLimit is unknown here: the connection cap is WithMaxConns alone.
func fdLimit() int { return 0 }
